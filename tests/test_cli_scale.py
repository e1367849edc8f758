"""``semcurate scale read / validate / histogram`` from the command line: real instrument TIFFs, flagged readings.

The validation and histogram commands run on the hand-written readings of
``test_scale_database`` (outcomes decided by hand there); ``scale read`` runs
on the real Zeiss and Thermo Fisher/FEI TIFFs that ``scripts/fetch_fixtures.py``
caches, whose truth is their own TIFF tags read here with tifffile.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_real_instruments import instrument_truth
from test_scale_database import CASES, WIDTH_CLASS, expected_groups, store_cases, table_rows, write_truth

#: Where ``scripts/fetch_fixtures.py`` (run by ``scripts/setup.sh``) caches the real instrument TIFFs.
INSTRUMENT_TIFFS = Path(__file__).resolve().parent.parent / ".cache" / "fixtures" / "instrument_tiffs"
ZEISS_1K = INSTRUMENT_TIFFS / "test_tiff_Zeiss_SEM_1k.tif"
FEI_8BIT = INSTRUMENT_TIFFS / "FEI-Helios-Ebeam-8bits.tif"


def semcurate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, text=True)


@pytest.fixture
def hand_written_db(sessions, db_url, tmp_path):
    """The database URL and truth CSV of ``test_scale_database``'s hand-written readings."""
    store_cases(sessions)
    return db_url, write_truth(tmp_path / "truth.csv", lab=False)


def flagged_cases():
    return [case for case in CASES if case.reading is not None and case.reading.flagged]


def test_validate_prints_table_2_3_per_layout_per_width_and_the_flagged(hand_written_db):
    db, truth = hand_written_db
    result = semcurate("scale", "validate", str(truth), "--db", db)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    outcomes = Counter(case.expected for case in CASES)
    for outcome in ("positive", "stripe not detected", "wrong scale", "unreadable", "not read yet"):
        assert rows[outcome][0] == str(outcomes[outcome])
    for groups in (
        expected_groups(lambda case: case.layout, lambda case: case.expected),
        expected_groups(lambda case: WIDTH_CLASS[case.width], lambda case: case.expected),
    ):
        for group, cells in groups.items():
            assert rows[group] == [str(cells[key]) for key in ("images", "right", "abstained", "wrong")] + [
                f"{cells['percent_right']:.1f}%"
            ]
    flagged = [line.split(": ")[1] for line in result.stdout.splitlines() if line.startswith("flagged: ")]
    assert flagged == [f"new_dati_SEM/{case.relpath}" for case in flagged_cases()]
    count_line = next(line for line in result.stdout.splitlines() if line.startswith("flagged ("))
    assert count_line.endswith(f"metadata kept): {len(flagged_cases())}")


def test_validate_json_carries_the_groups_and_the_flagged(hand_written_db, tmp_path):
    db, truth = hand_written_db
    result = semcurate("scale", "validate", str(truth), "--db", db, "--json", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["by_layout"] == expected_groups(lambda case: case.layout, lambda case: case.expected)
    assert [row["md5"] for row in report["flagged"]] == [case.md5 for case in flagged_cases()]
    assert json.loads((tmp_path / "out" / "validation.json").read_text(encoding="utf-8")) == report


def test_histogram_lists_the_flagged_with_md5_and_both_pixel_sizes(hand_written_db):
    db, _truth = hand_written_db
    as_json = semcurate("scale", "histogram", "--db", db, "--json")
    assert as_json.returncode == 0, as_json.stderr
    flagged = json.loads(as_json.stdout)["flagged"]
    assert [(row["md5"], row["metadata_nm_per_px"], row["ocr_nm_per_px"]) for row in flagged] == [
        (case.md5, case.reading.metadata_nm_per_px, case.reading.ocr_nm_per_px) for case in flagged_cases()
    ]
    plain = semcurate("scale", "histogram", "--db", db)
    assert plain.returncode == 0, plain.stderr
    assert [line.split(": ")[1] for line in plain.stdout.splitlines() if line.startswith("flagged: ")] == [
        case.md5 for case in flagged_cases()
    ]


@pytest.mark.skipif(not ZEISS_1K.is_file(), reason="run scripts/fetch_fixtures.py for the real instrument TIFFs")
def test_read_json_on_real_tiffs_gives_each_sources_pixel_size():
    # Needs the reader's ``ScaleReading.candidates`` and its trust order (issue 12): `auto` keeps the metadata.
    paths = [ZEISS_1K, FEI_8BIT]
    result = semcurate("scale", "read", *map(str, paths), "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for path, line in zip(paths, lines, strict=True):
        truth = instrument_truth(path)["nm_per_px"]  # read from the tags with tifffile, not with our reader
        assert line["candidates"]["metadata"] == pytest.approx(truth, rel=1e-9)
        assert line["status"] == "ok" and line["nm_per_px"] == pytest.approx(truth, rel=1e-9)
        assert line["source"] in ("metadata", "both") and "field_nm" in line
    table = semcurate("scale", "read", str(ZEISS_1K), "--source", "metadata")
    header = next(line for line in table.stdout.splitlines() if "path" in line)
    assert "source" in header and "flagged" in header
