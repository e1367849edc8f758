"""SIGKILL an ingest part-way, re-run it, and get exactly what one clean run gives (on SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

pytestmark = pytest.mark.slow  # kills and resumes a real ingest


def build_tree(root: Path, n_images: int = 240) -> None:
    rng = np.random.default_rng(3)
    for index in range(n_images):
        folder = root / f"batch {index % 7}" / ("sub" if index % 3 else "")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (rng.random((384, 512)) * 255).astype(np.uint8)
        tifffile.imwrite(folder / f"img{index:03d}.tif", pixels)
        if index % 2:
            Image.fromarray(pixels).save(folder / f"img{index:03d}.jpg", quality=85)
        if index % 10 == 0:
            (root / f"copy{index}.tif").write_bytes((folder / f"img{index:03d}.tif").read_bytes())
            tifffile.imwrite(root / f"variant{index}.tif", pixels, description="another microscope")
    (root / "broken.tif").write_bytes(b"II*\x00garbage")


def ingest_command(src: Path, store: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "semcurate",
        "ingest",
        str(src),
        "--store",
        str(store),
        "--db",
        url,
        "--workers",
        "2",
        "--json",
    ]


def final_state(url: str, store: Path) -> tuple[dict, dict]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        files = {
            relpath: (status, relation, image_md5)
            for relpath, status, relation, image_md5 in connection.execute(
                text("SELECT relpath, status, relation, image_md5 FROM files")
            )
        }
    engine.dispose()
    stored = {  # the store's files, not its ingest lock (which names the last holder's pid)
        path.name: hashlib.md5(path.read_bytes()).hexdigest()
        for path in store.glob("*.*")
        if path.is_file() and not path.name.startswith(".")
    }
    return files, stored


def count_images(url: str) -> int:
    """Images committed so far, read without creating anything (0 before the schema exists)."""
    if url.startswith("sqlite:///"):
        try:
            connection = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True, timeout=1)
            try:
                return connection.execute("SELECT count(*) FROM images").fetchone()[0]
            finally:
                connection.close()
        except sqlite3.Error:
            return 0
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM images")).scalar_one()
    except SQLAlchemyError:
        return 0
    finally:
        engine.dispose()


def test_sigkill_then_rerun_accounts_for_every_file_once(tmp_path, db_url):
    src = tmp_path / "src"
    build_tree(src)
    reference_db, reference_store = f"sqlite:///{tmp_path / 'reference.db'}", tmp_path / "reference_store"
    subprocess.run(ingest_command(src, reference_store, reference_db), check=True, capture_output=True)
    expected_files, expected_store = final_state(reference_db, reference_store)
    n_images = len(set(image for _, _, image in expected_files.values() if image))

    db, store = db_url, tmp_path / "store"
    victim = subprocess.Popen(ingest_command(src, store, db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while count_images(db) < 10 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert victim.poll() is None, "ingest finished before it could be killed: make the tree bigger"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_at = count_images(db)
    assert 0 < killed_at < n_images
    time.sleep(0.5)
    survivors = subprocess.run(["pgrep", "-f", str(store)], capture_output=True, text=True).stdout.split()
    assert survivors == [], "worker processes outlived their killed parent"

    subprocess.run(ingest_command(src, store, db), check=True, capture_output=True)
    files, stored = final_state(db, store)
    assert files == expected_files
    assert stored == expected_store
    assert len(files) == sum(1 for path in src.rglob("*") if path.is_file())
    assert not any((store / ".incoming").iterdir())
