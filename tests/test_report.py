"""The HTML report: self-contained, numbers from what is stored, missing sections name their command."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections import Counter
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from semcurate.db.models import (
    Clustering,
    FeatureSet,
    File,
    Image,
    IngestRun,
    Label,
    LabelDataset,
    ScaleReading,
    Subset,
    SubsetMember,
    TreeMemberRow,
    TreeNodeRow,
    TreeRow,
)
from semcurate.evaluation.report import THUMBNAIL_WIDTH, collect, render, write_report
from semcurate.ingest.scale_database import scale_key

#: (format, status, relation) of every file the fixture inserts.
FILES = (
    [("tiff", "image", None)] * 4
    + [("jpg", "image", None)]
    + [("jpg", "duplicate", "jpg_rendition")] * 3
    + [("tiff", "duplicate", "exact")] * 2
    + [("tiff", "corrupt", None)]
    + [("bmp", "unsupported", None)] * 2
    + [("png", "image", None)]
)

#: md5 → (category of SEM_Dataset or None, scale bar (value, unit) or None).
IMAGES = {
    hashlib.md5(f"image {index}".encode()).hexdigest(): spec
    for index, spec in enumerate(
        [
            ("Nanowires", (1.0, "µm")),
            ("Nanowires", (2.0, "µm")),
            ("Particles", (1.0, "µm")),
            (None, (200.0, "nm")),
            ("Particles", None),
        ]
    )
}

#: (path, name, size, parent path) in depth-first order, children by position.
NODES = [
    ("Nanowires", "<b>&", 3, None),
    ("Nanowires.1", "vertical arrays", 2, "Nanowires"),
    ("Nanowires.2", None, 1, "Nanowires"),
    ("Particles", None, 2, None),
]


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width), dtype=np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def stocked(sessions, tmp_path):
    """A database with files, images, labels, scale readings, a subset, a feature set, a clustering and a tree;
    a flat store with one JPG per image; a results folder with an ID study and a distance study."""
    store = tmp_path / "store"
    store.mkdir()
    md5s = list(IMAGES)
    for index, md5 in enumerate(md5s):
        PILImage.fromarray(np.full((300, 400), 40 * index, np.uint8)).save(store / f"{md5}.jpg", quality=90)
    with sessions.begin() as session:
        session.add(IngestRun(source_root="/src", store=str(store)))
        session.add_all(
            Image(md5=md5, source_format="tiff", jpg_md5=md5[::-1], width=400, height=300, mode="L", phash=md5[:16])
            for md5 in md5s
        )
        session.flush()
        session.add_all(
            File(
                source_root="/src",
                relpath=f"file{index}.{fmt}",
                extension=fmt,
                format=fmt,
                status=status,
                relation=relation,
                image_md5=md5s[index % len(md5s)] if status in ("image", "duplicate") else None,
            )
            for index, (fmt, status, relation) in enumerate(FILES)
        )
        session.add(
            LabelDataset(
                name="SEM_Dataset",
                directory="/labels",
                n_files=4,
                n_unique=4,
                n_matched=4,
                n_matched_reencoded=0,
                n_unmatched=0,
                n_conflicting=0,
            )
        )
        session.flush()
        session.add_all(
            Label(
                dataset="SEM_Dataset",
                relpath=f"{category}/{md5}.jpg",
                file_md5=md5,
                category_path=category,
                category=category,
                image_md5=md5,
                match="md5",
            )
            for md5, (category, _scale) in IMAGES.items()
            if category
        )
        session.add_all(
            ScaleReading(
                image_md5=md5,
                status="ok" if scale else "unreadable",
                value=scale[0] if scale else None,
                unit=scale[1] if scale else None,
                reader_version="test",
            )
            for md5, (_category, scale) in IMAGES.items()
        )
        in_subset = [md5 for md5, (_category, scale) in IMAGES.items() if scale and scale[1] == "µm"]
        session.add(Subset(name="1u-2u", criteria=json.dumps({"scales": ["1 µm", "2 µm"]}), size=len(in_subset)))
        session.flush()
        session.add_all(SubsetMember(subset="1u-2u", image_md5=md5) for md5 in in_subset)
        session.add(
            FeatureSet(
                name="classic",
                extractor="classic",
                weights="none",
                weights_digest="f00dfeed" * 8,
                layer="descriptor",
                dimension=64,
                n_rows=len(md5s),
                store_path="features.h5",
                parameters=json.dumps({"crop": True}),
            )
        )
        session.add(
            Clustering(
                feature_set="classic",
                method="ward",
                kind="hierarchy",
                n_points=len(md5s),
                parameters=json.dumps({"metric": "euclidean"}),
                store_path="clusterings.h5",
                store_key="1",
                seconds=0.01,
            )
        )
        tree = TreeRow(
            feature_set="classic",
            method="ward",
            labels_dataset="SEM_Dataset",
            depth=1,
            rule="silhouette",
            parameters=json.dumps({"min_size": 1}),
            n_images=len(md5s),
            n_labelled=4,
        )
        session.add(tree)
        session.flush()
        ids: dict[str, int] = {}
        for index, (path, name, size, parent) in enumerate(NODES):
            node = TreeNodeRow(
                tree_id=tree.id,
                parent_id=ids.get(parent),
                path=path,
                depth=path.count(".") + 1,
                position=int(path.rsplit(".", 1)[1]) if "." in path else index + 1,
                category=path.split(".")[0],
                name=name,
                size=size,
                representative_md5=md5s[index],
                mean_image=png_bytes(160, 120, index),
                split_rule="silhouette" if parent is None and path == "Nanowires" else None,
                split_scores=json.dumps({"2": 0.42}) if path == "Nanowires" else None,
            )
            session.add(node)
            session.flush()
            ids[path] = node.id
            session.add_all(
                TreeMemberRow(node_id=node.id, image_md5=md5, assigned_by="label") for md5 in md5s[index : index + size]
            )
    results = tmp_path / "results"
    (results / "id").mkdir(parents=True)
    (results / "distances").mkdir()
    (results / "id" / "classic.id.json").write_text(
        json.dumps(
            {
                "feature_set": "classic",
                "subset": None,
                "rows": 5,
                "estimates": {"1.0": 3.1, "0.9": 3.4},
                "scan": {"sizes": [5, 3], "means": [3.2, 2.9], "stds": [0.1, 0.2]},
                "suggested_code_size": 4,
            }
        )
    )
    (results / "id" / "classic.id_fit.png").write_bytes(png_bytes(60, 40, 1))
    (results / "id" / "classic.id_scan.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (results / "distances" / "distances.json").write_text(
        json.dumps(
            {
                "dataset": "SEM_Dataset",
                "subset": None,
                "sample_size": 4,
                "per_category": {"Nanowires": 2, "Particles": 2},
                "correlation_with_d_disc": {"classic": 0.5},
            }
        )
    )
    (results / "distances" / "distances.png").write_bytes(png_bytes(80, 40, 2))
    return sessions, results, store


class Tables(HTMLParser):
    """Cell texts of every table with an id: {id: [[cell, ...], ...]} (head, body and foot rows)."""

    def __init__(self):
        super().__init__()
        self.tables, self._table, self._row, self._cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id"):
            self._table = self.tables.setdefault(dict(attrs)["id"], [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables_of(html: str) -> dict:
    parser = Tables()
    parser.feed(html)
    return parser.tables


@pytest.fixture
def written(stocked, tmp_path):
    sessions, results, _store = stocked
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    summary = write_report(sessions, results, out_dir / "report.html")
    return summary, out_dir, (out_dir / "report.html").read_text(encoding="utf-8")


def test_report_is_one_self_contained_file(written):
    summary, out_dir, html = written
    assert [path.name for path in out_dir.iterdir()] == ["report.html"]  # no temporary file left behind
    assert summary["bytes"] == (out_dir / "report.html").stat().st_size
    lowered = html.lower()
    for external in ('src="http', "<link", "<script", 'href="http', "url(", "@import"):
        assert external not in lowered
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', html))


def test_every_embedded_image_decodes(written):
    _summary, _out_dir, html = written
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources
    formats = Counter()
    for source in sources:
        match = re.fullmatch(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)", source)
        assert match, source[:60]
        with PILImage.open(io.BytesIO(base64.b64decode(match.group(2), validate=True))) as image:
            image.load()
            assert image.format == match.group(1).upper()
            if image.format == "JPEG":
                assert image.width <= THUMBNAIL_WIDTH
        formats[image.format] += 1
    # one thumbnail (JPEG) and one mean image (PNG) per node; the broken scan PNG is left out
    assert formats["JPEG"] == len(NODES)
    assert formats["PNG"] >= len(NODES) + 2
    assert 'alt="Fig. 3.7' not in html
    assert "left out (missing or not a PNG): classic.id_scan.png" in html


def test_format_inventory_matches_the_files_table(written):
    _summary, _out_dir, html = written
    rows = tables_of(html)["formats-table"]
    header, body, footer = rows[0], rows[1:-1], rows[-1]
    statuses = header[1:-1]
    assert set(statuses) == {status for _fmt, status, _relation in FILES}
    expected = Counter((fmt, status) for fmt, status, _relation in FILES)
    assert {row[0] for row in body} == {fmt for fmt, _status, _relation in FILES}
    for row in body:
        assert [int(cell) for cell in row[1:-1]] == [expected[(row[0], status)] for status in statuses]
        assert int(row[-1]) == sum(expected[(row[0], status)] for status in statuses)
    assert int(footer[-1]) == len(FILES)
    totals = [int(row[-1]) for row in body]
    assert totals == sorted(totals, reverse=True)


def test_tree_nodes_in_order_with_names_and_sizes(written):
    _summary, _out_dir, html = written
    found = re.findall(
        r'class="path">([^<]*)</span>\s*(?:<span class="name">([^<]*)</span>\s*)?'
        r'<span class="size">(\d+) images?</span>',
        html,
    )
    assert [(path, name or None, int(size)) for path, name, size in found] == [
        (path, name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") if name else None, size)
        for path, name, size, _parent in NODES
    ]


def test_html_is_escaped(written):
    _summary, _out_dir, html = written
    assert "&lt;b&gt;&amp;" in html
    assert "<b>&" not in html


#: A placement report as ``tree build`` stores it, written by hand: 12 labelled images held out in 3 folds, 4 placed.
PLACEMENT = {
    "classifier": "knn",
    "calibration": "matrix-scaling",
    "selected_by": "balanced accuracy, stratified 3-fold cross-validation",
    "untested": None,
    "heldout_accuracy": 0.8333,
    "heldout_balanced_accuracy": 0.8125,
    "doubtful_below": 0.5,
    "placed": 4,
    "doubtful": 1,
    "per_category": {
        "Nanowires": {"labelled": 8, "heldout": 8, "accuracy": 0.875, "placed": 3, "doubtful": 1},
        "Particles & <dust>": {"labelled": 4, "heldout": 4, "accuracy": 0.75, "placed": 1, "doubtful": 0},
    },
    "confusion": {"categories": ["Nanowires", "Particles & <dust>"], "matrix": [[7, 1], [1, 3]]},
}


def report_with_placement(stocked, tmp_path, placement: str) -> tuple[int, str]:
    """The report of the fixture's tree with ``placement`` stored as its placement report: (tree id, HTML)."""
    sessions, results, _store = stocked
    with sessions.begin() as session:
        tree = session.scalars(select(TreeRow)).one()
        tree.placement = placement
        tree_id = tree.id
    write_report(sessions, results, tmp_path / "placed.html")
    return tree_id, (tmp_path / "placed.html").read_text(encoding="utf-8")


