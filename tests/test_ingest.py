"""Ingestion on a hand-built messy tree: every bad input gets a status and a reason.

The tree is built here with tifffile and Pillow directly, so expectations come
from how the files were made, not from the code under test.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from sqlalchemy import select

from semcurate.db import File
from semcurate.db import Image as ImageRow
from semcurate.ingest import ingestion
from semcurate.ingest.ingestion import IngestError, ingest

RNG = np.random.default_rng(7)


def noise(height: int = 48, width: int = 64) -> np.ndarray:
    return (RNG.random((height, width)) * 255).astype(np.uint8)


def huge_tiff_header(width: int, height: int) -> bytes:
    """A minimal little-endian TIFF whose header declares ``width`` × ``height`` 8-bit grey pixels."""
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (278, 4, 1, height),
        (279, 4, 1, width * height),
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8 + 16) + b"\0" * 16 + ifd


def tree_checksums(root: Path) -> dict[str, tuple[str, int]]:
    """MD5 and mtime of every file under ``root``, not following symlinks."""
    result = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            result[str(path.relative_to(root))] = (hashlib.md5(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return result


@pytest.fixture
def messy_tree(tmp_path) -> Path:
    src = tmp_path / "src"
    (src / "plain").mkdir(parents=True)
    (src / "Übersicht ç #1 (copy)").mkdir()
    (src / "odd").mkdir()
    base = noise()
    tifffile.imwrite(src / "plain" / "base.tif", base)
    Image.fromarray(base).save(src / "plain" / "base.jpg", quality=80)  # rendition, other quality
    (src / "Übersicht ç #1 (copy)" / "base copy.tif").write_bytes((src / "plain" / "base.tif").read_bytes())
    tifffile.imwrite(src / "odd" / "variant.tif", base, description="different metadata")
    data = (src / "plain" / "base.tif").read_bytes()
    (src / "odd" / "truncated.tif").write_bytes(data[: len(data) // 2])
    jpg = io.BytesIO()
    Image.fromarray(noise()).save(jpg, format="JPEG")
    (src / "odd" / "truncated.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 2])
    (src / "odd" / "empty.tif").write_bytes(b"")
    (src / "odd" / "notes.tif").write_text("this is a text file, not a TIFF")
    (src / "odd" / "report.tif").write_bytes(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF")
    (src / "odd" / "bomb.tif").write_bytes(huge_tiff_header(50_000, 50_000))
    wrong = io.BytesIO()
    Image.fromarray(noise()).save(wrong, format="JPEG", quality=90)
    (src / "odd" / "really a jpeg.tif").write_bytes(wrong.getvalue())
    tifffile.imwrite(src / "odd" / "sixteen.tif", (RNG.random((40, 50)) * 4000 + 100).astype(np.uint16))
    tifffile.imwrite(src / "odd" / "pages.tif", np.stack([noise(), noise()]))
    Image.fromarray(noise()).convert("CMYK").save(src / "odd" / "cmyk.tif")
    tifffile.imwrite(src / "odd" / "tiny.tif", noise(10, 10))
    Image.fromarray(noise()).save(src / "odd" / "lonely.jpg", quality=92)
    Image.fromarray(noise()).save(src / "odd" / "picture.bmp")
    os.symlink("..", src / "odd" / "loop")
    (src / "odd" / "secret.tif").write_bytes((src / "odd" / "tiny.tif").read_bytes()[:-1] + b"\x01")
    return src


def rows_by_name(sessions) -> dict[str, File]:
    with sessions() as session:
        return {row.relpath.rsplit("/", 1)[-1]: row for row in session.scalars(select(File))}


@pytest.fixture
def unreadable_secret(monkeypatch):
    """Make ``secret.tif`` unreadable with a failing open (permissions do not stop root)."""
    real_open = ingestion.open_regular

    def failing_open(path):
        if str(path).endswith("secret.tif"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path)

    monkeypatch.setattr(ingestion, "open_regular", failing_open)


def test_every_bad_input_gets_a_status_and_a_reason(messy_tree, tmp_path, sessions, unreadable_secret):
    summary = ingest(messy_tree, tmp_path / "store", sessions, max_pixels=100_000_000)
    rows = rows_by_name(sessions)
    expected_status = {
        "base.jpg": "duplicate",
        "truncated.tif": "corrupt",
        "truncated.jpg": "corrupt",
        "empty.tif": "corrupt",
        "notes.tif": "corrupt",
        "report.tif": "unsupported",
        "bomb.tif": "rejected",
        "really a jpeg.tif": "image",
        "sixteen.tif": "image",
        "pages.tif": "image",
        "cmyk.tif": "image",
        "tiny.tif": "image",
        "lonely.jpg": "image",
        "picture.bmp": "unsupported",
        "loop": "skipped",
        "secret.tif": "unreadable",
    }
    assert {name: rows[name].status for name in expected_status} == expected_status
    # base.tif and variant.tif have the same pixels: the first by path ("odd/" < "plain/") is kept.
    kept, variant, copy = rows["variant.tif"], rows["base.tif"], rows["base copy.tif"]
    assert (kept.status, variant.status, copy.status) == ("image", "duplicate", "duplicate")
    assert variant.relation == copy.relation == "metadata_variant"
    assert variant.image_md5 == copy.image_md5 == kept.md5
    assert "JPG collision" in variant.reason
    assert rows["base.jpg"].relation == "jpg_rendition" and "reencoded" in rows["base.jpg"].reason
    assert rows["base.jpg"].image_md5 == kept.md5
    assert "zero-byte" in rows["empty.tif"].reason
    assert "not TIFF" in rows["notes.tif"].reason
    assert rows["report.tif"].format == "PDF" and "named .tif" in rows["report.tif"].reason
    assert "Mpx exceeds" in rows["bomb.tif"].reason
    assert rows["really a jpeg.tif"].format == "JPG" and "content is JPG" in rows["really a jpeg.tif"].reason
    assert "truncated" in rows["truncated.tif"].reason and "truncated" in rows["truncated.jpg"].reason
    assert "Permission denied" in rows["secret.tif"].reason
    assert "loop" in rows["loop"].reason
    assert all(row.reason for row in rows.values() if row.status not in ("image",) and row.relation != "exact")
    assert summary["images_total"] == 7 and summary["jpg_only"] == 2 and summary["pending"] == 0


def test_rejected_bomb_is_admitted_after_raising_the_limit(tmp_path, sessions):
    src = tmp_path / "src"
    src.mkdir()
    tifffile.imwrite(src / "wide.tif", noise(40, 50))
    first = ingest(src, tmp_path / "store", sessions, max_pixels=1000)
    unchanged = ingest(src, tmp_path / "store", sessions, max_pixels=10_000)
    retried = ingest(src, tmp_path / "store", sessions, max_pixels=10_000, retry_failed=True)
    assert (first["rejected"], first["images_total"]) == (1, 0)
    assert (unchanged["rejected"], unchanged["images_total"]) == (1, 0)
    assert (retried["rejected"], retried["images_new"]) == (0, 1)


def test_conversion_of_unusual_modes(messy_tree, tmp_path, sessions):
    store = tmp_path / "store"
    ingest(messy_tree, store, sessions)
    rows = rows_by_name(sessions)
    with sessions() as session:
        images = {row.md5: row for row in session.scalars(select(ImageRow))}
    sixteen = images[rows["sixteen.tif"].md5]
    assert sixteen.mode.startswith("I;16") and "stretched" in sixteen.conversion_note
    stretched = np.asarray(Image.open(store / f"{sixteen.md5}.jpg"))
    assert stretched.min() <= 2 and stretched.max() >= 253
    assert images[rows["pages.tif"].md5].pages == 2
    assert Image.open(store / f"{rows['cmyk.tif'].md5}.jpg").mode in ("RGB", "L")
    assert (images[rows["tiny.tif"].md5].width, images[rows["tiny.tif"].md5].height) == (10, 10)
    for image in images.values():
        stored_tif = store / f"{image.md5}.tif"
        if not image.jpg_only:
            assert hashlib.md5(stored_tif.read_bytes()).hexdigest() == image.md5
        assert hashlib.md5((store / f"{image.md5}.jpg").read_bytes()).hexdigest() == image.jpg_md5
    assert not list((store / ".incoming").iterdir())


def test_source_tree_is_untouched_and_second_run_does_no_work(messy_tree, tmp_path, sessions):
    before = tree_checksums(messy_tree)
    first = ingest(messy_tree, tmp_path / "store", sessions, workers=2)
    rows_first = {name: (row.status, row.image_md5, row.updated_at) for name, row in rows_by_name(sessions).items()}
    second = ingest(messy_tree, tmp_path / "store", sessions, workers=2)
    rows_second = {name: (row.status, row.image_md5, row.updated_at) for name, row in rows_by_name(sessions).items()}
    assert tree_checksums(messy_tree) == before
    assert first["images_new"] == first["images_total"] > 0
    assert second["images_new"] == 0 and second["images_total"] == first["images_total"]
    assert rows_second == rows_first

    def stable(summary: dict) -> dict:
        return {
            key: value
            for key, value in summary.items()
            if key not in ("images_new", "seconds", "near_duplicate_candidates")
        }

    assert stable(second) == stable(first)
    assert second["near_duplicate_candidates"] == 0  # every pair was compared by the first run


def test_near_duplicates_are_grouped_not_removed(tmp_path, sessions):
    src = tmp_path / "src"
    src.mkdir()
    original = noise(96, 128)
    twin = original.copy()
    twin.flat[RNG.choice(twin.size, 33, replace=False)] ^= 1
    tifffile.imwrite(src / "a.tif", original)
    tifffile.imwrite(src / "b.tif", twin)
    tifffile.imwrite(src / "c.tif", noise(96, 128))
    summary = ingest(src, tmp_path / "store", sessions)
    with sessions() as session:
        groups = {row.md5: row.near_duplicate_group for row in session.scalars(select(ImageRow))}
    rows = rows_by_name(sessions)
    assert summary["images_total"] == 3 and summary["near_duplicate_groups"] == 1
    assert groups[rows["a.tif"].md5] == groups[rows["b.tif"].md5] is not None
    assert groups[rows["c.tif"].md5] is None


def run_cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, text=True, env=env)


def test_missing_source_and_unwritable_store_are_one_line_errors(tmp_path, db_url):
    missing = run_cli("ingest", str(tmp_path / "nope"), "--store", str(tmp_path / "store"), "--db", db_url)
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "does not exist" in missing.stderr
    (tmp_path / "src").mkdir()
    (tmp_path / "a_file").write_text("x")
    blocked = run_cli("ingest", str(tmp_path / "src"), "--store", str(tmp_path / "a_file" / "store"), "--db", db_url)
    assert blocked.returncode == 2
    assert blocked.stderr.strip().count("\n") == 0 and "store" in blocked.stderr
    inside = run_cli("ingest", str(tmp_path / "src"), "--store", str(tmp_path / "src" / "store"), "--db", db_url)
    assert inside.returncode == 2 and "read-only" in inside.stderr


def test_store_inside_source_is_refused(tmp_path, sessions):
    (tmp_path / "src").mkdir()
    with pytest.raises(IngestError, match="inside the source"):
        ingest(tmp_path / "src", tmp_path / "src" / "flat", sessions)
