"""Issue 11, the feature store: one writer, finished sets only, full disks, bounded decodes, its path from the database.

Each case runs the command line as a user would (a subprocess, so the exit
status and stderr are real) on a small ingested and scale-read corpus, then
checks the one ``error:`` line, that no traceback was printed, and that the
feature store and the database hold each image once, as a clean run would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import select

from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import FeatureSet, Image, open_database
from semcurate.features.analysis import StudyError, feature_rows
from semcurate.features.extract import create_extractor, extract
from semcurate.features.store import FeatureStore, FeatureStoreFull
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.scale_database import read_scales

pytestmark = pytest.mark.slow  # the fault campaign: many CLI processes on real corpora (bench/faults.py)

N_IMAGES = 12


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A database and flat store of ``N_IMAGES`` ingested, scale-read images (copied by :func:`repository`)."""
    root = tmp_path_factory.mktemp("faults_features")
    make_sem_corpus(root / "corpus", N_IMAGES, seed=11, workers=1, size_scale=0.25)
    sessions = open_database(f"sqlite:///{root / 'db.sqlite'}")
    ingest(root / "corpus" / "new_dati_SEM", root / "store", sessions, workers=1)
    read_scales(sessions, root / "store", workers=1)
    sessions.kw["bind"].dispose()
    return root


@pytest.fixture
def repository(corpus, tmp_path):
    """This test's own copy of the database (the flat store is only read, so it is shared): (URL, store, md5s)."""
    shutil.copy(corpus / "db.sqlite", tmp_path / "db.sqlite")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with sqlite3.connect(tmp_path / "db.sqlite") as connection:
        md5s = sorted(md5 for (md5,) in connection.execute("SELECT md5 FROM images"))
    assert len(md5s) == N_IMAGES
    return url, corpus / "store", md5s