def test_the_placement_of_a_tree_is_shown_per_category_with_its_confusion_matrix(stocked, tmp_path):
    tree_id, html = report_with_placement(stocked, tmp_path, json.dumps(PLACEMENT))
    tables = tables_of(html)
    assert tables[f"placement-{tree_id}"] == [
        ["category", "labelled", "held out", "held-out accuracy", "placed", "doubtful"],
        ["Nanowires", "8", "8", "0.875", "3", "1"],
        ["Particles & <dust>", "4", "4", "0.75", "1", "0"],
    ]
    assert tables[f"placement-confusion-{tree_id}"] == [
        ["labelled \\ predicted", "1", "2"],
        ["1. Nanowires", "7", "1"],
        ["2. Particles & <dust>", "1", "3"],
    ]
    text = " ".join(html.split())
    assert (
        "knn, calibrated by matrix-scaling, chosen by balanced accuracy, stratified 3-fold cross-validation; "
        "held-out accuracy 0.8333 (balanced 0.8125); 4 images placed, 1 of them doubtful (probability below 0.5)"
    ) in text
    assert "Particles &amp; &lt;dust&gt;" in html and "<dust>" not in html
    assert "no label reached" not in text  # PLACEMENT, as stored before the count existed, has none

    _tree_id, html = report_with_placement(
        stocked, tmp_path, json.dumps({**PLACEMENT, "unreached": 2, "unreached_placed_by": "knn <alone>"})
    )
    assert (
        "1 of them doubtful (probability below 0.5). 2 of them no label reached through the graph of similar "
        "images: knn &lt;alone&gt; placed them."
    ) in " ".join(html.split())


