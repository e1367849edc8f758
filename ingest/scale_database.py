"""Scale-reading shell: read every ingested image's scale into the database, validate, count, make subsets.

* :func:`read_scales` reads each image that has no reading yet (resumable: a
  killed run loses at most the batch in flight), in worker processes that
  each keep one OCR engine open, from the lossless ``<md5>.tif`` in the store
  when there is one, else ``<md5>.jpg``.
* :func:`read_scale_files` reads files named directly, without the database.
* :func:`validate` compares readings with a hand-written CSV
  (``path, value, unit``, optionally ``nm_per_px`` and ``layout``) in the
  categories of the thesis' Table 2.3, per data-bar layout and per image
  width class, and lists the flagged images.
* :func:`histogram` counts images per scale (Table 2.4), optionally per label;
  :func:`flagged_readings` lists the images whose metadata and pixels disagree.
* :func:`create_subset` fixes a named subset of images by scale (the thesis'
  ``1u-2u``), which later stages take as input.
"""

from __future__ import annotations

import bisect
import csv
import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import sessionmaker

from semcurate.db.models import File, Image, Label, Subset, SubsetMember
from semcurate.db.models import ScaleReading as ReadingRow
from semcurate.ingest.length_text import NM_PER_UNIT, Length, parse_length
from semcurate.ingest.methods import SCALE_SOURCES
from semcurate.ingest.ocr import get_engine
from semcurate.ingest.parallel import batched, parallel_map
from semcurate.ingest.scale_bar import READER_VERSION, ScaleReading, read_scale_bytes
from semcurate.ingest.walk import FileSkipped, read_regular

#: Readings per database transaction.
BATCH_SIZE = 100
#: A reading is right when its pixel size lies within this relative distance of the truth's (1 %).
RIGHT_WITHIN = 0.01
#: Lower bounds of the image-width classes, in px, that validation and bench/scale.py count accuracy by: about
#: 512, 1024, 2048 and 4096 px wide (an instrument's usual frame widths, with the odd sizes in between).
WIDTH_CLASS_LOWER_PX = (0, 768, 1536, 3072)
#: Validation outcomes, in the order of the thesis' Table 2.3 (plus images the reader has not seen yet).
OUTCOMES = ("positive", "stripe not detected", "wrong scale", "unreadable", "not read yet")
#: Reading sources whose pixel size rests on the bar's label (value and unit), not on metadata or the field width.
LABEL_SOURCES = ("ocr", "both")
#: Statuses meaning the reader found no single data bar stripe.
STRIPE_PROBLEMS = ("no_stripe", "multiple_stripes")


class ScaleError(Exception):
    """A problem the admin must fix before scales can be read or used (one clear line)."""


def _silence_tifffile() -> None:
    # tifffile logs every malformed tag it meets; a corrupt vendor tag is already a recorded
    # reason here, so a batch over a messy repository must not flood the terminal.
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)


def read_image_file(task: tuple[str, Path]) -> tuple[str, ScaleReading]:
    """Worker: the reading of one stored image (OCR engine opened once per process)."""
    md5, path = task
    _silence_tifffile()
    try:
        data = read_regular(path)
    except FileSkipped as skipped:
        return md5, ScaleReading("error", reason=f"{path}: {skipped}")
    except OSError as error:
        return md5, ScaleReading("error", reason=f"cannot read {path}: {error.strerror}")
    return md5, read_scale_bytes(data, engine=get_engine())


