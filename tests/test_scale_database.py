"""The scale commands end to end on a small generated corpus: read, validate, histogram, subsets."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # reads the scale of 30 full-size demo images with Tesseract

READING_KEYS = ["path", "status", "value", "unit", "bar_px", "nm_per_px", "source"]


def semcurate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    """30 full-size demo images, ingested, labels imported, scales read with 2 workers."""
    root = tmp_path_factory.mktemp("scales")
    db = f"sqlite:///{root / 'db.sqlite'}"
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


def test_every_image_gets_a_reading_and_validation_finds_no_wrong_scale(repository):
    root, db = repository
    result = semcurate("scale", "validate", str(root / "corpus" / "ground_truth.csv"), "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["total"] == 30 and report["table"]["not read yet"]["images"] == 0
    assert report["table"]["wrong scale"]["images"] == 0
    assert report["table"]["positive"]["images"] >= 28


def test_second_run_reads_nothing_new(repository):
    _, db = repository
    result = semcurate("scale", "--db", db)
    assert result.returncode == 0 and "read 0 images now; 0 still without" in result.stdout


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


def test_histogram_counts_match_the_stored_readings(repository):
    _root, db = repository
    import sqlite3

    stored = (
        sqlite3.connect(db.removeprefix("sqlite:///"))
        .execute("SELECT value, unit, count(*) FROM scale_readings WHERE value IS NOT NULL GROUP BY value, unit")
        .fetchall()
    )
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
    import sqlite3

    connection = sqlite3.connect(db.removeprefix("sqlite:///"))
    members = connection.execute(
        "SELECT r.value, r.unit FROM subset_members m JOIN scale_readings r ON r.image_md5 = m.image_md5 "
        "WHERE m.subset = '1u-2u'"
    ).fetchall()
    expected = connection.execute(
        "SELECT count(*) FROM scale_readings WHERE status = 'ok' AND unit = 'µm' AND value IN (1, 2)"
    ).fetchone()[0]
    assert members and set(members) <= {(1.0, "µm"), (2.0, "µm")} and len(members) == expected


def test_scale_before_ingest_is_a_clear_error(tmp_path):
    result = semcurate("scale", "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.returncode == 1 and "ingest" in result.stderr
