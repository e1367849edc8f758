"""Issue 11, ingest and labels: odd file names, TIFFs in label folders, second stores, non-regular files, full disks.

Each case is reproduced in a temporary folder on a small demo corpus, run as
the user runs it (``python -m semcurate``), and checked for one ``error:``
line (or none), the exit status, no traceback, and a database and store equal
to what a clean run gives.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from semcurate.datasets import make_sem_corpus
from semcurate.db import open_database
from semcurate.ingest.store import LOCK_NAME, StoreError, hold_lock, shared_lock_within
from semcurate.ingest.walk import FileSkipped, name_to_text, read_regular, text_to_name

pytestmark = pytest.mark.slow  # the fault campaign: many CLI processes on real corpora (bench/faults.py)

#: Latin-1 µ: a byte that is not UTF-8 on its own, common in old lab shares' file names.
MU = b"\xb5"


def run_cli(*args: str | os.PathLike, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m semcurate ARGS`` with its exit status, stdout and stderr (bytes paths allowed)."""
    return subprocess.run(
        [sys.executable, "-m", "semcurate", *map(os.fsdecode, args)],
        capture_output=True,
        text=True,
        errors="replace",
        env=env,
        timeout=timeout,
    )


def assert_clean_exit(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr


def assert_one_error_line(result: subprocess.CompletedProcess, fragment: str, status: int = 2) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0], lines[0]
    assert result.returncode == status


def state(db: Path, store: Path) -> dict:
    """What a run leaves behind: file rows by (relpath, status), image md5s, store file names, staged leftovers."""
    connection = sqlite3.connect(db)
    try:
        files = sorted(connection.execute("SELECT relpath, status FROM files"))
        images = {md5 for (md5,) in connection.execute("SELECT md5 FROM images")}
    finally:
        connection.close()
    return {
        "files": files,
        "images": images,
        "store": sorted(path.name for path in store.glob("*.*") if not path.name.startswith(".")),
        "staged": sorted(path.name for path in (store / ".incoming").glob("*")),
    }


def tiff_of_noise(path: Path | bytes, seed: int) -> bytes:
    """Write a new 64 × 48 grey TIFF nobody else holds; return its bytes."""
    pixels = (np.random.default_rng(seed).random((48, 64)) * 255).astype(np.uint8)
    tifffile.imwrite(os.fsdecode(path), pixels)
    return Path(os.fsdecode(path)).read_bytes()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A 12-image demo corpus (source tree and labelled datasets), never modified by the tests."""
    root = tmp_path_factory.mktemp("corpus")
    make_sem_corpus(root, 12, seed=3, workers=1, size_scale=0.125)  # small enough for the 1 MiB tmpfs below
    return root


@pytest.fixture(scope="module")
def clean_run(corpus, tmp_path_factory) -> dict:
    """The state one clean ingest of the corpus leaves."""
    root = tmp_path_factory.mktemp("clean")
    db, store = root / "db.sqlite", root / "store"
    assert_clean_exit(run_cli("ingest", corpus / "new_dati_SEM", "--store", store, "--db", f"sqlite:///{db}"))
    return state(db, store)


@pytest.fixture
def source(corpus, tmp_path) -> Path:
    """A private copy of the corpus' source tree."""
    copy = tmp_path / "src"
    shutil.copytree(corpus / "new_dati_SEM", copy, symlinks=True)
    return copy


# --------------------------------------------------------------------------- 3. non-UTF-8 file names


def test_name_text_round_trip_is_exact():
    names = ["plain.tif", "µm.tif", "odd\udcb5.tif", "a\\b", "x\\xb5", "\\x41\udcff\udc80", "\\", "\\x"]
    texts = [name_to_text(name) for name in names]
    assert texts[:3] == ["plain.tif", "µm.tif", "odd\\xb5.tif"]
    assert texts[3:] == ["a\\\\b", "x\\\\xb5", "\\\\x41\\xff\\x80", "\\\\", "\\\\x"]
    assert [text_to_name(text) for text in texts] == names
    for text in texts:
        text.encode("utf-8")  # storable and printable: no lone surrogate left