def read_scale_files(paths: Iterable[Path], *, source: str = "auto") -> Iterator[tuple[Path, ScaleReading]]:
    """The scale reading of each file in ``paths``, read directly (no database, no store), one at a time.

    Parameters
    ----------
    paths : iterable of Path
        TIFF or JPG files.
    source : {"auto", "ocr", "metadata"}
        Where the scale comes from, see :data:`~semcurate.ingest.methods.SCALE_SOURCES`; ``metadata`` needs no
        OCR engine.

    Returns
    -------
    iterator of (Path, ScaleReading)
        In the order of ``paths``; a file that cannot be read gives status ``error`` with the reason, and so does
        one that is not a regular file (a pipe, a device: never read) or larger than
        :data:`~semcurate.ingest.walk.MAX_FILE_BYTES`.

    Raises
    ------
    ScaleError
        For an unknown ``source``.
    OcrUnavailable
        When ``source`` needs OCR and Tesseract cannot be loaded (raised here, before any file is read).
    """
    if source not in SCALE_SOURCES:
        raise ScaleError(f"unknown scale source {source!r}; choose one of {', '.join(SCALE_SOURCES)}")
    engine = None if source == "metadata" else get_engine()

    def readings() -> Iterator[tuple[Path, ScaleReading]]:
        for path in paths:
            try:
                data = read_regular(path)
            except FileSkipped as skipped:
                yield path, ScaleReading("error", reason=f"{path}: {skipped}")
                continue
            except OSError as error:
                yield path, ScaleReading("error", reason=f"cannot read {path}: {error.strerror}")
                continue
            yield path, read_scale_bytes(data, engine=engine, source=source)

    return readings()


def reading_row(md5: str, reading: ScaleReading) -> dict:
    """Column values of a :class:`semcurate.db.models.ScaleReading` row."""
    box = reading.stripe_box or (None, None, None, None)
    values = asdict(reading)
    for key in ("stripe_box", "evidence"):
        values.pop(key)
    return {
        **values,
        "image_md5": md5,
        "stripe_x0": box[0],
        "stripe_y0": box[1],
        "stripe_x1": box[2],
        "stripe_y1": box[3],
        "evidence": "; ".join(reading.evidence) or None,
        "reader_version": READER_VERSION,
    }


def read_scales(
    sessions: sessionmaker,
    store: Path,
    *,
    workers: int = 1,
    reread: bool = False,
    reporter=None,
    scheduler: str | None = None,
) -> dict:
    """Read the scale of every image without a reading (all of them with ``reread``); return status counts.

    The images are read in ``workers`` local processes, or on the Dask
    workers of ``scheduler`` (:func:`~semcurate.ingest.parallel.parallel_map`);
    only this process writes the readings.
    """
    store = Path(store)
    with sessions() as session:
        query = select(Image.md5, Image.jpg_only).order_by(Image.md5)
        if not reread:
            query = query.where(Image.md5.not_in(select(ReadingRow.image_md5)))
        todo = session.execute(query).all()
    tasks = [(md5, store / f"{md5}.{'jpg' if jpg_only else 'tif'}") for md5, jpg_only in todo]
    missing = [str(path) for _, path in tasks[:50] if not path.exists()]
    if tasks and len(missing) == min(len(tasks), 50):
        raise ScaleError(f"the store {store} does not hold the ingested images (e.g. {missing[0]}): pass --store")
    advance = reporter("reading scales", len(tasks)) if reporter and tasks else (lambda _n=1: None)
    readings = parallel_map(read_image_file, tasks, workers, _silence_tifffile, scheduler=scheduler)
    for batch in batched(readings, BATCH_SIZE):
        with sessions.begin() as session:
            md5s = [md5 for md5, _ in batch]
            session.execute(delete(ReadingRow).where(ReadingRow.image_md5.in_(md5s)))
            session.execute(insert(ReadingRow), [reading_row(md5, reading) for md5, reading in batch])
        advance(len(batch))
    return {"read": len(tasks), **status_counts(sessions)}


def status_counts(sessions: sessionmaker) -> dict:
    """Readings per status and per source, plus flagged disagreements, over the whole database."""
    with sessions() as session:
        statuses = dict(session.execute(select(ReadingRow.status, func.count()).group_by(ReadingRow.status)).all())
        sources = dict(
            session.execute(
                select(ReadingRow.source, func.count())
                .where(ReadingRow.source.is_not(None))
                .group_by(ReadingRow.source)
            ).all()
        )
        flagged = session.scalar(select(func.count()).select_from(ReadingRow).where(ReadingRow.flagged))
        unread = session.scalar(
            select(func.count()).select_from(Image).where(Image.md5.not_in(select(ReadingRow.image_md5)))
        )
    return {
        "by_status": dict(sorted(statuses.items())),
        "by_source": dict(sorted(sources.items())),
        "flagged_disagreements": flagged,
        "images_without_reading": unread,
    }


