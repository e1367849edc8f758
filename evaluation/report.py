"""The HTML report: every table and figure of the thesis that the database and the results folder support.

``semcurate report OUT.html`` writes one self-contained file: images are
embedded as base64 data URIs, the CSS is inline, and there is no JavaScript
and nothing fetched from the network, so the file can be mailed or archived
as it is.

>>> from semcurate.evaluation.report import write_report
>>> write_report(sessions, Path("results"), Path("report.html"))
{'path': 'report.html', 'bytes': 1234567, 'present': ['formats', ...], 'missing': {...}}

:func:`collect` is the shell: it reads the database (files, labels, scale
readings, subsets, feature sets, clusterings, trees) and the JSON and PNG files
the studies wrote under the results folder (``id/``, ``reduce/``,
``distances/``, ``scale/``, ``evaluate/``, ``compare2d/``).  Each section is
either present, with its data, or missing, with one line saying why and the
command that would produce it.  :func:`render` is pure: the collected dict in,
the HTML text out (Jinja2, autoescaped).  :func:`write_report` does both and
writes the file atomically (temporary name, then rename).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import platform
import tempfile
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from semcurate.clustering.placement_tables import placement_summary
from semcurate.db.models import (
    Clustering,
    FeatureSet,
    File,
    IngestRun,
    Label,
    LabelDataset,
    ScaleReading,
    Subset,
    SubsetMember,
    TreeNodeRow,
    TreeRow,
)
from semcurate.ingest.ingestion import latest_store

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "report.html.j2"

#: Widest representative thumbnail embedded in the tree section, in pixels.
THUMBNAIL_WIDTH = 160

#: File statuses in the order of the format inventory's columns (others follow alphabetically).
STATUS_ORDER = ("image", "duplicate", "corrupt", "unsupported", "unreadable", "rejected", "skipped", "pending")

#: Distributions whose versions the provenance block records; the first installed name of each entry wins.
VERSIONED = (
    ("semcurate", ("semcurate",)),
    ("numpy", ("numpy",)),
    ("scikit-learn", ("scikit-learn",)),
    ("tensorflow", ("tensorflow", "tensorflow-cpu")),
    ("matplotlib", ("matplotlib",)),
    ("jinja2", ("jinja2",)),
)

#: ``(id, thesis number, title)`` of every section, in the order of the report.
SECTIONS = (
    ("formats", "Table 2.1", "Image file formats"),
    ("labels", "Table 2.2", "Labelled datasets matched to the images"),
    ("scale_validation", "Table 2.3", "Validation of the scale reader"),
    ("scale_histogram", "Table 2.4", "Images per scale"),
    ("subsets", "Table 2.5", "Distribution of the labels in the subsets"),
    ("quality", "", "Image quality: flags, the worst images per flag, score distributions"),
    ("intrinsic_dimension", "Figs 3.6, 3.7", "2-NN intrinsic dimension: fits and sample-size scans"),
    ("ae_grid", "Table 3.3", "Autoencoder grid search"),
    ("distances", "Figs 3.8-3.10", "Distance heatmaps against the label distance"),
    ("nmi", "Fig. 4.5", "NMI of the clusterings against the labels"),
    ("compare2d", "Fig. 4.1", "Clustering algorithms on 2-D data sets"),
    ("tree", "Chapter 5", "Sub-category tree"),
    ("provenance", "", "Provenance"),
)


class ReportError(Exception):
    """A report that cannot be written (one clear line)."""


# ---------------------------------------------------------------------------- small helpers


def _present(data: dict) -> dict:
    return {"present": True, "data": data}


def _missing(reason: str, command: str) -> dict:
    """A missing section: why, and the command that would produce it (one line)."""
    return {"present": False, "missing": f"{reason}: run `{command}`", "reason": reason, "command": command}


def _read_json(path: Path):
    """The JSON in ``path``, or raise ReportError with one line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReportError(f"cannot read {path}: {error}") from None


