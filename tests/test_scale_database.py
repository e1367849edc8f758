"""The scale shell: validation, histogram and flagged readings on hand-written readings, then a generated corpus.

The hand-written part stores one :class:`ScaleReading` per case in a fresh
database and checks every table of :func:`validate` against outcomes decided
by hand here (the case list says, for each image, what it should count as and
why), counted in the test.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BACKENDS
from sqlalchemy import create_engine, insert, text
from sqlalchemy.pool import NullPool

from semcurate.db.models import File, Image
from semcurate.db.models import ScaleReading as ReadingRow
from semcurate.ingest.scale_bar import ScaleReading
from semcurate.ingest.scale_database import flagged_readings, histogram, reading_row, validate

#: The source root the hand-written files were "ingested" from; truth CSVs name them under ``new_dati_SEM/``.
SOURCE_ROOT = "/data/new_dati_SEM"
#: Width classes of the validation tables, written out by hand for the widths used below.
WIDTH_CLASS = {
    512: "< 768 px",
    640: "< 768 px",
    1024: "768-1535 px",
    2048: "1536-3071 px",
    3072: "≥ 3072 px",
    4096: "≥ 3072 px",
}
#: Table 2.3's outcomes, in order, and images without a reading.
OUTCOMES = ("positive", "stripe not detected", "wrong scale", "unreadable", "not read yet")


@dataclass(frozen=True)
class Case:
    """One hand-written image: its truth, its stored reading, and the outcome decided by hand.

    ``expected`` is the outcome against a truth CSV with ``nm_per_px`` and
    ``layout``; ``expected_lab`` against a lab's CSV with only path, value and
    unit (where a pixel size from the metadata or the field width cannot be
    checked, and a bar measured 2.5 % too long goes unnoticed).
    """

    name: str
    width: int
    layout: str
    truth: tuple[str, str, float]  # value, unit ("" for no bar), true nm/px
    reading: ScaleReading | None
    expected: str
    expected_lab: str

    @property
    def md5(self) -> str:
        return f"{CASES.index(self) + 1:032x}"

    @property
    def relpath(self) -> str:
        return f"lab/{self.name}.tif"


CASES = [
    Case(
        "ocr_right",
        1024,
        "zeiss_framed",
        ("200", "nm", 2.0),
        ScaleReading("ok", 200.0, "nm", 100.0, 2.0, "ocr", ocr_nm_per_px=2.0),
        "positive",
        "positive",
    ),
    Case(
        "both_within_one_percent",
        512,
        "zeiss_plain",
        ("1", "µm", 10.0),
        ScaleReading(
            "ok", 1.0, "µm", 99.5, 10.05, "both", ocr_nm_per_px=10.05, metadata_nm_per_px=10.0, disagreement=0.005
        ),
        "positive",
        "positive",
    ),
    Case(
        "field_width_only",
        2048,
        "tescan",
        ("5", "µm", 4.0),
        ScaleReading("ok", nm_per_px=4.02, source="field", field_nm=8232.96, field_nm_per_px=4.02),
        "positive",
        "unreadable",
    ),
    Case(
        "flagged_metadata_right",
        4096,
        "thermo_table",
        ("2", "µm", 1.0),
        ScaleReading(
            "ok",
            nm_per_px=1.0,
            source="metadata",
            ocr_nm_per_px=1.05,
            metadata_nm_per_px=1.0,
            metadata_vendor="fei",
            disagreement=0.05,
            flagged=True,
        ),
        "positive",
        "unreadable",
    ),
    Case(
        "bar_measured_long",
        1024,
        "zeiss_framed",
        ("200", "nm", 2.0),
        ScaleReading("ok", 200.0, "nm", 97.56, 2.05, "ocr", ocr_nm_per_px=2.05),
        "wrong scale",
        "positive",
    ),
    Case(
        "label_misread",
        1024,
        "jeol",
        ("200", "nm", 2.0),
        ScaleReading("ok", 100.0, "nm", 100.0, 1.0, "ocr", ocr_nm_per_px=1.0),
        "wrong scale",
        "wrong scale",
    ),
    Case(
        "stripe_missed",
        512,
        "jeol",
        ("500", "nm", 5.0),
        ScaleReading("no_stripe", reason="no stripe"),
        "stripe not detected",
        "stripe not detected",
    ),
    Case(
        "label_unreadable",
        2048,
        "hitachi_ruler",
        ("10", "µm", 20.0),
        ScaleReading("unreadable", bar_px=500.0, reason="no length next to the segment"),
        "unreadable",
        "unreadable",
    ),
    Case(
        "no_bar_none_read",
        1024,
        "no_stripe",
        ("", "", 3.0),
        ScaleReading("no_stripe", reason="no stripe"),
        "positive",
        "positive",
    ),
    Case("not_read", 1024, "zeiss_plain", ("1", "µm", 10.0), None, "not read yet", "not read yet"),
    Case(
        "flagged_metadata_wrong",
        3072,
        "thermo_table",
        ("1", "µm", 1.0),
        ScaleReading(
            "ok",
            nm_per_px=1.5,
            source="metadata",
            ocr_nm_per_px=1.0,
            metadata_nm_per_px=1.5,
            metadata_vendor="zeiss",
            disagreement=0.333,
            flagged=True,
        ),
        "wrong scale",
        "unreadable",
    ),
    Case(
        "bar_read_where_none",
        640,
        "no_stripe",
        ("", "", 2.0),
        ScaleReading("ok", 100.0, "nm", 50.0, 2.0, "ocr", ocr_nm_per_px=2.0),
        "wrong scale",
        "wrong scale",
    ),
]
#: Truth rows that name no usable image: a second row for an image already named, a path nobody ingested, a
#: value that is not a length.
EXTRA_ROWS = [
    (f"{CASES[0].md5}.tif", "5", "mm", 1.0, "zeiss_framed"),
    ("new_dati_SEM/elsewhere/ghost.tif", "1", "µm", 1.0, "jeol"),
    (f"new_dati_SEM/{CASES[1].relpath}x", "abc", "nm", 1.0, "jeol"),
]


def store_cases(sessions) -> None:
    """Insert the cases' images, files and readings as an ingest and ``semcurate scale`` would have."""
    with sessions.begin() as session:
        session.execute(
            insert(Image),
            [
                {
                    "md5": case.md5,
                    "source_format": "TIFF",
                    "jpg_md5": case.md5[::-1],
                    "width": case.width,
                    "height": case.width * 3 // 4,
                    "mode": "L",
                    "phash": "0" * 16,
                }
                for case in CASES
            ],
        )
        session.execute(
            insert(File),
            [
                {
                    "source_root": SOURCE_ROOT,
                    "relpath": case.relpath,
                    "extension": ".tif",
                    "format": "TIFF",
                    "md5": case.md5,
                    "status": "image",
                    "image_md5": case.md5,
                }
                for case in CASES
            ],
        )
        session.execute(
            insert(ReadingRow), [reading_row(case.md5, case.reading) for case in CASES if case.reading is not None]
        )