def test_a_tree_that_placed_without_a_classifier_says_why_and_an_unreadable_placement_is_one_line(stocked, tmp_path):
    why = {"classifier": None, "untested": "one labelled category (Nanowires): every image is placed in it"}
    tree_id, html = report_with_placement(
        stocked, tmp_path, json.dumps({**why, "doubtful_below": 0.5, "placed": 1, "doubtful": 0})
    )
    assert "Placement: one labelled category (Nanowires): every image is placed in it." in " ".join(html.split())
    assert f"placement-{tree_id}" not in tables_of(html)

    tree_id, html = report_with_placement(stocked, tmp_path, '{"classifier": "knn", "placed": ')
    assert "the placement report stored with this tree could not be read; run `semcurate tree build` again" in html
    assert f"placement-{tree_id}" not in tables_of(html)
    assert 'class="path">Nanowires.1</span>' in html  # the rest of the tree still renders


def test_the_placement_summary_reads_what_place_unlabelled_reports():
    from sklearn.datasets import make_blobs

    from semcurate.clustering import place_unlabelled, placement_summary

    values, truth = make_blobs(240, centers=[[0, 0], [3, 0], [0, 3]], random_state=1)
    names = np.array(["Fibres", "Particles", "Tips"])[truth]
    placement = place_unlabelled(values[:60], list(names[:60]), values[60:])
    summary = placement_summary(json.dumps(placement.report))
    assert [row[0] for row in summary["per_category"]] == ["Fibres", "Particles", "Tips"]
    assert sum(row[4] for row in summary["per_category"]) == 180  # every unlabelled row placed once
    assert sum(row[5] for row in summary["per_category"]) == int(placement.doubtful.sum())
    assert [row[1] for row in summary["per_category"]] == [
        int(np.sum(names[:60] == name)) for name in "Fibres Particles Tips".split()
    ]
    for number, (row, counts) in enumerate(zip(summary["per_category"], summary["confusion"], strict=True)):
        assert counts[0] == f"{number + 1}. {row[0]}"
        assert sum(counts[1:]) == row[2]  # each held-out row is predicted once
        assert row[3] == pytest.approx(counts[1 + number] / row[2], abs=1e-4)
    diagonal = sum(counts[1 + number] for number, counts in enumerate(summary["confusion"]))
    assert summary["heldout_accuracy"] == pytest.approx(
        diagonal / sum(row[2] for row in summary["per_category"]), abs=1e-4
    )
    assert placement_summary(None) is None and placement_summary("") is None