def _figure(data: bytes, caption: str = "") -> dict | None:
    """An embeddable image from PNG or JPEG bytes (None when the bytes are not a readable PNG/JPEG)."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
    except Exception:  # PIL raises many kinds for broken files; a broken figure is just left out
        return None
    if kind not in ("PNG", "JPEG"):
        return None
    mime = "image/png" if kind == "PNG" else "image/jpeg"
    return {"mime": mime, "base64": base64.b64encode(data).decode("ascii"), "caption": caption}


def _figure_file(path: Path, caption: str | None = None) -> dict | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return _figure(data, path.name if caption is None else caption)


def _matplotlib_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def thumbnail_jpeg(path: Path, width: int = THUMBNAIL_WIDTH) -> bytes | None:
    """JPEG bytes of the image at ``path`` scaled to at most ``width`` px wide (and as high); None if unreadable."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as image:
            image.draft("RGB", (2 * width, 2 * width))
            image = image.convert("L" if image.mode in ("L", "I", "I;16", "F", "1") else "RGB")
            image.thumbnail((width, width), PILImage.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
            return buffer.getvalue()
    except (OSError, ValueError):
        return None


def _small_png(data: bytes | None, width: int = THUMBNAIL_WIDTH) -> bytes | None:
    """PNG ``data`` unchanged when at most ``width`` px wide, else scaled down; None when unreadable."""
    from PIL import Image as PILImage

    if not data:
        return None
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            if image.width <= width and image.format == "PNG":
                return data
            image.thumbnail((width, width), PILImage.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            return buffer.getvalue()
    except (OSError, ValueError):
        return None


def _parameters(text: str | None) -> str:
    """Stored JSON parameters as a compact ``key=value`` line."""
    if not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict):
        return ", ".join(f"{key}={json.dumps(item, ensure_ascii=False)}" for key, item in value.items())
    return json.dumps(value, ensure_ascii=False)


def _when(value: dt.datetime | None) -> str:
    return value.isoformat(" ", "seconds") if value else ""


def _version(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


# ---------------------------------------------------------------------------- sections from the database


def formats_section(sessions: sessionmaker) -> dict:
    """Table 2.1: files by format (rows) and status (columns), with totals, from the ``files`` table."""
    with sessions() as session:
        counts = session.execute(
            select(File.format, File.status, func.count()).group_by(File.format, File.status)
        ).all()
        relations = dict(
            session.execute(
                select(File.relation, func.count())
                .where(File.status == "duplicate", File.relation.is_not(None))
                .group_by(File.relation)
            ).all()
        )
    if not counts:
        return _missing("no files ingested yet", "semcurate ingest SRC --store STORE")
    table: dict[str, Counter] = defaultdict(Counter)
    for fmt, status, count in counts:
        table[fmt][status] += count
    found = {status for counter in table.values() for status in counter}
    statuses = [status for status in STATUS_ORDER if status in found] + sorted(found - set(STATUS_ORDER))
    rows = [
        {
            "format": fmt,
            "counts": {status: counter.get(status, 0) for status in statuses},
            "total": sum(counter.values()),
        }
        for fmt, counter in sorted(table.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    ]
    totals = {status: sum(row["counts"][status] for row in rows) for status in statuses}
    return _present(
        {
            "statuses": statuses,
            "rows": rows,
            "totals": totals,
            "total": sum(totals.values()),
            "relations": dict(sorted(relations.items())),
        }
    )


def labels_section(sessions: sessionmaker) -> dict:
    """Table 2.2: each imported labelled dataset, its files and how they were matched to images."""
    from semcurate.ingest.labels import dataset_table

    rows = dataset_table(sessions)
    if not rows:
        return _missing("no labelled datasets imported", "semcurate labels import DIR --name NAME")
    return _present({"columns": list(rows[0]), "rows": [list(row.values()) for row in rows]})


def _histogram_dataset(sessions: sessionmaker) -> str | None:
    """The dataset whose categories split Table 2.4: the newest tree's, else the one with most matched images."""
    with sessions() as session:
        matched = dict(
            session.execute(
                select(Label.dataset, func.count(func.distinct(Label.image_md5)))
                .where(Label.image_md5.is_not(None))
                .group_by(Label.dataset)
            ).all()
        )
        newest = session.scalar(select(TreeRow.labels_dataset).order_by(TreeRow.id.desc()).limit(1))
    if newest in matched:
        return newest
    return max(sorted(matched), key=lambda name: matched[name]) if matched else None


def scale_histogram_section(sessions: sessionmaker) -> dict:
    """Table 2.4: images per scale read from the data bar, per top category of a labelled dataset when there is one."""
    from semcurate.ingest.scale_database import ScaleError, histogram

    dataset = _histogram_dataset(sessions)
    try:
        columns, table = histogram(sessions, dataset)
    except ScaleError:
        dataset = None
        columns, table = histogram(sessions, None)
    if not table:
        return _missing("no scale readings yet", "semcurate scale")
    with sessions() as session:
        readings = session.scalar(select(func.count()).select_from(ScaleReading))
    total_column = "total" if dataset else "images"
    rows = [{"scale": key, "counts": [counts[column] for column in columns]} for key, counts in table]
    totals = [sum(counts[column] for _, counts in table) for column in columns]
    read = totals[columns.index(total_column)]
    figure = _histogram_figure([key for key, _ in table], [counts[total_column] for _, counts in table])
    return _present(
        {
            "dataset": dataset,
            "columns": columns,
            "rows": rows,
            "totals": totals,
            "readings": readings,
            "read": read,
            "percent_read": round(100 * read / readings, 1) if readings else 0.0,
            "figure": _figure(figure, "images per scale read from the data bar"),
        }
    )


def _histogram_figure(scales: list[str], counts: list[int]) -> bytes:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 0.3 * len(scales) + 1.2), layout="constrained")
    axis = figure.subplots()
    positions = range(len(scales))
    axis.barh(list(positions), counts, color="tab:blue")
    axis.set_yticks(list(positions), scales)
    axis.invert_yaxis()
    axis.set_xlabel("images")
    axis.set_ylabel("scale bar")
    return _matplotlib_png(figure)


#: Images shown per flag in the quality section's gallery of the worst.
QUALITY_GALLERY = 6


def quality_section(sessions: sessionmaker, image_store: Path | None) -> dict:
    """Counts per quality flag with the thresholds of the newest run, the worst images per flag, score histograms."""
    from semcurate.ingest.quality_database import flagged_images, latest_run, score_table

    run = latest_run(sessions)
    if run is None:
        return _missing("no quality scores yet", "semcurate quality")
    md5s, table = score_table(sessions)
    flags = []
    for flag, threshold in run["thresholds"].items():
        worst = flagged_images(sessions, flag)[:QUALITY_GALLERY] if run["flag_counts"].get(flag) else []
        gallery = []
        for record in worst:
            data = thumbnail_jpeg(image_store / f"{record['md5']}.jpg") if image_store is not None else None
            if data:
                value = record[threshold["score"]]
                caption = f"{record['path'] or record['md5']}: {threshold['score']} {value:.3g}"
                gallery.append(_figure(data, caption))
        flags.append(
            {
                "flag": flag,
                "images": run["flag_counts"].get(flag, 0),
                "threshold": f"{threshold['score']} {'<' if threshold['direction'] == 'below' else '>'} "
                f"{threshold['value']:.4g}",
                "how": threshold["how"],
                "gallery": [figure for figure in gallery if figure],
            }
        )
    figure = _quality_figure(table, run["thresholds"]) if md5s else None
    return _present(
        {
            "run_id": run["run_id"],
            "images": run["images"],
            "created": run["created"],
            "flags": flags,
            "figure": _figure(figure, "score distributions, the thresholds as red lines") if figure else None,
        }
    )


def _quality_figure(table: dict, thresholds: dict) -> bytes:
    """Histograms of the scores that flags read, each with its threshold(s) drawn as red lines."""
    import numpy as np
    from matplotlib.figure import Figure

    by_score: dict[str, list[float]] = {}
    for threshold in thresholds.values():
        if threshold["score"] in table:
            by_score.setdefault(threshold["score"], []).append(threshold["value"])
    names = sorted(by_score)
    columns = 3
    rows = (len(names) + columns - 1) // columns
    figure = Figure(figsize=(10, 2.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis, name in zip(axes.ravel(), names, strict=False):
        values = table[name][np.isfinite(table[name])]
        axis.hist(values, bins=40, color="tab:blue")
        for value in by_score[name]:
            axis.axvline(value, color="tab:red")
        axis.set_title(name, fontsize=10)
        axis.set_yscale("log")
    for axis in axes.ravel()[len(names) :]:
        axis.set_visible(False)
    return _matplotlib_png(figure)


def subsets_section(sessions: sessionmaker) -> dict:
    """Table 2.5: for each subset and labelled dataset, matched images per top category, against the whole dataset."""
    from semcurate.ingest.labels import category_distribution

    with sessions() as session:
        subsets = session.scalars(select(Subset).order_by(Subset.name)).all()
        if not subsets:
            return _missing("no image subsets", "semcurate subset create NAME --scale 1um --scale 2um")
        per_category = session.execute(
            select(SubsetMember.subset, Label.dataset, Label.category, func.count(func.distinct(Label.image_md5)))
            .join(Label, Label.image_md5 == SubsetMember.image_md5)
            .where(Label.image_md5.is_not(None))
            .group_by(SubsetMember.subset, Label.dataset, Label.category)
        ).all()
        labelled = session.execute(
            select(SubsetMember.subset, Label.dataset, func.count(func.distinct(Label.image_md5)))
            .join(Label, Label.image_md5 == SubsetMember.image_md5)
            .where(Label.image_md5.is_not(None))
            .group_by(SubsetMember.subset, Label.dataset)
        ).all()
    everywhere = category_distribution(sessions)
    if not everywhere:
        return _missing("no matched labels to distribute over the subsets", "semcurate labels import DIR --name NAME")
    counts: dict = defaultdict(dict)
    for subset, dataset, category, count in per_category:
        counts[(subset, dataset)][category] = count
    n_labelled = {(subset, dataset): count for subset, dataset, count in labelled}
    tables = []
    for subset in subsets:
        for dataset, whole in everywhere.items():
            inside = counts.get((subset.name, dataset), {})
            labelled_here = n_labelled.get((subset.name, dataset), 0)
            rows = [
                {
                    "category": category,
                    "subset": inside.get(category, 0),
                    "dataset": whole[category],
                    "percent": round(100 * inside.get(category, 0) / whole[category], 1) if whole[category] else 0,
                }
                for category in whole
            ]
            tables.append(
                {
                    "subset": subset.name,
                    "criteria": _parameters(subset.criteria),
                    "size": subset.size,
                    "dataset": dataset,
                    "rows": rows,
                    "labelled": labelled_here,
                    "dataset_total": sum(whole.values()),
                    "percent_labelled": round(100 * labelled_here / subset.size, 1) if subset.size else 0,
                }
            )
    return _present({"tables": tables})


def _node_tree(rows: list[TreeNodeRow], image_store: Path | None, thumbnails: dict) -> list[dict]:
    """Nested dicts of the nodes of one tree, children in stored order (largest first)."""
    children: dict = defaultdict(list)
    for row in sorted(rows, key=lambda row: (row.depth, row.position, row.path)):
        children[row.parent_id].append(row)

    def thumb(md5: str | None) -> dict | None:
        if md5 is None or image_store is None:
            return None
        if md5 not in thumbnails:
            data = thumbnail_jpeg(image_store / f"{md5}.jpg")
            thumbnails[md5] = _figure(data, md5) if data else None
        return thumbnails[md5]

    def nested(row: TreeNodeRow) -> dict:
        scores = json.loads(row.split_scores) if row.split_scores else {}
        mean = _small_png(row.mean_image)
        return {
            "path": row.path,
            "name": row.name,
            "category": row.category,
            "depth": row.depth,
            "size": row.size,
            "representative": row.representative_md5,
            "thumbnail": thumb(row.representative_md5),
            "mean": _figure(mean, "mean image") if mean else None,
            "split_rule": row.split_rule,
            "split_scores": ", ".join(f"k={k}: {_number(score)}" for k, score in scores.items()),
            "children": [nested(child) for child in children.get(row.id, [])],
        }

    return [nested(row) for row in children.get(None, [])]


def _tree_scores(results_dir: Path | None) -> dict:
    """``evaluate/tree_scores.json`` (written by ``semcurate evaluate --hierarchy``) keyed by tree id, if readable."""
    path = results_dir / "evaluate" / "tree_scores.json" if results_dir is not None else None
    if path is None or not path.is_file():
        return {}
    try:
        scored = _read_json(path)
        per_category = [
            [
                name if cell.get("split", True) else f"{name} (not split)",
                cell.get("labelled"),
                cell.get("children"),
                cell.get("subcategories"),
                cell.get("nmi"),
            ]
            for name, cell in scored.get("per_category", {}).items()
        ]
        return {
            scored["tree_id"]: {
                "dataset": scored.get("dataset"),
                "labelled": scored.get("labelled_images"),
                "leaf_nmi": scored.get("leaf_nmi"),
                "purity": scored.get("purity"),
                "per_category": per_category,
            }
        }
    except (ReportError, KeyError, TypeError, AttributeError):
        return {}


def tree_section(sessions: sessionmaker, image_store: Path | None, results_dir: Path | None = None) -> dict:
    """Every stored tree, newest first: nodes by depth with name, size, representative thumbnail and mean image,
    and the tree's scores against hierarchical labels where ``semcurate evaluate --hierarchy`` wrote them."""
    store = image_store if image_store is not None else latest_store(sessions)
    scores = _tree_scores(results_dir)
    thumbnails: dict = {}
    trees = []
    with sessions() as session:
        for tree in session.scalars(select(TreeRow).order_by(TreeRow.id.desc())).all():
            rows = session.scalars(select(TreeNodeRow).where(TreeNodeRow.tree_id == tree.id)).all()
            nodes = _node_tree(rows, store, thumbnails)
            trees.append(
                {
                    "id": tree.id,
                    "feature_set": tree.feature_set,
                    "method": tree.method,
                    "rule": tree.rule,
                    "depth": tree.depth,
                    "subset": tree.subset,
                    "labels_dataset": tree.labels_dataset,
                    "n_images": tree.n_images,
                    "n_labelled": tree.n_labelled,
                    "classifier_accuracy": tree.classifier_accuracy,
                    "placement": placement_summary(tree.placement),
                    "created": _when(tree.created_at),
                    "parameters": _parameters(tree.parameters),
                    "n_nodes": len(rows),
                    "nodes": nodes,
                    "scores": scores.get(tree.id),
                }
            )
    if not trees:
        return _missing("no sub-category tree built", "semcurate tree build FEATURE_SET")
    return _present({"trees": trees, "image_store": str(store) if store else None})


def provenance_section(sessions: sessionmaker, results_dir: Path, image_store: Path | None) -> dict:
    """Versions, database, ingest runs, feature sets (weights digest, parameters), clusterings, date."""
    versions = {"python": platform.python_version(), **{label: _version(names) for label, names in VERSIONED}}
    bind = sessions.kw.get("bind")
    database = bind.url.render_as_string(hide_password=True) if bind is not None else ""
    with sessions() as session:
        runs = [
            {
                "id": run.id,
                "source": run.source_root,
                "store": run.store,
                "started": _when(run.started_at),
                "finished": _when(run.finished_at),
            }
            for run in session.scalars(select(IngestRun).order_by(IngestRun.id))
        ]
        feature_sets = [
            {
                "name": row.name,
                "extractor": row.extractor,
                "weights": row.weights,
                "weights_digest": row.weights_digest,
                "layer": row.layer,
                "dimension": row.dimension,
                "rows": row.n_rows,
                "parent": row.parent,
                "parameters": _parameters(row.parameters),
                "created": _when(row.created_at),
            }
            for row in session.scalars(select(FeatureSet).order_by(FeatureSet.created_at, FeatureSet.name))
        ]
        clusterings = [
            {
                "id": row.id,
                "feature_set": row.feature_set,
                "method": row.method,
                "subset": row.subset,
                "kind": row.kind,
                "points": row.n_points,
                "k_max": row.k_max,
                "parameters": _parameters(row.parameters),
                "seconds": row.seconds,
                "created": _when(row.created_at),
            }
            for row in session.scalars(select(Clustering).order_by(Clustering.id))
        ]
        datasets = [
            {"name": row.name, "directory": row.directory, "imported": _when(row.imported_at)}
            for row in session.scalars(select(LabelDataset).order_by(LabelDataset.name))
        ]
    generated = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(" ", "seconds")
    return _present(
        {
            "generated": generated,
            "versions": versions,
            "database": database,
            "results_dir": str(results_dir),
            "image_store": str(image_store) if image_store else None,
            "ingest_runs": runs,
            "label_datasets": datasets,
            "feature_sets": feature_sets,
            "clusterings": clusterings,
        }
    )


# ---------------------------------------------------------------------------- sections from the results folder


def scale_validation_section(results_dir: Path) -> dict:
    """Table 2.3 from ``scale/validation.json``, the dict of :func:`semcurate.ingest.scale_database.validate`."""
    path = results_dir / "scale" / "validation.json"
    command = f"semcurate scale validate TRUTH.csv --out {path.parent}"
    if not path.is_file():
        return _missing(f"no scale validation ({path} not found)", command)
    try:
        result = _read_json(path)
        rows = [
            {"outcome": outcome, "images": cell["images"], "percent": cell["percent"]}
            for outcome, cell in result["table"].items()
        ]
    except (ReportError, KeyError, TypeError, AttributeError) as error:
        return _missing(f"unreadable scale validation ({error})", command)
    return _present(
        {
            "total": result.get("total", sum(row["images"] for row in rows)),
            "rows": rows,
            "wrong": [list(item) for item in result.get("wrong", [])[:20]],
            "n_wrong": len(result.get("wrong", [])),
            "n_unmatched": len(result.get("unmatched_paths", [])),
        }
    )


def id_section(results_dir: Path) -> dict:
    """Figs 3.6 and 3.7 from ``id/<set>.id.json``, ``<set>.id_fit.png`` and ``<set>.id_scan.png``."""
    folder = results_dir / "id"
    command = f"semcurate id FEATURE_SET --out {folder}"
    names = set()
    for pattern, suffix in (
        ("*.id.json", ".id.json"),
        ("*.id_fit.png", ".id_fit.png"),
        ("*.id_scan.png", ".id_scan.png"),
    ):
        names.update(path.name[: -len(suffix)] for path in folder.glob(pattern))
    if not names:
        return _missing(f"no intrinsic-dimension study in {folder}", command)
    studies = []
    for name in sorted(names):
        study = {
            "feature_set": name,
            "estimates": [],
            "scan": [],
            "suggested_code_size": None,
            "rows": None,
            "subset": None,
            "error": None,
            "unreadable": [],
        }
        json_path = folder / f"{name}.id.json"
        if json_path.is_file():
            try:
                result = _read_json(json_path)
                study["estimates"] = sorted(result.get("estimates", {}).items(), key=lambda item: -float(item[0]))
                scan = result.get("scan", {})
                study["scan"] = list(
                    zip(scan.get("sizes", []), scan.get("means", []), scan.get("stds", []), strict=False)
                )
                study.update(
                    suggested_code_size=result.get("suggested_code_size"),
                    rows=result.get("rows"),
                    subset=result.get("subset"),
                )
            except (ReportError, ValueError, AttributeError) as error:
                study["error"] = str(error)
        wanted = (
            (f"{name}.id_fit.png", f"Fig. 3.6: 2-NN fit of {name}"),
            (f"{name}.id_scan.png", f"Fig. 3.7: sample-size scan of {name}"),
        )
        figures = [(file_name, _figure_file(folder / file_name, caption)) for file_name, caption in wanted]
        study["figures"] = [figure for _file_name, figure in figures if figure]
        study["unreadable"] = [file_name for file_name, figure in figures if figure is None]
        studies.append(study)
    return _present({"studies": studies})


def ae_grid_section(results_dir: Path) -> dict:
    """Table 3.3 from the ``grid`` rows of ``reduce/<set>.aeK.json`` (best first), with the reduction's figures."""
    folder = results_dir / "reduce"
    command = f"semcurate reduce FEATURE_SET --method ae --grid --out {folder}"
    found = sorted(folder.glob("*.json"))
    searches = []
    for path in found:
        try:
            result = _read_json(path)
        except ReportError:
            continue
        if not isinstance(result, dict) or not result.get("grid"):
            continue
        columns = [
            column
            for column in ("architecture", "tying", "n_parameters", "train_mse", "heldout_mse")
            if column in result["grid"][0]
        ]
        figures = [
            figure for figure in (_figure_file(png) for png in sorted(folder.glob(f"{path.stem}*.png"))) if figure
        ]
        searches.append(
            {
                "feature_set": result.get("feature_set", path.stem),
                "parent": result.get("parent"),
                "rows": result.get("rows"),
                "code_size": result.get("code_size"),
                "columns": columns,
                "grid": [[row.get(column) for column in columns] for row in result["grid"]],
                "chosen": {
                    key: result.get(key) for key in ("hidden", "tying", "epochs", "reconstruction_mse") if key in result
                },
                "figures": figures,
            }
        )
    if not searches:
        reason = f"no autoencoder grid search in {folder}"
        if found:
            reason += f" ({len(found)} reduction{'s' if len(found) != 1 else ''} ran without --grid)"
        return _missing(reason, command)
    return _present({"searches": searches})


def distances_section(results_dir: Path) -> dict:
    """Figs 3.8-3.10 from ``distances/distances.json`` and ``distances.png``."""
    folder = results_dir / "distances"
    command = f"semcurate distances SET [SET...] --dataset DATASET --out {folder}"
    json_path, png_path = folder / "distances.json", folder / "distances.png"
    if not json_path.is_file() and not png_path.is_file():
        return _missing(f"no distance study in {folder}", command)
    data = {"correlations": [], "per_category": [], "sample_size": None, "dataset": None, "subset": None, "error": None}
    if json_path.is_file():
        try:
            result = _read_json(json_path)
            data.update(
                correlations=list(result.get("correlation_with_d_disc", {}).items()),
                per_category=list(result.get("per_category", {}).items()),
                sample_size=result.get("sample_size"),
                dataset=result.get("dataset"),
                subset=result.get("subset"),
            )
        except (ReportError, AttributeError) as error:
            data["error"] = str(error)
    data["figure"] = _figure_file(png_path, "heatmaps of the Euclidean distances next to d_disc")
    return _present(data)


def nmi_section(results_dir: Path) -> dict:
    """Fig. 4.5 from ``evaluate/nmi_grid.png`` (and the other PNGs there), best NMI per set and method if given."""
    folder = results_dir / "evaluate"
    json_path = folder / "nmi_grid.json"
    pngs = sorted(folder.glob("*.png"), key=lambda path: (path.name != "nmi_grid.png", path.name))
    if not json_path.is_file() and not pngs:
        return _missing(f"no NMI evaluation in {folder}", f"semcurate evaluate --feature-sets SET --out {folder}")
    best, columns, error, dataset = [], [], None, None
    if json_path.is_file():
        try:
            result = _read_json(json_path)
            records = [
                record
                for record in (result.get("best", []) if isinstance(result, dict) else [])
                if isinstance(record, dict)
            ]
            dataset = result.get("dataset") if isinstance(result, dict) else None
            keys = ["feature_set", "method", "k", "nmi"] + [
                key
                for key in ("excess_over_chance", "nmi_at_classes", "dendrogram_purity")
                if any(record.get(key) is not None for record in records)
            ]
            headings = {
                "feature_set": "feature set",
                "k": "k most above chance",
                "nmi": "NMI there",
                "excess_over_chance": "above uniform random",
                "nmi_at_classes": "NMI at k = classes",
                "dendrogram_purity": "dendrogram purity",
            }
            columns = [headings.get(key, key) for key in keys]
            best = [[record.get(key) for key in keys] for record in records]
        except ReportError as problem:
            error = str(problem)
    figures = [figure for figure in (_figure_file(path) for path in pngs) if figure]
    return _present({"dataset": dataset, "columns": columns, "best": best, "figures": figures, "error": error})


def compare2d_section(results_dir: Path) -> dict:
    """Fig. 4.1 from ``compare2d/compare2d.json`` (records of dataset, algorithm, k, seconds, ari) and the PNG."""
    folder = results_dir / "compare2d"
    json_path, png_path = folder / "compare2d.json", folder / "compare2d.png"
    if not json_path.is_file() and not png_path.is_file():
        return _missing(f"no 2-D comparison in {folder}", f"semcurate compare-2d --out {folder}")
    records, error = [], None
    if json_path.is_file():
        try:
            result = _read_json(json_path)
            records = (
                result if isinstance(result, list) else result.get("records", []) if isinstance(result, dict) else []
            )
            records = [record for record in records if isinstance(record, dict)]
        except ReportError as problem:
            error = str(problem)
    preferred = ["dataset", "algorithm", "k", "seconds", "ari"]
    extra = [key for record in records for key in record if key not in preferred]
    columns = [key for key in preferred if any(key in record for record in records)] + list(dict.fromkeys(extra))
    return _present(
        {
            "columns": columns,
            "rows": [[record.get(key) for key in columns] for record in records],
            "figure": _figure_file(png_path, "clusterings of the 2-D data sets and their running times"),
            "error": error,
        }
    )


# ---------------------------------------------------------------------------- the public API


def collect(sessions: sessionmaker, results_dir: Path, image_store: Path | None = None) -> dict:
    """Gather the data of every section of the report.

    Parameters
    ----------
    sessions : sessionmaker
        Session factory of the database (see :func:`semcurate.db.open_database`).
    results_dir : Path
        Folder the studies wrote into (``id/``, ``reduce/``, ``distances/``,
        ``scale/``, ``evaluate/``, ``compare2d/``); it need not exist.
    image_store : Path or None
        Flat store holding ``<md5>.jpg`` for the tree's thumbnails; None takes
        the store of the newest ingest run.

    Returns
    -------
    dict
        Section id → section, in report order.  Every section has ``id``,
        ``number`` (thesis table or figure), ``title`` and ``present``; a
        present one has ``data``, a missing one ``missing`` (one line: why, and
        the ``semcurate`` command that would produce it) and ``command``.
        Images are ``{"mime", "base64", "caption"}`` dicts, so the whole
        result is JSON-serialisable.
    """
    results_dir = Path(results_dir)
    store = image_store if image_store is not None else latest_store(sessions)
    builders = {
        "formats": lambda: formats_section(sessions),
        "labels": lambda: labels_section(sessions),
        "scale_validation": lambda: scale_validation_section(results_dir),
        "scale_histogram": lambda: scale_histogram_section(sessions),
        "subsets": lambda: subsets_section(sessions),
        "quality": lambda: quality_section(sessions, store),
        "intrinsic_dimension": lambda: id_section(results_dir),
        "ae_grid": lambda: ae_grid_section(results_dir),
        "distances": lambda: distances_section(results_dir),
        "nmi": lambda: nmi_section(results_dir),
        "compare2d": lambda: compare2d_section(results_dir),
        "tree": lambda: tree_section(sessions, store, results_dir),
        "provenance": lambda: provenance_section(sessions, results_dir, store),
    }
    return {key: {"id": key, "number": number, "title": title, **builders[key]()} for key, number, title in SECTIONS}


def _number(value) -> str:
    """Cells: integers as they are, floats to four significant digits, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pick(record: dict, keys: list[str]) -> list:
    return [record.get(key) for key in keys]


def _data_uri(figure: dict) -> str:
    return f"data:{figure['mime']};base64,{figure['base64']}"


_environment = None


def _template():
    global _environment
    if _environment is None:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined

        _environment = Environment(
            loader=FileSystemLoader(TEMPLATE_DIR),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=StrictUndefined,
        )
        _environment.filters.update(num=_number, data_uri=_data_uri, pick=_pick)
    return _environment.get_template(TEMPLATE_NAME)


def render(sections: dict) -> str:
    """The report's HTML text from the dict of :func:`collect` (pure: no database, no files but the template)."""
    return _template().render(sections=list(sections.values()))


def write_report(sessions: sessionmaker, results_dir: Path, out: Path, image_store: Path | None = None) -> dict:
    """Collect, render and write the report to ``out`` atomically; return a summary.

    Returns
    -------
    dict
        ``path``, ``bytes`` (size of the file), ``present`` (ids of the
        sections shown) and ``missing`` (id → one line with the command to run).
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise ReportError(f"folder {out.parent} does not exist: create it or choose another OUT")
    sections = collect(sessions, results_dir, image_store)
    data = render(sections).encode("utf-8")
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return {
        "path": str(out),
        "bytes": len(data),
        "present": [key for key, section in sections.items() if section["present"]],
        "missing": {key: section["missing"] for key, section in sections.items() if not section["present"]},
    }