def semcurate(*args, cwd) -> subprocess.CompletedProcess:
    """Run the command line in ``cwd``; its output is text."""
    return subprocess.run(
        [sys.executable, "-m", "semcurate", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def extract_cli(url, store, cwd, *extra) -> subprocess.CompletedProcess:
    return semcurate("features", "extract", "--extractor", "classic", "--db", url, "--store", store, *extra, cwd=cwd)


def assert_one_error_line(result: subprocess.CompletedProcess, fragment: str, status: int = 2) -> None:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr


def assert_clean_set(url: str, path, md5s: list[str]) -> None:
    """The feature set ``classic`` at ``path`` holds every image once and the database says so."""
    stored = FeatureStore(path).md5s("classic")
    assert sorted(stored) == md5s and len(stored) == len(set(stored))
    sessions = open_database(url)
    with sessions() as session:
        row = session.get(FeatureSet, "classic")
        assert (row.n_rows, row.store_path) == (len(md5s), str(path.resolve()))
    sessions.kw["bind"].dispose()


def test_a_second_writer_is_refused_with_the_holders_pid(repository, tmp_path):
    url, store, md5s = repository
    path = tmp_path / "features.h5"
    with FeatureStore(path).writing():
        refused = extract_cli(url, store, tmp_path)
    assert_one_error_line(refused, f"another extraction is writing {path} (pid {os.getpid()}): wait for it or stop it")
    assert extract_cli(url, store, tmp_path).returncode == 0
    assert_clean_set(url, path, md5s)


def test_two_extractions_at_once_store_each_image_once(repository, tmp_path):
    url, store, md5s = repository
    command = [sys.executable, "-m", "semcurate", "features", "extract", "--extractor", "classic", "--db", url]
    command += ["--store", str(store), "--batch-size", "1"]
    runs = [subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outcomes = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    for status, stderr in outcomes:
        assert "Traceback" not in stderr
        assert status == 0 or (status == 2 and "error: another extraction is writing" in stderr), stderr
    assert any(status == 0 for status, _ in outcomes)
    assert_clean_set(url, tmp_path / "features.h5", md5s)


class Killed(Exception):
    """Stands for SIGKILL after the first batch: nothing after it runs."""


def kill_after_first_batch(_label, _total):
    def advance(_n=1):
        raise Killed

    return advance


def test_a_killed_extraction_is_not_seen_by_later_stages(repository, tmp_path):
    url, store, md5s = repository
    sessions = open_database(url)
    with pytest.raises(Killed):
        extract(
            sessions,
            store,
            FeatureStore(tmp_path / "features.h5"),
            create_extractor("classic"),
            batch_size=4,
            reporter=kill_after_first_batch,
        )
    sessions.kw["bind"].dispose()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cluster = ("cluster", "classic", "--method", "ward", "--k-max", "5", "--json", "--db", url)
    assert_one_error_line(
        semcurate(*cluster, cwd=elsewhere),
        f"feature set classic is partial (4 of {N_IMAGES} rows): run `semcurate features extract --extractor "
        "classic` to finish it",
    )
    assert extract_cli(url, store, elsewhere).returncode == 0  # resumes in the recorded file, not ./features.h5
    assert not (elsewhere / "features.h5").exists()
    assert_clean_set(url, tmp_path / "features.h5", md5s)
    clustered = semcurate(*cluster, cwd=elsewhere)
    assert clustered.returncode == 0, clustered.stderr
    assert json.loads(clustered.stdout)["points"] == N_IMAGES


def test_rows_of_an_unfinished_rerun_stay_invisible(repository, tmp_path):
    url, store, md5s = repository
    sessions = open_database(url)
    feature_store = FeatureStore(tmp_path / "features.h5")
    extract(sessions, store, feature_store, create_extractor("classic"))
    feature_store.append("classic", ["f" * 32], feature_store.read("classic")[1][:1])  # a later run, unfinished
    seen, _ = feature_rows(sessions, FeatureStore(), "classic", None)
    assert sorted(seen) == md5s
    sessions.kw["bind"].dispose()


def test_reading_commands_take_the_store_path_from_the_database(repository, tmp_path):
    url, store, md5s = repository
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert extract_cli(url, store, tmp_path / "a", "--feature-store", "kept/features.h5").returncode == 0
    assert_clean_set(url, tmp_path / "a" / "kept" / "features.h5", md5s)
    found = semcurate(
        "cluster", "classic", "--method", "ward", "--k-max", "5", "--json", "--db", url, cwd=tmp_path / "b"
    )
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["points"] == N_IMAGES
    wrong = semcurate(
        "cluster", "classic", "--method", "ward", "--db", url, "--feature-store", "features.h5", cwd=tmp_path / "b"
    )
    assert_one_error_line(
        wrong,
        f"feature set classic is stored in {tmp_path / 'a' / 'kept' / 'features.h5'}, not features.h5: "
        "pass that --feature-store or leave it out",
    )


@contextlib.contextmanager
def small_filesystem(path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (the test is skipped where mounting is not permitted)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_full_disk_is_one_line_and_the_next_run_elsewhere_is_clean(repository, tmp_path):
    url, store, md5s = repository
    with small_filesystem(tmp_path / "small", "2m") as small:
        free = os.statvfs(small)
        (small / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 256 * 1024))
        full = extract_cli(url, store, tmp_path, "--feature-store", small / "features.h5")
        assert full.returncode != -11  # HDF5 crashed (SIGSEGV) here before
        assert_one_error_line(full, f"feature store {small / 'features.h5'} (")
        assert "free space or pass --feature-store elsewhere" in full.stderr
    moved = extract_cli(url, store, tmp_path, "--feature-store", tmp_path / "roomy.h5")
    assert moved.returncode == 0, moved.stderr
    assert_clean_set(url, tmp_path / "roomy.h5", md5s)


def test_a_disk_filling_up_keeps_the_finished_batches(repository, tmp_path, monkeypatch):
    url, store, md5s = repository
    checks = []

    def room_for_two_batches(self, needed):
        checks.append(needed)
        if len(checks) > 2:
            raise FeatureStoreFull(f"no space left for feature store {self.path}")

    monkeypatch.setattr(FeatureStore, "_check_free_space", room_for_two_batches)
    sessions = open_database(url)
    feature_store = FeatureStore(tmp_path / "features.h5")
    with pytest.raises(FeatureStoreFull):
        extract(sessions, store, feature_store, create_extractor("classic"), batch_size=5)
    kept = FeatureStore(tmp_path / "features.h5")
    assert len(kept.md5s("classic")) == 10 and kept.read("classic")[1].shape[0] == 10
    with pytest.raises(StudyError, match=f"partial \\(10 of {N_IMAGES} rows\\)"):
        feature_rows(sessions, FeatureStore(), "classic", None)
    sessions.kw["bind"].dispose()
    monkeypatch.undo()
    assert extract_cli(url, store, tmp_path).returncode == 0
    assert_clean_set(url, tmp_path / "features.h5", md5s)


def test_bad_images_are_skipped_with_their_reason_and_the_others_extracted(repository, tmp_path):
    url, shared_store, md5s = repository
    store = shutil.copytree(shared_store, tmp_path / "store")
    sessions = open_database(url)
    with sessions() as session:
        sizes = dict(session.execute(select(Image.md5, Image.width * Image.height)).all())
    sessions.kw["bind"].dispose()
    limit = min(sizes.values())
    over = sorted(md5 for md5, pixels in sizes.items() if pixels > limit)
    broken = over.pop()
    for rendition in store.glob(f"{broken}.*"):
        rendition.write_bytes(b"not an image at all")
    assert 0 < len(over) < N_IMAGES - 1
    result = extract_cli(url, store, tmp_path, "--max-pixels", limit)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert f"extracted {N_IMAGES - len(over) - 1} images now" in result.stdout
    lines = [line.replace("│", " ") for line in result.stdout.splitlines()]  # the table's borders
    assert [line.split()[-1] for line in lines if "over --max-pixels" in line] == [str(len(over))]
    assert [line.split()[-1] for line in lines if "corrupt: content is not a readable image" in line] == ["1"]
    assert sorted(FeatureStore(tmp_path / "features.h5").md5s("classic")) == sorted(set(md5s) - {*over, broken})


def test_extracting_before_scale_is_refused_unless_allowed(repository, tmp_path):
    url, store, md5s = repository
    with sqlite3.connect(tmp_path / "db.sqlite") as connection:
        connection.execute("DELETE FROM scale_readings WHERE image_md5 IN (?, ?, ?)", md5s[:3])
    refused = extract_cli(url, store, tmp_path)
    assert_one_error_line(
        refused,
        f"3 of {N_IMAGES} images have no scale reading yet, so their data bar cannot be cropped: "
        "run `semcurate scale` first, or pass --allow-uncropped",
    )
    assert not (tmp_path / "features.h5").exists()
    allowed = extract_cli(url, store, tmp_path, "--allow-uncropped")
    assert allowed.returncode == 0, allowed.stderr
    assert "3 images had no scale reading: their data bar was left in" in allowed.stdout
    assert_clean_set(url, tmp_path / "features.h5", md5s)


def test_features_list_as_json(repository, tmp_path):
    url, store, _ = repository
    empty = semcurate("features", "list", "--json", "--db", url, cwd=tmp_path)
    assert (empty.returncode, json.loads(empty.stdout)) == (0, {"feature_sets": []})
    assert extract_cli(url, store, tmp_path).returncode == 0
    listed = semcurate("features", "list", "--json", "--db", url, cwd=tmp_path)
    (row,) = json.loads(listed.stdout)["feature_sets"]
    assert (row["name"], row["rows"], row["store"]) == ("classic", N_IMAGES, str(tmp_path / "features.h5"))


def test_extracting_into_another_file_moves_the_set_there_whole(repository, tmp_path):
    url, store, md5s = repository
    sessions = open_database(url)
    first = extract(sessions, store, FeatureStore(tmp_path / "a.h5"), create_extractor("classic"))
    second = extract(sessions, store, FeatureStore(tmp_path / "b.h5"), create_extractor("classic"))
    sessions.kw["bind"].dispose()
    assert (first["moved_from"], second["moved_from"]) == (None, str(tmp_path / "a.h5"))
    assert second["extracted"] == N_IMAGES
    assert_clean_set(url, tmp_path / "b.h5", md5s)
    assert sorted(FeatureStore(tmp_path / "a.h5").md5s("classic")) == md5s  # the old file is left as it was