def test_non_utf8_file_names_are_ingested_stored_escaped_and_shown(source, tmp_path, clean_run):
    folder = os.fsencode(sorted(source.rglob("*.tif"))[0].parent)
    new_bytes = tiff_of_noise(folder + b"/new" + MU + b".tif", seed=11)
    shutil.copyfile(folder + b"/new" + MU + b".tif", folder + b"/odd" + MU + b".tif")
    db, store = tmp_path / "db.sqlite", tmp_path / "store"

    first = run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}")
    assert_clean_exit(first)
    assert "odd\\xb5.tif" not in first.stderr
    after = state(db, store)
    connection = sqlite3.connect(db)
    stored = dict(
        connection.execute("SELECT relpath, status FROM files WHERE relpath LIKE '%.tif' AND relpath LIKE '%\\x%'")
    )
    source_root = connection.execute("SELECT DISTINCT source_root FROM files").fetchall()
    connection.close()
    prefix = os.fsdecode(folder)[len(str(source)) + 1 :]
    assert stored == {f"{prefix}/new\\xb5.tif": "image", f"{prefix}/odd\\xb5.tif": "duplicate"}
    for relpath in stored:  # the stored text opens the very file
        assert (source / text_to_name(relpath)).is_file()
        assert os.fsencode(text_to_name(relpath)).endswith(MU + b".tif")
    assert source_root == [(str(source.resolve()),)]
    assert after["images"] == clean_run["images"] | {hashlib.md5(new_bytes).hexdigest()}
    assert len(after["files"]) == len(clean_run["files"]) + 2
    assert after["staged"] == []

    again = run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}", "--json")
    assert_clean_exit(again)
    assert '"images_new": 0' in again.stdout
    assert state(db, store) == after


def test_non_utf8_label_file_names_are_imported(corpus, tmp_path):
    db, store = tmp_path / "db.sqlite", tmp_path / "store"
    assert_clean_exit(run_cli("ingest", corpus / "new_dati_SEM", "--store", store, "--db", f"sqlite:///{db}"))
    dataset = tmp_path / "labelled"
    shutil.copytree(corpus / "datasets" / "SEM_Dataset", dataset)
    first_jpg = sorted(dataset.rglob("*.jpg"))[0]
    odd_name = os.fsencode(first_jpg.parent) + b"/lab" + MU + b".jpg"
    shutil.copyfile(first_jpg, odd_name)

    result = run_cli("labels", "import", dataset, "--name", "odd", "--db", f"sqlite:///{db}", "--json")
    assert_clean_exit(result)
    connection = sqlite3.connect(db)
    rows = dict(connection.execute("SELECT relpath, image_md5 FROM labels WHERE dataset = 'odd'"))
    connection.close()
    odd_text = f"{first_jpg.parent.name}/lab\\xb5.jpg"
    assert rows[odd_text] == rows[f"{first_jpg.parent.name}/{first_jpg.name}"]
    assert rows[odd_text] is not None
    assert len(rows) == len(list(dataset.rglob("*.jpg")))


# --------------------------------------------------------------------------- 4. a TIFF in a labelled folder


def test_labelled_tiffs_match_by_md5_or_are_skipped_with_a_reason(corpus, tmp_path):
    db, store = tmp_path / "db.sqlite", tmp_path / "store"
    assert_clean_exit(run_cli("ingest", corpus / "new_dati_SEM", "--store", store, "--db", f"sqlite:///{db}"))
    stored_tiff = sorted(store.glob("*.tif"))[0]
    dataset = tmp_path / "labelled"
    shutil.copytree(corpus / "datasets" / "SEM_Dataset", dataset)
    category = sorted(path for path in dataset.iterdir() if path.is_dir())[0]
    shutil.copyfile(stored_tiff, category / "known.tif")
    shutil.copyfile(stored_tiff, category / "known named as.jpg")  # TIFF content, JPG name
    tiff_of_noise(category / "stranger.tif", seed=12)

    result = run_cli("labels", "import", dataset, "--name", "with_tiffs", "--db", f"sqlite:///{db}")
    assert_clean_exit(result)
    assert f"skipped {category.name}/stranger.tif: a TIFF whose MD5 matches no ingested image" in result.stdout
    connection = sqlite3.connect(db)
    rows = {
        relpath.rsplit("/", 1)[-1]: (image_md5, match)
        for relpath, image_md5, match in connection.execute(
            "SELECT relpath, image_md5, match FROM labels WHERE dataset = 'with_tiffs'"
        )
    }
    connection.close()
    assert rows["known.tif"] == rows["known named as.jpg"] == (stored_tiff.stem, "md5")
    assert "stranger.tif" not in rows
    assert len(rows) == len(list(dataset.rglob("*.jpg"))) + 1


# --------------------------------------------------------------------------- 5. a second store