def scale_key(value: float, unit: str) -> str:
    """How a scale is written in tables and subset criteria: ``'1 µm'``, ``'200 nm'``."""
    return f"{value:g} {unit}"


@dataclass(frozen=True)
class TruthRow:
    """One image's truth from a validation CSV.

    ``length`` is the bar's label (None: the image has no scale bar),
    ``nm_per_px`` the true pixel size in nm when the CSV gives it, ``layout``
    the data-bar layout when the CSV has a ``layout`` column.
    """

    path: str
    length: Length | None
    nm_per_px: float | None
    layout: str | None


def width_class(width_px: int) -> str:
    """The width class of an image ``width_px`` wide, as named in validation tables.

    Examples
    --------
    >>> [width_class(width) for width in (512, 1024, 2048, 4096)]
    ['< 768 px', '768-1535 px', '1536-3071 px', '≥ 3072 px']
    """
    index = bisect.bisect_right(WIDTH_CLASS_LOWER_PX, width_px) - 1
    if index == 0:
        return f"< {WIDTH_CLASS_LOWER_PX[1]} px"
    if index == len(WIDTH_CLASS_LOWER_PX) - 1:
        return f"≥ {WIDTH_CLASS_LOWER_PX[index]} px"
    return f"{WIDTH_CLASS_LOWER_PX[index]}-{WIDTH_CLASS_LOWER_PX[index + 1] - 1} px"


def _truth_row(row: dict, value_key: str, unit_key: str) -> TruthRow | str:
    """One CSV row as a :class:`TruthRow`, or why it cannot be used."""
    value, unit = (row.get(value_key) or "").strip(), (row.get(unit_key) or "").strip()
    length = parse_length(f"{value} {unit}") if value else None
    if value and length is None:
        return f"cannot read {value!r} {unit!r} as a length"
    nm_text = (row.get("nm_per_px") or "").strip()
    try:
        nm_per_px = float(nm_text) if nm_text else None
    except ValueError:
        return f"nm_per_px {nm_text!r} is not a number"
    if nm_per_px is not None and not (math.isfinite(nm_per_px) and nm_per_px > 0):
        return f"nm_per_px {nm_text!r} is not a positive pixel size"
    return TruthRow(row["path"], length, nm_per_px, (row.get("layout") or "").strip() or None)