def assert_commands_exist(missing: dict, html: str) -> None:
    """Each missing reason names a `semcurate ...` command whose sub-commands and options the CLI has."""
    import typer.main

    from semcurate.cli import app

    group = typer.main.get_command(app)
    for reason in missing.values():
        command = re.search(r"run `(semcurate [^`]*)`", reason)
        assert command, reason
        assert command.group(1).replace(">", "&gt;") in html
        words, target = command.group(1).split()[1:], group
        for word in words:
            if not hasattr(target, "commands") or word.startswith(("-", ">")) or word.isupper():
                break
            assert word in target.commands, f"{reason}: no command {word!r}"
            target = target.commands[word]
        options = {word for word in words if word.startswith("--")}
        assert options <= {name for param in target.params for name in param.opts}, reason


def test_missing_sections_name_their_command(written):
    summary, _out_dir, html = written
    assert {
        "formats",
        "labels",
        "scale_histogram",
        "subsets",
        "intrinsic_dimension",
        "distances",
        "tree",
        "provenance",
    } <= set(summary["present"])
    assert {"scale_validation", "ae_grid", "nmi", "compare2d", "quality"} == set(summary["missing"])
    assert_commands_exist(summary["missing"], html)


def test_collected_numbers_follow_the_database(stocked):
    sessions, results, store = stocked
    sections = collect(sessions, results, store)
    json.dumps(sections)  # plain data, images as base64 text
    histogram = sections["scale_histogram"]["data"]
    read = Counter(scale_key(*scale) for _category, scale in IMAGES.values() if scale)
    assert {row["scale"]: row["counts"][-1] for row in histogram["rows"]} == read
    subset = sections["subsets"]["data"]["tables"][0]
    expected = Counter(category for category, scale in IMAGES.values() if category and scale and scale[1] == "µm")
    assert {row["category"]: row["subset"] for row in subset["rows"]} == {
        category: expected[category] for category in {c for c, _ in IMAGES.values() if c}
    }
    provenance = sections["provenance"]["data"]
    assert provenance["feature_sets"][0]["weights_digest"] == "f00dfeed" * 8
    assert set(provenance["versions"]) >= {"python", "semcurate", "numpy", "scikit-learn", "tensorflow"}
    assert sections["intrinsic_dimension"]["data"]["studies"][0]["suggested_code_size"] == 4
    assert "<html" in render(sections)


