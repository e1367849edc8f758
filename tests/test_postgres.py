"""PostgreSQL as the shared database: plain URLs, concurrent ingests, a server that is down or goes away.

Each test runs against the throw-away server of ``tests/postgres_server.py``
(skipped with the reason where its programs are missing).  The truth for two
ingests at once is the same two ingests run one after the other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import open_database
from semcurate.db.models import File, Image
from semcurate.ingest.ingestion import ingest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> tuple[Path, Path]:
    """Two source trees with the same contents at different paths (80 demo images, 169 files each)."""
    root = tmp_path_factory.mktemp("overlap")
    make_sem_corpus(root / "corpus", 80, seed=3, workers=2, size_scale=0.25)
    first = root / "corpus" / "new_dati_SEM"
    second = root / "copy"
    shutil.copytree(first, second, symlinks=True)
    return first, second


def run_cli(*args: str | os.PathLike) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "semcurate", *map(os.fsdecode, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(run: subprocess.Popen, timeout: float = 180) -> tuple[int, str, str]:
    stdout, stderr = run.communicate(timeout=timeout)
    return run.returncode, stdout, stderr


def state(url: str, store: Path) -> dict:
    """Every file's (status, image) by path, the set of images, and the store's files."""
    engine = create_engine(url)
    with engine.connect() as connection:
        files = {
            (root, relpath): (status, image_md5)
            for root, relpath, status, image_md5 in connection.execute(
                select(File.source_root, File.relpath, File.status, File.image_md5)
            )
        }
        images = set(connection.scalars(select(Image.md5)))
        rows = connection.scalar(select(func.count()).select_from(File))
    engine.dispose()
    return {
        "files": files,
        "rows": rows,
        "images": images,
        "store": sorted(path.name for path in store.iterdir() if path.is_file() and path.suffix in (".tif", ".jpg")),
    }


def admitted(files: dict) -> dict:
    """``files`` with the statuses ``image`` and ``duplicate`` both read as ``admitted``."""
    merged = {"image": "admitted", "duplicate": "admitted"}
    return {key: (merged.get(status, status), md5) for key, (status, md5) in files.items()}


def test_plain_postgresql_url_works_for_ingest_and_the_listing_commands(postgres_server, sources, tmp_path):
    url = postgres_server.create_database().replace("postgresql+psycopg://", "postgresql://")
    status, _stdout, stderr = finished(run_cli("ingest", sources[0], "--store", tmp_path / "store", "--db", url))
    assert status == 0, stderr
    for command in (["labels", "list"], ["subset", "list"], ["features", "list"], ["tree", "list"]):
        status, _stdout, stderr = finished(run_cli(*command, "--db", url))
        # nothing of these is stored yet: the "nothing yet" line and status 1, never a driver error
        assert status == 1 and stderr.startswith("error: ") and "Traceback" not in stderr, (command, stderr)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM images")).scalar() == 80
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0008"
    engine.dispose()


def test_two_ingests_of_overlapping_sources_at_once_end_like_one_after_the_other(postgres_server, sources, tmp_path):
    first, second = sources
    reference_url = postgres_server.create_database()
    reference = open_database(reference_url)
    ingest(first, tmp_path / "reference_store", reference)
    ingest(second, tmp_path / "reference_store", reference)
    reference.kw["bind"].dispose()
    expected = state(reference_url, tmp_path / "reference_store")
    assert len(expected["images"]) == 80 and expected["rows"] == 2 * 169

    url = postgres_server.create_database()  # brand new: both processes migrate it at once
    store = tmp_path / "store"
    runs = [run_cli("ingest", source, "--store", store, "--db", url, "--json") for source in (first, second)]
    results = [finished(run) for run in runs]
    for status, _stdout, stderr in results:
        assert status == 0, stderr
        assert "Traceback" not in stderr
    got = state(url, store)
    assert got["rows"] == expected["rows"]  # every file once
    assert got["images"] == expected["images"]  # every image once
    # Which copy of an image became its `image` file depends on which ingest got there first; the rest must not.
    assert admitted(got["files"]) == admitted(expected["files"])
    assert sorted(image for status, image in got["files"].values() if status == "image") == sorted(got["images"])
    assert got["store"] == expected["store"]
    assert not list((store / ".incoming").iterdir())


def test_unreachable_server_is_one_error_line(tmp_path):
    from postgres_server import free_port

    started = time.monotonic()
    url = f"postgresql://someone:secret@127.0.0.1:{free_port()}/nothing"
    status, _stdout, stderr = finished(run_cli("ingest", tmp_path, "--store", tmp_path / "store", "--db", url), 60)
    assert time.monotonic() - started < 10 + 5
    assert status == 2
    assert stderr.startswith("error: cannot open database postgresql+psycopg://someone:***@127.0.0.1")
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "secret" not in stderr


def test_server_gone_mid_ingest_is_one_line_and_a_rerun_finishes(sources, tmp_path):
    from postgres_server import PostgresServer

    server = PostgresServer.start()  # its own server: this test stops it
    try:
        url, store = server.create_database(), tmp_path / "store"
        open_database(url).kw["bind"].dispose()
        run = run_cli("ingest", sources[0], "--store", store, "--db", url, "--json")
        engine = create_engine(url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            with engine.connect() as connection:
                if connection.execute(text("SELECT count(*) FROM images")).scalar():
                    break
            time.sleep(0.05)
        engine.dispose()
        server.halt()
        status, _stdout, stderr = finished(run)
        assert status == 2, stderr
        assert "Traceback" not in stderr
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: database postgresql+psycopg://")
        server.resume()
        halfway = state(url, store)
        assert 0 < len(halfway["images"]) < 80
        # committed images have their store files: nothing half-written
        assert {f"{md5}.jpg" for md5 in halfway["images"]} <= set(halfway["store"])
        status, _stdout, stderr = finished(run_cli("ingest", sources[0], "--store", store, "--db", url, "--json"))
        assert status == 0, stderr
        after = state(url, store)
        assert len(after["images"]) == 80 and after["rows"] == 169
        assert all(status != "pending" for status, _ in after["files"].values())
    finally:
        server.stop()