def test_a_second_store_for_one_database_is_refused_and_a_moved_store_accepted(source, tmp_path, clean_run):
    db, store = tmp_path / "db.sqlite", tmp_path / "store"
    assert_clean_exit(run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}", "--json"))
    tiff_of_noise(source / "one more.tif", seed=13)

    second = run_cli("ingest", source, "--store", tmp_path / "store2", "--db", f"sqlite:///{db}", "--json")
    assert_one_error_line(
        second, f"this database's {len(clean_run['images'])} images are in store {store}: pass --store {store}"
    )
    assert state(db, store)["images"] == clean_run["images"]  # nothing half-done, nothing pending
    assert not (tmp_path / "store2").exists()

    moved = tmp_path / "moved"
    shutil.copytree(store, moved)
    again = run_cli("ingest", source, "--store", moved, "--db", f"sqlite:///{db}", "--json")
    assert_clean_exit(again)
    assert '"images_new": 1' in again.stdout
    assert len(state(db, moved)["images"]) == len(clean_run["images"]) + 1
    assert len(state(db, moved)["store"]) == len(clean_run["store"]) + 2


# --------------------------------------------------------------------------- 6. concurrent ingests


def test_an_ingest_refuses_a_store_or_database_another_ingest_holds(source, tmp_path, clean_run):
    db, store = tmp_path / "db.sqlite", tmp_path / "store"
    store.mkdir()
    with hold_lock(store / LOCK_NAME, "test"):
        busy_store = run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}", "--json")
    assert_one_error_line(busy_store, f"another ingest is running on store {store} (pid {os.getpid()})")
    with hold_lock(Path(f"{db}.ingest.lock"), "test"):
        busy_db = run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}", "--json")
    assert_one_error_line(busy_db, f"another ingest is running on database {db} (pid {os.getpid()})")
    assert state(db, store)["images"] == set()


def test_a_lock_file_that_cannot_be_created_is_one_line_naming_it(tmp_path):
    """Its folder is a regular file (a path that root cannot write either, where a read-only folder would not do)."""
    folder = tmp_path / "not-a-folder"
    folder.write_text("")
    with pytest.raises(StoreError) as refused, hold_lock(folder / LOCK_NAME, "test"):
        pass
    assert str(refused.value) == (
        f"cannot create lock file {folder / LOCK_NAME} (Not a directory): check the folder's permissions"
    )


def test_two_ingests_at_once_serialise_and_end_like_one_clean_run(source, tmp_path, clean_run):
    db, store = tmp_path / "db.sqlite", tmp_path / "store"
    open_database(f"sqlite:///{db}").kw["bind"].dispose()  # a brand-new database is created by db/session.py
    command = [sys.executable, "-m", "semcurate", "ingest", str(source), "--store", str(store)]
    command += ["--db", f"sqlite:///{db}", "--json"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    for status, stderr in results:
        assert "Traceback" not in stderr, stderr
        assert status == 0 or (status == 2 and stderr.startswith("error: another ingest is running on ")), stderr
    assert_clean_exit(run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}", "--json"))
    assert state(db, store) == clean_run


# --------------------------------------------------------------------------- 7. pipes, devices, full disks


def test_pipes_and_devices_are_skipped_with_a_reason_everywhere(source, corpus, tmp_path, clean_run):
    os.mkfifo(source / "a pipe.tif")
    os.symlink("/dev/zero", source / "zero.tif")
    db, store = tmp_path / "db.sqlite", tmp_path / "store"
    result = run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}", timeout=60)
    assert_clean_exit(result)
    connection = sqlite3.connect(db)
    odd = dict(connection.execute("SELECT relpath, status FROM files WHERE relpath IN ('a pipe.tif', 'zero.tif')"))
    connection.close()
    assert odd == {"a pipe.tif": "skipped", "zero.tif": "skipped"}
    after = state(db, store)
    assert after["images"] == clean_run["images"] and after["store"] == clean_run["store"]

    dataset = tmp_path / "labelled"
    shutil.copytree(corpus / "datasets" / "SEM_Dataset", dataset)
    category = sorted(path for path in dataset.iterdir() if path.is_dir())[0]
    os.mkfifo(category / "pipe.jpg")
    labels = run_cli("labels", "import", dataset, "--name", "pipes", "--db", f"sqlite:///{db}", timeout=60)
    assert_clean_exit(labels)
    assert f"skipped {category.name}/pipe.jpg: not a regular file (device, socket or pipe)" in labels.stdout

    scale = run_cli("scale", "read", source / "a pipe.tif", source / "zero.tif", "--source", "metadata", timeout=60)
    assert "Traceback" not in scale.stderr
    assert f"error: {source / 'a pipe.tif'}: a pipe, not a regular file: skipped" in scale.stderr
    assert f"error: {source / 'zero.tif'}: a character device, not a regular file: skipped" in scale.stderr