def _truth_rows(path: Path) -> tuple[list[TruthRow], list[tuple[str, str]], bool]:
    """The usable rows of a truth CSV, ``(path, reason)`` of the others, and whether it has a ``layout`` column."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise ScaleError(f"cannot read {path}: {error.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise ScaleError(f"{path} is not a UTF-8 CSV file ({error})") from None
    if not rows or "path" not in rows[0]:
        raise ScaleError(f"{path} needs a header with at least: path, value, unit")
    value_key = "value" if "value" in rows[0] else "scale_value"
    unit_key = "unit" if "unit" in rows[0] else "scale_unit"
    if value_key not in rows[0] or unit_key not in rows[0]:
        raise ScaleError(f"{path} needs columns value and unit (or scale_value and scale_unit)")
    usable, unusable = [], []
    for row in rows:
        truth = _truth_row(row, value_key, unit_key)
        if isinstance(truth, str):
            unusable.append((row["path"], truth))
        else:
            usable.append(truth)
    return usable, unusable, "layout" in rows[0]


def _image_of_path(sessions: sessionmaker) -> dict[str, str]:
    """Every way a truth CSV may name an image: source relpath, absolute source path, store file name."""
    names = {}
    with sessions() as session:
        for root, relpath, md5 in session.execute(
            select(File.source_root, File.relpath, File.image_md5).where(File.image_md5.is_not(None))
        ):
            names.setdefault(relpath, md5)
            names.setdefault(f"{root}/{relpath}", md5)
        for (md5,) in session.execute(select(Image.md5)):
            names[f"{md5}.tif"] = names[f"{md5}.jpg"] = md5
    return names


def _lookup(names: dict[str, str], path: str) -> str | None:
    """The image a truth path names, dropping leading folders until a known path remains."""
    parts = path.replace("\\", "/").strip("/").split("/")
    for start in range(len(parts)):
        md5 = names.get("/".join(parts[start:]))
        if md5:
            return md5
    return None


def judge_reading(reading: ReadingRow | None, truth: TruthRow) -> str:
    """The outcome (one of :data:`OUTCOMES`) of one stored reading against its truth; see :func:`validate`."""
    if reading is None:
        return "not read yet"
    if reading.status != "ok" or reading.nm_per_px is None:
        if truth.length is None:
            return "positive"
        return "stripe not detected" if reading.status in STRIPE_PROBLEMS else "unreadable"
    on_label = reading.source in LABEL_SOURCES
    if on_label and (
        truth.length is None
        or reading.unit != truth.length.unit
        or not math.isclose(reading.value or 0.0, truth.length.value, rel_tol=1e-9)
    ):
        return "wrong scale"
    if truth.nm_per_px is not None:
        return "positive" if abs(reading.nm_per_px / truth.nm_per_px - 1) <= RIGHT_WITHIN else "wrong scale"
    return "positive" if on_label or truth.length is None else "unreadable"


def _describe(length: Length | None, nm_per_px: float | None, source: str | None = None) -> str:
    """A scale as the wrong-readings list writes it: ``'200 nm (2.5 nm/px)'``, ``'no label (6.1 nm/px, field)'``."""
    details = ", ".join(part for part in (None if nm_per_px is None else f"{nm_per_px:.4g} nm/px", source) if part)
    name = scale_key(length.value, length.unit) if length else "no label"
    return f"{name} ({details})" if details else name


def _group_table(outcomes: Iterable[tuple[str, str]], order: Iterable[str] | None = None) -> dict[str, dict]:
    """``{group: {images, right, abstained, wrong, percent_right}}`` from ``(group, outcome)`` pairs.

    Right is ``positive``, wrong ``wrong scale``, abstained ``stripe not
    detected`` or ``unreadable``; images not read yet are left out. Groups
    come in ``order`` when given (only those with images), else sorted.
    """
    counts: dict[str, Counter] = defaultdict(Counter)
    for group, outcome in outcomes:
        if outcome != "not read yet":
            counts[group][outcome] += 1
    table = {}
    for group in [name for name in order if name in counts] if order is not None else sorted(counts):
        counter = counts[group]
        images = sum(counter.values())
        table[group] = {
            "images": images,
            "right": counter["positive"],
            "abstained": counter["stripe not detected"] + counter["unreadable"],
            "wrong": counter["wrong scale"],
            "percent_right": round(100 * counter["positive"] / images, 2),
        }
    return table


def flagged_readings(sessions: sessionmaker) -> list[dict]:
    """Readings whose metadata and pixel sizes disagree (``flagged``), with every source's pixel size in nm.

    Returns one dict per image, by md5: ``md5``, ``nm_per_px`` (the value
    kept: the metadata's), ``metadata_nm_per_px``, ``ocr_nm_per_px`` (the
    bar), ``field_nm_per_px`` (the printed field width over the image width)
    and ``disagreement`` (relative, metadata against pixels).
    """
    columns = ("nm_per_px", "metadata_nm_per_px", "ocr_nm_per_px", "field_nm_per_px", "disagreement")
    with sessions() as session:
        rows = session.execute(
            select(ReadingRow.image_md5, *(getattr(ReadingRow, column) for column in columns))
            .where(ReadingRow.flagged)
            .order_by(ReadingRow.image_md5)
        ).all()
    return [{"md5": md5, **dict(zip(columns, values, strict=True))} for md5, *values in rows]


def validate(sessions: sessionmaker, truth_csv: Path, *, out_dir: Path | None = None) -> dict:
    """Compare the stored readings with a truth CSV: thesis Table 2.3, per layout, per width class, flagged.

    The CSV needs ``path``, ``value`` and ``unit`` (or ``scale_value`` and
    ``scale_unit``; an empty value means the image has no scale bar); a
    ``nm_per_px`` column (the true pixel size in nm) and a ``layout`` column
    (the data-bar layout) are used when present, as in the demo corpus'
    ``ground_truth.csv``. Each image counts once, however many of its files
    the CSV lists (the first row naming it decides).

    Each image's outcome (:func:`judge_reading`), in this order:

    * ``not read yet``: no reading is stored;
    * the reading has no pixel size (status other than ``ok``): ``positive``
      when the truth has no bar, else ``stripe not detected`` (status
      ``no_stripe`` or ``multiple_stripes``) or ``unreadable`` (the reader
      abstained);
    * ``wrong scale``: the pixel size rests on the bar's label (source
      ``ocr`` or ``both``) and that label is not the truth's (or the truth has
      no bar);
    * with the truth's ``nm_per_px``: ``positive`` when the reading's
      ``nm_per_px`` lies within :data:`RIGHT_WITHIN` (1 %) of it, whatever
      the source (metadata, field width and the bar alike), else
      ``wrong scale``;
    * without it: ``positive`` when the label matched (above) or the truth
      has no bar; a metadata or field-width pixel size of an image with a bar
      cannot be checked and counts as ``unreadable``.

    Returns
    -------
    dict
        ``total`` (images), ``table`` (outcome: images, percent), ``by_layout``
        (empty without a ``layout`` column) and ``by_width_class`` (by the
        ingested image's width, :func:`width_class`), each group: images,
        right, abstained, wrong, percent_right (images not read yet left
        out); ``flagged`` (the images' :func:`flagged_readings`, with their
        ``path``); ``wrong`` (``[path, expected, read]``); ``unmatched_paths``
        (naming no ingested image); ``unusable_truth_rows`` (``[path,
        reason]``); ``right_within`` (:data:`RIGHT_WITHIN`). With ``out_dir``
        it is also written to ``out_dir/validation.json`` (the report reads
        ``results/scale/``).
    """
    names = _image_of_path(sessions)
    truths, unusable, has_layout = _truth_rows(Path(truth_csv))
    with sessions() as session:
        readings = {row.image_md5: row for row in session.scalars(select(ReadingRow))}
        widths = dict(session.execute(select(Image.md5, Image.width)).all())
    flagged_by_md5 = {row["md5"]: row for row in flagged_readings(sessions)}
    seen = set()
    outcome: Counter = Counter()
    by_layout, by_width, flagged, wrong, unmatched = [], [], [], [], []
    for truth in truths:
        md5 = _lookup(names, truth.path)
        if md5 is None:
            unmatched.append(truth.path)
            continue
        if md5 in seen:
            continue
        seen.add(md5)
        reading = readings.get(md5)
        judged = judge_reading(reading, truth)
        outcome[judged] += 1
        by_layout.append((truth.layout or "unknown", judged))
        by_width.append((width_class(widths[md5]), judged))
        if md5 in flagged_by_md5:
            flagged.append({"path": truth.path, **flagged_by_md5[md5]})
        if judged == "wrong scale":
            read_length = Length(reading.value, reading.unit) if reading.value is not None else None
            wrong.append(
                (
                    truth.path,
                    _describe(truth.length, truth.nm_per_px),
                    _describe(read_length, reading.nm_per_px, reading.source),
                )
            )
    total = sum(outcome.values())
    table = {
        category: {"images": outcome[category], "percent": round(100 * outcome[category] / total, 2) if total else 0}
        for category in OUTCOMES
    }
    result = {
        "total": total,
        "table": table,
        "by_layout": _group_table(by_layout) if has_layout else {},
        "by_width_class": _group_table(by_width, [width_class(bound) for bound in WIDTH_CLASS_LOWER_PX]),
        "flagged": flagged,
        "wrong": wrong,
        "unmatched_paths": unmatched,
        "unusable_truth_rows": unusable,
        "right_within": RIGHT_WITHIN,
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "validation.json").write_text(
            json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    return result


def histogram(sessions: sessionmaker, dataset: str | None = None) -> tuple[list[str], list[tuple[str, dict]]]:
    """Images per scale, largest scale first (thesis Table 2.4); per top category of ``dataset`` if given.

    Returns the column names and ``(scale, {column: count})`` rows; columns are
    ``images`` without a dataset, else the categories plus ``unlabelled`` and ``total``.
    """
    with sessions() as session:
        scales = session.execute(
            select(ReadingRow.image_md5, ReadingRow.value, ReadingRow.unit).where(ReadingRow.value.is_not(None))
        ).all()
        categories = {}
        if dataset is not None:
            rows = session.execute(
                select(Label.image_md5, Label.category).where(Label.dataset == dataset, Label.image_md5.is_not(None))
            ).all()
            if not rows:
                raise ScaleError(f"no labels of dataset {dataset!r}: import it with `semcurate labels import`")
            categories = {md5: category for md5, category in rows}
    counts: dict = defaultdict(Counter)
    for md5, value, unit in scales:
        counts[(value * NM_PER_UNIT[unit], scale_key(value, unit))][categories.get(md5, "unlabelled")] += 1
    columns = sorted({column for counter in counts.values() for column in counter} - {"unlabelled"})
    columns = [*columns, "unlabelled", "total"] if dataset else ["images"]
    table = []
    for (_nm, key), counter in sorted(counts.items(), reverse=True):
        if dataset:
            table.append(
                (key, {**{column: counter.get(column, 0) for column in columns[:-1]}, "total": sum(counter.values())})
            )
        else:
            table.append((key, {"images": counter["unlabelled"]}))
    return columns, table


def create_subset(sessions: sessionmaker, name: str, scales: list[str], *, replace: bool = False) -> dict:
    """Fix subset ``name`` as the images whose bar reads one of ``scales`` ("1um", "2 µm", "200nm")."""
    wanted = []
    for text in scales:
        length = parse_length(text)
        if length is None:
            raise ScaleError(f"cannot read {text!r} as a scale: write a number and nm, µm (or um) or mm, e.g. 2um")
        wanted.append(length)
    with sessions.begin() as session:
        if session.get(Subset, name) is not None:
            if not replace:
                raise ScaleError(f"subset {name!r} exists: pass --replace to rebuild it")
            session.execute(delete(SubsetMember).where(SubsetMember.subset == name))
            session.execute(delete(Subset).where(Subset.name == name))
        members = set()
        for length in wanted:
            members.update(
                session.scalars(
                    select(ReadingRow.image_md5).where(
                        ReadingRow.status == "ok",
                        ReadingRow.unit == length.unit,
                        ReadingRow.value.between(length.value * (1 - 1e-9), length.value * (1 + 1e-9)),
                    )
                )
            )
        criteria = {"scales": [scale_key(length.value, length.unit) for length in wanted], "source": "data bar"}
        session.add(Subset(name=name, criteria=json.dumps(criteria, ensure_ascii=False), size=len(members)))
        session.flush()
        if members:
            session.execute(insert(SubsetMember), [{"subset": name, "image_md5": md5} for md5 in sorted(members)])
    return {"name": name, "size": len(members), **criteria}


def list_subsets(sessions: sessionmaker) -> list[dict]:
    """Every subset with its size, criteria and creation time."""
    with sessions() as session:
        return [
            {
                "name": row.name,
                "size": row.size,
                "criteria": row.criteria,
                "created": row.created_at.isoformat(" ", "seconds"),
            }
            for row in session.scalars(select(Subset).order_by(Subset.name))
        ]