def write_truth(path: Path, *, lab: bool) -> Path:
    """The cases' truth CSV: the demo corpus' columns, or only path, value, unit (``lab``)."""
    rows = [(f"new_dati_SEM/{case.relpath}", *case.truth, case.layout) for case in CASES] + EXTRA_ROWS
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if lab:
            writer.writerow(("path", "value", "unit"))
            writer.writerows(row[:3] for row in rows)
        else:
            writer.writerow(("path", "scale_value", "scale_unit", "nm_per_px", "layout"))
            writer.writerows(rows)
    return path


def expected_groups(key, outcome_of) -> dict[str, dict]:
    """Images, right, abstained, wrong and % right per ``key(case)``, counted here from the hand-decided outcomes."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for case in CASES:
        if outcome_of(case) != "not read yet":
            counts[key(case)][outcome_of(case)] += 1
    return {
        group: {
            "images": counter.total(),
            "right": counter["positive"],
            "abstained": counter["stripe not detected"] + counter["unreadable"],
            "wrong": counter["wrong scale"],
            "percent_right": round(100 * counter["positive"] / counter.total(), 2),
        }
        for group, counter in counts.items()
    }


@pytest.fixture
def hand_written(sessions, tmp_path):
    store_cases(sessions)
    return sessions, write_truth(tmp_path / "truth.csv", lab=False), write_truth(tmp_path / "lab.csv", lab=True)


def test_validation_tables_count_the_hand_decided_outcomes(hand_written, tmp_path):
    sessions, truth, _lab = hand_written
    result = validate(sessions, truth, out_dir=tmp_path / "out")
    outcomes = Counter(case.expected for case in CASES)
    assert {outcome: cell["images"] for outcome, cell in result["table"].items()} == {
        outcome: outcomes[outcome] for outcome in OUTCOMES
    }
    assert result["total"] == len(CASES)
    assert result["table"]["positive"]["percent"] == round(100 * outcomes["positive"] / len(CASES), 2)
    assert result["by_layout"] == expected_groups(lambda case: case.layout, lambda case: case.expected)
    assert result["by_width_class"] == expected_groups(lambda case: WIDTH_CLASS[case.width], lambda case: case.expected)
    assert list(result["by_width_class"]) == ["< 768 px", "768-1535 px", "1536-3071 px", "≥ 3072 px"]
    assert [path.rsplit("/", 1)[1] for path, _expected, _read in result["wrong"]] == [
        f"{case.name}.tif" for case in CASES if case.expected == "wrong scale"
    ]
    assert result["unmatched_paths"] == ["new_dati_SEM/elsewhere/ghost.tif"]
    assert [path for path, _reason in result["unusable_truth_rows"]] == [EXTRA_ROWS[2][0]]
    written = json.loads((tmp_path / "out" / "validation.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(result))


def test_validation_lists_the_flagged_images_with_both_pixel_sizes(hand_written):
    sessions, truth, _lab = hand_written
    flagged = validate(sessions, truth)["flagged"]
    expected = [case for case in CASES if case.reading is not None and case.reading.flagged]
    assert [row["path"] for row in flagged] == [f"new_dati_SEM/{case.relpath}" for case in expected]
    assert [(row["md5"], row["metadata_nm_per_px"], row["ocr_nm_per_px"], row["disagreement"]) for row in flagged] == [
        (case.md5, case.reading.metadata_nm_per_px, case.reading.ocr_nm_per_px, case.reading.disagreement)
        for case in expected
    ]


def test_a_lab_csv_without_pixel_size_or_layout_judges_on_the_label(hand_written):
    sessions, _truth, lab = hand_written
    result = validate(sessions, lab)
    outcomes = Counter(case.expected_lab for case in CASES)
    assert {outcome: cell["images"] for outcome, cell in result["table"].items()} == {
        outcome: outcomes[outcome] for outcome in OUTCOMES
    }
    assert result["by_layout"] == {}
    assert result["by_width_class"] == expected_groups(
        lambda case: WIDTH_CLASS[case.width], lambda case: case.expected_lab
    )


def test_histogram_counts_bar_labels_and_flagged_readings_list_both_values(hand_written):
    sessions, _truth, _lab = hand_written
    columns, table = histogram(sessions)
    labels = Counter(
        f"{case.reading.value:g} {case.reading.unit}" for case in CASES if case.reading and case.reading.value
    )
    assert columns == ["images"] and dict((key, counts["images"]) for key, counts in table) == dict(labels)
    assert [key for key, _counts in table] == ["1 µm", "200 nm", "100 nm"]  # largest first
    flagged = flagged_readings(sessions)
    assert [(row["md5"], row["nm_per_px"], row["metadata_nm_per_px"], row["ocr_nm_per_px"]) for row in flagged] == [
        (case.md5, case.reading.nm_per_px, case.reading.metadata_nm_per_px, case.reading.ocr_nm_per_px)
        for case in CASES
        if case.reading is not None and case.reading.flagged
    ]


def test_the_printed_field_width_is_stored(hand_written):
    sessions, _truth, _lab = hand_written
    field = next(case for case in CASES if case.reading is not None and case.reading.source == "field")
    with sessions() as session:
        row = session.get(ReadingRow, field.md5)
    assert (row.field_nm, row.field_nm_per_px, row.value) == (8232.96, 4.02, None)


# ---------------------------------------------------------------------------- a generated corpus, end to end

#: Keys of each ``scale read --json`` line, in order: a stable interface for scripts.
READING_KEYS = [
    "path",
    "status",
    "value",
    "unit",
    "bar_px",
    "nm_per_px",
    "source",
    "flagged",
    "field_nm",
    "candidates",
    "disagreement",
    "reason",
]


def semcurate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, text=True)


def query(url: str, sql: str) -> list[tuple]:
    """Rows of one SQL query on the database at ``url`` (SQLite or PostgreSQL), read beside the commands."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def repository(request, tmp_path_factory):
    """30 full-size demo images, ingested, labels imported, scales read with 2 workers (slow: Tesseract), on an
    SQLite file and then on the test PostgreSQL server."""
    root = tmp_path_factory.mktemp("scales")
    if request.param == "sqlite":
        db = f"sqlite:///{root / 'db.sqlite'}"
    else:
        db = request.getfixturevalue("postgres_server").create_database()
    steps = [
        ("demo-data", str(root / "corpus"), "--images", "30", "--seed", "21"),
        ("ingest", str(root / "corpus" / "new_dati_SEM"), "--store", str(root / "store"), "--db", db, "--json"),
        ("labels", "import", str(root / "corpus" / "datasets" / "SEM_Dataset"), "--name", "SEM_Dataset", "--db", db),
        ("scale", "--workers", "2", "--db", db),
    ]
    for step in steps:
        result = semcurate(*step)
        assert result.returncode == 0, (step, result.stderr)
    return root, db


