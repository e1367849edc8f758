"""``semcurate quality`` on a small store of hand-made images: resumable scoring, the bar cut away once found,
flags, listings and the subset of good images, and bad files that give reasons, never tracebacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage
from sqlalchemy import select
from typer.testing import CliRunner

from semcurate.cli import app
from semcurate.datasets.databar import burn_data_bar, random_data_bar_spec
from semcurate.datasets.specimens import draw_specimen
from semcurate.datasets.taxonomy import leaf_paths
from semcurate.db.models import File, QualityRun, QualityScore, ScaleReading, SubsetMember
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.quality_database import QualityError, exclude_flagged, flagged_images, score_images

LEAVES = leaf_paths()


@pytest.fixture
def repository(tmp_path, sessions):
    """Ten sound images with data bars, and one of each defect and odd file; returns (store, md5 by name, bars)."""
    source = tmp_path / "source"
    source.mkdir()
    rng = np.random.default_rng(7)
    bars = {}
    for index in range(10):
        spec = random_data_bar_spec(rng, 512, 420, "zeiss_plain")
        pixels, truth = burn_data_bar(draw_specimen(LEAVES[3 * index], rng, spec.specimen_height, 512), spec)
        tifffile.imwrite(source / f"sound{index}.tif", pixels)
        bars[f"sound{index}.tif"] = truth.stripe_box
    picture = draw_specimen(LEAVES[1], rng, 384, 512).astype(float)
    blurred = ndimage.gaussian_filter(picture, 10) + rng.normal(0, 3, picture.shape)
    tifffile.imwrite(source / "blurred.tif", np.clip(blurred, 0, 255).astype(np.uint8))
    tifffile.imwrite(source / "dark.tif", (picture * 0.08).astype(np.uint8))
    colour = np.dstack([picture, picture * 0.3, 255 - picture]).astype(np.uint8)
    Image.fromarray(colour).save(source / "navcam.tif")
    tifffile.imwrite(source / "wide16.tif", (picture * 257).astype(np.uint16))
    tifffile.imwrite(source / "float.tif", (picture[::-1] / 255.0).astype(np.float32))  # not wide16 again
    tifffile.imwrite(source / "constant.tif", np.full((300, 400), 90, np.uint8))
    tifffile.imwrite(source / "one_row.tif", np.arange(300, dtype=np.uint8).reshape(1, 300))
    ingest(source, tmp_path / "store", sessions)
    with sessions() as session:
        md5 = {row.relpath: row.image_md5 for row in session.scalars(select(File))}
    return tmp_path / "store", md5, bars


def _scores(sessions) -> dict[str, QualityScore]:
    with sessions() as session:
        return {row.image_md5: row for row in session.scalars(select(QualityScore))}


def test_scoring_is_resumable_and_cuts_the_bar_once_found(repository, sessions):
    store, md5, bars = repository
    first = score_images(sessions, store, workers=2)
    assert first["scored"] == 17 and first["images"] == 17 and first["bar_included"] == 17
    assert score_images(sessions, store)["scored"] == 0  # nothing new
    with sessions.begin() as session:
        for name, (x0, y0, x1, y1) in bars.items():
            session.add(
                ScaleReading(
                    image_md5=md5[name],
                    status="ok",
                    stripe_x0=x0,
                    stripe_y0=y0,
                    stripe_x1=x1,
                    stripe_y1=y1,
                    reader_version="test",
                )
            )
    second = score_images(sessions, store)
    assert second["scored"] == 10 and second["bar_included"] == 7  # the sound images again, now without their bars
    scores = _scores(sessions)
    for name, box in bars.items():
        margin = max(4, round(0.01 * 420))  # rows above the bar cut too (quality.BAR_MARGIN)
        assert scores[md5[name]].picture_height == box[1] - margin and not scores[md5[name]].bar_included
    with sessions() as session:
        assert session.query(QualityRun).count() == 3


def test_flags_reasons_and_odd_files(repository, sessions):
    store, md5, _bars = repository
    summary = score_images(sessions, store)
    scores = _scores(sessions)
    flags = {name: set(filter(None, scores[md5[name]].flags.split(","))) for name in md5 if md5[name] in scores}
    assert "blurred" in flags["blurred.tif"] and "dark" in flags["dark.tif"] and "colour" in flags["navcam.tif"]
    assert "low_information" in flags["constant.tif"]
    assert {"odd_aspect", "odd_size"} <= flags["one_row.tif"]
    assert not any(flags[f"sound{index}.tif"] & {"blurred", "dark", "colour", "charging"} for index in range(10))
    assert "16-bit" in scores[md5["wide16.tif"]].reason
    assert "float image in 0..1" in scores[md5["float.tif"]].reason
    assert scores[md5["wide16.tif"]].brightness == pytest.approx(scores[md5["float.tif"]].brightness, abs=0.6)
    assert scores[md5["constant.tif"]].sharpness is None and "no contrast" in scores[md5["constant.tif"]].reason
    assert summary["flag_counts"]["colour"] == 1
    listed = flagged_images(sessions, "dark")
    assert [row["md5"] for row in listed][:1] == [md5["dark.tif"]] and listed[0]["path"] == "dark.tif"
    result = exclude_flagged(sessions, ["colour", "dark", "blurred"], "good")
    with sessions() as session:
        members = set(session.scalars(select(SubsetMember.image_md5).where(SubsetMember.subset == "good")))
    assert result["size"] == len(members) == 14
    assert md5["navcam.tif"] not in members and md5["sound0.tif"] in members
    with pytest.raises(QualityError, match="exists"):
        exclude_flagged(sessions, ["dark"], "good")
    with pytest.raises(QualityError, match="unknown flag"):
        flagged_images(sessions, "blurry")


def test_the_command_line(repository, db_url, tmp_path):
    _store, md5, _bars = repository
    runner = CliRunner()
    before = runner.invoke(app, ["quality", "list", "--flag", "dark", "--db", db_url])
    assert before.exit_code == 1 and "run `semcurate quality`" in before.output
    config = tmp_path / "quality.json"
    config.write_text(json.dumps({"thresholds": {"dark": 5.0}, "rules": {"blurred": {"z": 3}}}))
    scored = runner.invoke(app, ["quality", "--workers", "2", "--config", str(config), "--db", db_url])
    assert scored.exit_code == 0, scored.output
    assert "scored 17 images now" in scored.output
    listed = runner.invoke(app, ["quality", "list", "--flag", "colour", "--json", "--db", db_url])
    assert [row["md5"] for row in json.loads(listed.output)] == [md5["navcam.tif"]]
    dark = runner.invoke(app, ["quality", "list", "--flag", "dark", "--json", "--db", db_url])
    assert json.loads(dark.output) == []  # the override (5 grey levels) is below the dark image's brightness
    excluded = runner.invoke(app, ["quality", "exclude", "--flag", "colour", "--subset", "no-navcam", "--db", db_url])
    assert excluded.exit_code == 0 and "subset no-navcam: 16 images" in excluded.output
    bad = runner.invoke(app, ["quality", "--threshold", "blurred=soft", "--db", db_url])
    assert bad.exit_code == 2 and "error: --threshold" in bad.output
    unknown = runner.invoke(app, ["quality", "--threshold", "blurry=1", "--db", db_url])
    assert unknown.exit_code == 2 and "no flag named blurry" in unknown.output


def test_the_report_section_counts_flags_and_shows_the_worst(repository, sessions, tmp_path):
    from semcurate.evaluation.report import collect

    store, _md5, _bars = repository
    assert not collect(sessions, tmp_path / "results", store)["quality"]["present"]
    summary = score_images(sessions, store)
    section = collect(sessions, tmp_path / "results", store)["quality"]
    assert section["present"]
    rows = {row["flag"]: row for row in section["data"]["flags"]}
    assert {flag: rows[flag]["images"] for flag in rows} == summary["flag_counts"]
    assert len(rows["colour"]["gallery"]) == 1 and "navcam.tif" in rows["colour"]["gallery"][0]["caption"]
    assert section["data"]["figure"]["mime"] == "image/png"


def test_the_command_line_offers_the_flags_of_the_core():
    from semcurate.cli.quality import FLAG_NAMES
    from semcurate.ingest.quality import FLAGS

    assert FLAG_NAMES == FLAGS