def test_empty_database_gives_only_missing_sections(sessions, tmp_path):
    summary = write_report(sessions, tmp_path / "no-results", tmp_path / "empty.html")
    assert summary["present"] == ["provenance"]
    html = (tmp_path / "empty.html").read_text(encoding="utf-8")
    assert_commands_exist(summary["missing"], html)
    assert {
        "ingest",
        "tree build",
        "labels import",
        "scale",
        "subset create",
        "id",
        "reduce",
        "distances",
        "evaluate",
        "compare-2d",
    } <= {
        re.search(r"`semcurate ([a-z][a-z0-9-]*(?: [a-z][a-z-]*)?)", reason).group(1)
        for reason in summary["missing"].values()
    }
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".empty")) == []


def test_results_sections_show_their_records(stocked):
    sessions, results, store = stocked
    grid = [
        {
            "h1": 200,
            "h2": 50,
            "code": 4,
            "tying": "outer",
            "architecture": "T200-50-4",
            "n_parameters": 1234,
            "train_mse": 0.5,
            "heldout_mse": 0.625,
        },
        {
            "h1": 400,
            "h2": 50,
            "code": 4,
            "tying": "none",
            "architecture": "400-50-4",
            "n_parameters": 2345,
            "train_mse": 0.25,
            "heldout_mse": 0.75,
        },
    ]
    best = [
        {
            "feature_set": "classic",
            "method": "ward",
            "k": 12,
            "nmi": 0.625,
            "excess_over_chance": 0.375,
            "classes": 10,
            "nmi_at_classes": None,
            "dendrogram_purity": 0.5,
        }
    ]
    scored = {
        "tree_id": 1,
        "dataset": "Hierarchical",
        "labelled_images": 4,
        "leaf_nmi": 0.375,
        "purity": 0.875,
        "per_category": {"Nanowires": {"labelled": 3, "children": 2, "subcategories": 2, "nmi": 0.25}},
    }
    runs = [{"dataset": "blobs", "algorithm": "kmeans", "k": 3, "seconds": 0.5, "ari": 0.875}]
    validation = {
        "total": 4,
        "table": {"positive": {"images": 3, "percent": 75.0}, "unreadable": {"images": 1, "percent": 25.0}},
        "wrong": [],
        "unmatched_paths": [],
    }
    for folder, name, content in (
        (
            "reduce",
            "classic.ae4.json",
            {"feature_set": "classic.ae4", "parent": "classic", "code_size": 4, "rows": 5, "grid": grid},
        ),
        ("evaluate", "nmi_grid.json", {"best": best}),
        ("compare2d", "compare2d.json", runs),
        ("scale", "validation.json", validation),
        ("evaluate", "tree_scores.json", scored),
    ):
        (results / folder).mkdir(exist_ok=True)
        (results / folder / name).write_text(json.dumps(content))
    (results / "evaluate" / "nmi_grid.png").write_bytes(png_bytes(50, 30, 3))
    html = render(collect(sessions, results, store))
    tables = tables_of(html)
    expected_grid = [
        [
            row["architecture"],
            row["tying"],
            str(row["n_parameters"]),
            f"{row['train_mse']:.4g}",
            f"{row['heldout_mse']:.4g}",
        ]
        for row in grid
    ]
    assert tables["ae-grid-1"][0] == ["architecture", "tying", "n_parameters", "train_mse", "heldout_mse"]
    assert tables["ae-grid-1"][1:] == expected_grid
    assert tables["nmi-table"][1] == [
        best[0]["feature_set"],
        best[0]["method"],
        str(best[0]["k"]),
        f"{best[0]['nmi']:.4g}",
        f"{best[0]['excess_over_chance']:.4g}",
        f"{best[0]['dendrogram_purity']:.4g}",
    ]
    assert tables[f"tree-scores-{scored['tree_id']}"][1] == ["Nanowires", "3", "2", "2", "0.25"]
    assert f"leaf NMI {scored['leaf_nmi']:.4g}, tree purity {scored['purity']:.4g}" in html
    assert tables["compare2d-table"][0] == list(runs[0])
    assert tables["compare2d-table"][1] == [str(value) for value in runs[0].values()]
    assert [row[:2] for row in tables["scale-validation-table"][1:]] == [
        [outcome, str(cell["images"])] for outcome, cell in validation["table"].items()
    ]
    assert 'alt="nmi_grid.png"' in html