@pytest.mark.slow
def test_every_image_gets_a_reading_and_validation_finds_no_wrong_scale(repository):
    root, db = repository
    result = semcurate("scale", "validate", str(root / "corpus" / "ground_truth.csv"), "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["total"] == 30 and report["table"]["not read yet"]["images"] == 0
    assert report["table"]["wrong scale"]["images"] == 0
    assert report["table"]["positive"]["images"] >= 28
    with (root / "corpus" / "ground_truth.csv").open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        images = [row for row in reader if row["kind"] in ("original", "near-duplicate")]  # one row per image
    widths = Counter(
        "< 768 px"
        if width < 768
        else "768-1535 px"
        if width < 1536
        else "1536-3071 px"
        if width < 3072
        else "≥ 3072 px"
        for width in (int(row.get("width_px") or row["width"]) for row in images)
    )
    assert {group: cells["images"] for group, cells in report["by_width_class"].items()} == dict(widths)
    layouts = Counter(row["layout"] for row in images) if "layout" in reader.fieldnames else {}
    assert {group: cells["images"] for group, cells in report["by_layout"].items()} == dict(layouts)
    assert sum(cells["right"] for cells in report["by_width_class"].values()) == report["table"]["positive"]["images"]


@pytest.mark.slow
def test_second_run_reads_nothing_new(repository):
    _, db = repository
    result = semcurate("scale", "--db", db)
    assert result.returncode == 0 and "read 0 images now; 0 still without" in result.stdout


@pytest.mark.slow
def test_read_json_lines_have_the_stable_keys(repository):
    root, _ = repository
    truth = [
        row
        for row in csv.DictReader((root / "corpus" / "ground_truth.csv").open(encoding="utf-8"))
        if row["kind"] == "original" and row["format"] == "TIFF" and row["has_stripe"] == "true"
    ][:3]
    paths = [str(root / "corpus" / row["path"]) for row in truth]
    result = semcurate("scale", "read", *paths, "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [list(line) for line in lines] == [READING_KEYS] * 3
    for line, row in zip(lines, truth, strict=True):
        if line["status"] == "ok":
            assert (line["value"], line["unit"]) == (float(row["scale_value"]), row["scale_unit"])
            assert line["nm_per_px"] == pytest.approx(float(row["nm_per_px"]), rel=0.01)


def table_rows(output: str) -> dict[str, list[str]]:
    """Cells of a printed table, keyed by the first cell."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if line.startswith("│") and cells:
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow
def test_histogram_counts_match_the_stored_readings(repository):
    _root, db = repository
    stored = query(db, "SELECT value, unit, count(*) FROM scale_readings WHERE value IS NOT NULL GROUP BY value, unit")
    plain = table_rows(semcurate("scale", "histogram", "--db", db).stdout)
    assert {key: int(cells[0]) for key, cells in plain.items() if key != "total"} == {
        f"{value:g} {unit}": count for value, unit, count in stored
    }
    by_label = semcurate("scale", "histogram", "--dataset", "SEM_Dataset", "--db", db)
    assert by_label.returncode == 0, by_label.stderr
    for key, cells in table_rows(by_label.stdout).items():
        if key != "total":
            assert sum(int(cell) for cell in cells[:-1]) == int(cells[-1]) == int(plain[key][0])
    assert semcurate("scale", "histogram", "--dataset", "nope", "--db", db).returncode == 2


@pytest.mark.slow
def test_subsets_by_scale(repository):
    _, db = repository
    created = semcurate("subset", "create", "1u-2u", "--scale", "1um", "--scale", "2 µm", "--db", db)
    assert created.returncode == 0, created.stderr
    listed = semcurate("subset", "list", "--db", db)
    assert "1u-2u" in listed.stdout
    again = semcurate("subset", "create", "1u-2u", "--scale", "1um", "--db", db)
    assert again.returncode == 2 and "--replace" in again.stderr
    bad = semcurate("subset", "create", "x", "--scale", "one micron", "--db", db)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    members = query(
        db,
        "SELECT r.value, r.unit FROM subset_members m JOIN scale_readings r ON r.image_md5 = m.image_md5 "
        "WHERE m.subset = '1u-2u'",
    )
    ((expected,),) = query(
        db, "SELECT count(*) FROM scale_readings WHERE status = 'ok' AND unit = 'µm' AND value IN (1, 2)"
    )
    assert members and set(members) <= {(1.0, "µm"), (2.0, "µm")} and len(members) == expected


def test_scale_before_ingest_is_a_clear_error(tmp_path):
    result = semcurate("scale", "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.returncode == 1 and "ingest" in result.stderr
