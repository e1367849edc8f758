"""Dask for the per-image stages: the same results as the local process pool, a lost worker loses nothing.

The scheduler is ``local:2`` (a LocalCluster of two worker processes, started
once for this module and reused, as one command reuses it); the truth is the
local path run on the same files, and hashlib for the hashes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import open_database
from semcurate.db.models import File, Image, QualityScore, ScaleReading
from semcurate.features.extract import create_extractor, extract
from semcurate.features.store import FeatureStore
from semcurate.ingest.ingestion import _hash_task, ingest
from semcurate.ingest.parallel import SchedulerError, parallel_map, scheduler_client
from semcurate.ingest.quality_database import score_images
from semcurate.ingest.scale_database import read_scales

pytest.importorskip("distributed", reason="the distributed extra (pip install 'semcurate[distributed]') is missing")

LOCAL = "local:2"


def square_or_die_once(task: tuple[int, str]) -> int:
    """``n * n``; the first worker to meet n == 5 kills itself (SIGKILL) once, as a crashed machine would."""
    number, marker = task
    if number == 5 and not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return number * number


_OFFSET = 0


def set_offset(offset: int) -> None:
    global _OFFSET
    _OFFSET = offset


def add_offset(number: int) -> int:
    return number + _OFFSET


def test_hashes_on_dask_come_back_in_order_and_equal_hashlib(tmp_path):
    paths = []
    for index in range(40):
        path = tmp_path / f"file{index:02d}.bin"
        path.write_bytes(os.urandom(1000 + index))
        paths.append(path)
    results = list(parallel_map(_hash_task, [(path, path.name) for path in paths], 1, scheduler=LOCAL))
    assert [result.relpath for result in results] == [path.name for path in paths]
    assert [result.md5 for result in results] == [hashlib.md5(path.read_bytes()).hexdigest() for path in paths]


def test_initializer_runs_on_every_dask_worker():
    items = list(range(50))
    assert list(parallel_map(add_offset, items, 1, set_offset, (1000,), scheduler=LOCAL)) == [n + 1000 for n in items]


def test_a_killed_worker_loses_nothing(tmp_path):
    marker = str(tmp_path / "died")
    items = [(number, marker) for number in range(60)]
    results = list(parallel_map(square_or_die_once, items, 1, scheduler=LOCAL))
    assert Path(marker).exists()  # a worker really died
    assert results == [number * number for number in range(60)]
    # and the cluster still works after the restart
    assert list(parallel_map(add_offset, [1, 2, 3], 1, set_offset, (0,), scheduler=LOCAL)) == [1, 2, 3]


def test_bad_scheduler_values_are_one_line():
    with pytest.raises(SchedulerError, match="at least one worker"):
        scheduler_client("local:0")
    with pytest.raises(SchedulerError, match="write local:N"):
        scheduler_client("local:two")


def test_without_dask_scheduler_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(SchedulerError, match=r"pip install 'semcurate\[distributed\]'"):
        scheduler_client("local:3")


def test_scheduler_that_does_not_answer_is_one_line_within_10_s(tmp_path):
    from postgres_server import free_port

    (tmp_path / "source").mkdir()
    started = time.monotonic()
    address = f"tcp://127.0.0.1:{free_port()}"
    command = ["ingest", str(tmp_path / "source"), "--store", str(tmp_path / "store"), "--db", str(tmp_path / "db")]
    done = subprocess.run(
        [sys.executable, "-m", "semcurate", *command, "--scheduler", address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 10
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: Dask scheduler {address} does not answer")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def _malloc_trim_threshold(_item) -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_workers_keep_glibcs_dynamic_malloc_trim_threshold():
    """Dask's nannies set MALLOC_TRIM_THRESHOLD_ (which made the classic descriptor 2.8x slower in a worker);
    the workers of local:N run without it, like the local process pool."""
    import dask

    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") == 65536
    assert set(parallel_map(_malloc_trim_threshold, [1, 2, 3, 4], 1, scheduler=LOCAL)) == {None}


def test_a_worker_that_cannot_see_the_source_is_one_line_naming_worker_and_folder(tmp_path):
    """A real scheduler and a real worker whose mount namespace hides the folder the source is in."""
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs user and mount namespaces (unshare -rm) to hide a folder from one worker")
    from postgres_server import free_port

    hidden = tmp_path / "hidden"
    (hidden / "source").mkdir(parents=True)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker_command = f"mount -t tmpfs none {hidden} && exec {sys.executable} -m distributed.cli.dask_worker"
    worker = subprocess.Popen(
        ["unshare", "-rm", "sh", "-c", f"{worker_command} {address} --nthreads 1 --no-nanny --no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=30)
            (worker_address,) = client.scheduler_info()["workers"]
        command = ["ingest", str(hidden / "source"), "--store", str(tmp_path / "store"), "--db", str(tmp_path / "db")]
        done = subprocess.run(
            [sys.executable, "-m", "semcurate", *command, "--scheduler", address],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:  # SIGKILL: a worker told to stop gracefully may keep trying to reach its scheduler
        for process in (worker, scheduler):
            process.kill()
            process.wait(30)
    assert done.returncode == 2
    assert done.stderr == (
        f"error: Dask worker {worker_address} cannot see {(hidden / 'source').resolve()}: mount it at the same path "
        "on every worker (or run without --scheduler)\n"
    )
    assert not (tmp_path / "store").exists()  # nothing was started


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dask_corpus")
    make_sem_corpus(root, 40, seed=5, workers=2, size_scale=0.25)
    return root / "new_dati_SEM"


def rows(sessions, model, key) -> list[dict]:
    """Every row of ``model`` as a dict without its timestamps, ordered by ``key``."""
    with sessions() as session:
        found = session.scalars(select(model).order_by(key)).all()
    skip = {"created_at", "updated_at", "id", "run_id"}
    return [{c.key: getattr(row, c.key) for c in model.__table__.columns if c.key not in skip} for row in found]


@pytest.mark.slow
def test_ingest_scale_and_classic_features_on_local_2_equal_the_local_pool_row_for_row(corpus, tmp_path):
    results = {}
    for name, options in (("pool", {"workers": 2}), ("dask", {"scheduler": LOCAL})):
        sessions = open_database(f"sqlite:///{tmp_path / name}.db")
        store = tmp_path / f"{name}_store"
        summary = ingest(corpus, store, sessions, **options)
        read_scales(sessions, store, **options)
        score_images(sessions, store, **options)
        features = FeatureStore(tmp_path / f"{name}.h5")
        extract(sessions, store, features, create_extractor("classic"), batch_size=4, **options)
        md5s, values = features.read("classic")
        results[name] = {
            "features": dict(zip(md5s, values.tolist(), strict=True)),
            "files": rows(sessions, File, File.relpath),
            "images": rows(sessions, Image, Image.md5),
            "scales": rows(sessions, ScaleReading, ScaleReading.image_md5),
            "quality": rows(sessions, QualityScore, QualityScore.image_md5),
            "store": sorted(path.name for path in store.iterdir() if path.is_file()),
            "images_new": summary["images_new"],
        }
    assert results["dask"]["images_new"] == 40
    assert len(results["dask"]["features"]) == 40
    assert len(results["dask"]["quality"]) == 40
    for part in ("files", "images", "scales", "quality", "store", "features"):
        assert results["dask"][part] == results["pool"][part], part