def test_reads_are_bounded_and_never_block(tmp_path):
    os.mkfifo(tmp_path / "pipe")  # nobody writes: a blocking open would hang here
    (tmp_path / "eleven").write_bytes(b"x" * 11)
    with pytest.raises(FileSkipped, match=r"^a pipe, not a regular file: skipped$"):
        read_regular(tmp_path / "pipe")
    with pytest.raises(FileSkipped, match=r"^a character device, not a regular file: skipped$"):
        read_regular("/dev/zero")
    with pytest.raises(FileSkipped, match=r"^11 bytes, more than the 10 read at most: skipped$"):
        read_regular(tmp_path / "eleven", max_bytes=10)
    assert read_regular(tmp_path / "eleven", max_bytes=11) == b"x" * 11


@pytest.fixture
def small_disk(tmp_path):
    """Mount a fresh tmpfs under ``tmp_path`` (root only); yields a function that fills it up to ``free_kib``."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")

    def fill(free_kib: int) -> Path:
        filler = mount_point / "filler"
        available = shutil.disk_usage(mount_point).free
        filler.write_bytes(b"\0" * max(0, available - free_kib * 1024))
        return filler

    yield mount_point, fill
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_store_is_one_line_leaves_no_staged_files_and_the_rerun_finishes(source, tmp_path, clean_run, small_disk):
    mount_point, fill = small_disk
    db, store = tmp_path / "db.sqlite", mount_point / "store"
    filler = fill(free_kib=150)
    full = run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}", "--workers", "2", "--json")
    assert_one_error_line(full, f"store {store} is full (No space left on device): free space there or pass another")
    assert state(db, store)["staged"] == []
    filler.unlink()

    rerun = run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}", "--workers", "2")
    assert_clean_exit(rerun)
    assert state(db, store) == clean_run


def test_full_database_is_one_line_and_the_rerun_adopts_the_store_files(source, tmp_path, clean_run, small_disk):
    mount_point, fill = small_disk
    db, store = mount_point / "db.sqlite", tmp_path / "store"
    # Migrate on the small disk while it is empty, then leave too little room for the rows.
    open_database(f"sqlite:///{db}").kw["bind"].dispose()
    filler = fill(free_kib=96)
    full = run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}", "--json")
    assert_one_error_line(full, f"database sqlite:///{db} cannot be written (database or disk is full): free space")
    failed = state(db, store)
    assert failed["staged"] == []
    assert len(failed["store"]) > 2 * len(failed["images"])  # store files whose rows were lost with the disk
    filler.unlink()

    rerun = run_cli("ingest", source, "--store", store, "--db", f"sqlite:///{db}")
    assert_clean_exit(rerun)
    assert state(db, store) == clean_run


@pytest.mark.parametrize("free_kib", [8, 40, 120])
def test_creating_a_database_on_a_full_disk_is_one_line_and_the_rerun_creates_it(small_disk, free_kib):
    # Depending on where the room runs out, SQLite fails opening the write-ahead log ("disk I/O error")
    # or inside Alembic's migration ("database or disk is full"): the same line either way.
    mount_point, fill = small_disk
    db = mount_point / "new.sqlite"
    filler = fill(free_kib=free_kib)
    full = run_cli("db", "upgrade", "--db", db)
    assert_one_error_line(full, f"database {db} cannot be written (")
    assert "free space there and re-run" in full.stderr
    filler.unlink()
    assert_clean_exit(run_cli("db", "upgrade", "--db", db))
    with sqlite3.connect(db) as connection:
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    from semcurate.db.location import known_revisions

    assert revision == [(known_revisions()[1],)]


def test_the_shared_store_lock_waits_out_a_brief_exclusive_holder_but_not_a_long_one(tmp_path):
    """A PostgreSQL ingest holds the store lock exclusively only while it clears leftovers: the next one waits for
    its shared lock instead of being refused; a holder that keeps it past the wait still refuses it."""
    import fcntl
    import threading

    path = tmp_path / LOCK_NAME
    holder = os.open(path, os.O_RDWR | os.O_CREAT)
    waiter = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert not shared_lock_within(waiter, 0.2)
        threading.Timer(0.2, fcntl.flock, (holder, fcntl.LOCK_SH)).start()  # the holder lets others in
        assert shared_lock_within(waiter, 5.0)
    finally:
        os.close(waiter)
        os.close(holder)
