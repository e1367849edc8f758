"""Scale-out: the per-image stages on the local process pool against Dask, and the client's database writes.

Measures, on a demo corpus of ``--images`` images (generated once under ``--workdir``):

1. **ingest + scale** (hash, convert, near-duplicates, then the scale reader)
   in images/s, on the local process pool with 1 and 2 workers and on Dask
   ``local:1`` and ``local:2`` (a LocalCluster of that many worker processes;
   its start-up, about 2 s, is left out: a deployment keeps its cluster).
2. **classic features** in images/s on the same four executors.
3. **scheduler overhead**: seconds per Dask task of an empty function (the
   round trip through the scheduler), and per item of :func:`parallel_map`
   with its batching.
4. **client writes**: rows/s the one client can write as ingest writes them
   (one INSERT … ON CONFLICT DO NOTHING per file row, 200 rows per
   transaction, writers' advisory lock on PostgreSQL) and as the scale
   reader writes them (one executemany of 200 rows), on SQLite (WAL) and on
   a local PostgreSQL server with ``fsync`` on, as a deployment runs it.

The results table is printed and written to ``bench/results/scale_out.json``.
The machine may be shared: the 1-minute load average is recorded around every
timed run.  Target (issue 16): Dask ``local:2`` within 80 % of the local pool's
throughput with 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the throw-away PostgreSQL server of the tests

EXECUTORS = (("pool", 1), ("pool", 2), ("dask", 1), ("dask", 2))


def executor_options(kind: str, n: int) -> dict:
    return {"workers": n} if kind == "pool" else {"scheduler": f"local:{n}"}


def label(kind: str, n: int) -> str:
    return f"pool {n}" if kind == "pool" else f"dask local:{n}"


def load() -> float:
    return round(os.getloadavg()[0], 2)


def time_pipeline(corpus: Path, workdir: Path) -> list[dict]:
    """Ingest + scale, then classic features, once per executor; images/s of each."""
    from semcurate.db import open_database
    from semcurate.features.extract import create_extractor, extract
    from semcurate.features.store import FeatureStore
    from semcurate.ingest.ingestion import ingest
    from semcurate.ingest.parallel import scheduler_client
    from semcurate.ingest.scale_database import read_scales

    rows = []
    for kind, n in EXECUTORS:
        options = executor_options(kind, n)
        if kind == "dask":
            scheduler_client(options["scheduler"])  # started outside the timing
        run_dir = workdir / f"{kind}{n}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir()
        sessions = open_database(f"sqlite:///{run_dir / 'db.sqlite'}")
        load_before = load()
        started = time.perf_counter()
        summary = ingest(corpus, run_dir / "store", sessions, **options)
        ingested = time.perf_counter()
        read_scales(sessions, run_dir / "store", **options)
        scaled = time.perf_counter()
        result = extract(
            sessions, run_dir / "store", FeatureStore(run_dir / "features.h5"), create_extractor("classic"), **options
        )
        extracted = time.perf_counter()
        images = summary["images_total"]
        rows.append(
            {
                "executor": label(kind, n),
                "images": images,
                "ingest_s": round(ingested - started, 2),
                "scale_s": round(scaled - ingested, 2),
                "ingest_scale_images_per_s": round(images / (scaled - started), 2),
                "classic_s": round(extracted - scaled, 2),
                "classic_images_per_s": round(result["extracted"] / (extracted - scaled), 2),
                "load_before": load_before,
                "load_after": load(),
            }
        )
        print(rows[-1], flush=True)
    return rows


def _noop(item):
    return item


def scheduler_overhead(n_tasks: int = 2000) -> dict:
    """Seconds per bare Dask task (submit + run + gather) and per item of parallel_map on local:2."""
    from semcurate.ingest.parallel import parallel_map, scheduler_client

    client = scheduler_client("local:2")
    started = time.perf_counter()
    futures = [client.submit(_noop, index, pure=False) for index in range(n_tasks)]
    client.gather(futures)
    per_task = (time.perf_counter() - started) / n_tasks
    items = list(range(20 * n_tasks))
    started = time.perf_counter()
    assert list(parallel_map(_noop, items, 1, scheduler="local:2")) == items
    per_item = (time.perf_counter() - started) / len(items)
    return {
        "tasks": n_tasks,
        "seconds_per_task": round(per_task, 6),
        "parallel_map_items": len(items),
        "parallel_map_seconds_per_item": round(per_item, 7),
    }


def write_rates(url: str, n_rows: int = 20_000) -> dict:
    """Rows/s of the client's two write patterns on the database at ``url`` (a fresh one)."""
    from sqlalchemy import insert

    from semcurate.db import open_database
    from semcurate.db.models import File, Image, ScaleReading
    from semcurate.db.session import insert_ignoring_duplicates, serialise_writers

    sessions = open_database(url)
    dialect = sessions.kw["bind"].dialect.name
    statement = insert_ignoring_duplicates(File.__table__, dialect)
    started = time.perf_counter()
    for start in range(0, n_rows, 200):
        with sessions.begin() as session:
            serialise_writers(session, "ingest")
            for index in range(start, start + 200):
                row = {"source_root": "/bench", "relpath": f"f{index:08d}.tif", "size": 1, "mtime_ns": 1}
                row |= {"extension": ".tif", "format": "TIFF", "md5": f"{index:032x}", "status": "pending"}
                session.execute(statement, [row])
    per_row = n_rows / (time.perf_counter() - started)
    with sessions.begin() as session:
        images = [
            {"md5": f"{index:032x}", "source_format": "TIFF", "jpg_md5": f"{index:032x}", "jpg_only": False}
            | {"width": 1, "height": 1, "mode": "L", "pages": 1, "phash": "0" * 16}
            for index in range(n_rows)
        ]
        session.execute(insert(Image), images)
    started = time.perf_counter()
    for start in range(0, n_rows, 200):
        with sessions.begin() as session:
            session.execute(
                insert(ScaleReading),
                [
                    {"image_md5": f"{index:032x}", "status": "ok", "flagged": False, "reader_version": "bench"}
                    for index in range(start, start + 200)
                ],
            )
    batched_rate = n_rows / (time.perf_counter() - started)
    sessions.kw["bind"].dispose()
    return {"ingest_rows_per_s": round(per_row), "executemany_rows_per_s": round(batched_rate), "rows": n_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "semcurate-scale-out")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale_out.json")
    args = parser.parse_args()

    import postgres_server

    from semcurate.datasets.demo_corpus import make_sem_corpus

    corpus = args.workdir / "corpus"
    if not (corpus / "new_dati_SEM").is_dir():
        make_sem_corpus(corpus, args.images, seed=16, workers=2, size_scale=0.5)
    pipeline = time_pipeline(corpus / "new_dati_SEM", args.workdir)
    overhead = scheduler_overhead()

    sqlite_db = args.workdir / "writes.sqlite"
    sqlite_db.unlink(missing_ok=True)
    writes = {"sqlite": write_rates(f"sqlite:///{sqlite_db}")}
    # A deployment's server makes commits durable: fsync on, unlike the tests' throw-away one.
    postgres_server.SETTINGS |= {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
    server = postgres_server.PostgresServer.start()
    try:
        writes["postgresql"] = write_rates(server.create_database())
    finally:
        server.stop()

    by_label = {row["executor"]: row for row in pipeline}
    ratio = {
        stage: round(by_label["dask local:2"][stage] / by_label["pool 2"][stage], 3)
        for stage in ("ingest_scale_images_per_s", "classic_images_per_s")
    }
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "corpus_images": args.images,
        "pipeline": pipeline,
        "dask_local2_over_pool2": ratio,
        "target_dask_over_pool": 0.8,
        "scheduler_overhead": overhead,
        "client_writes": writes,
    }
    print()
    print(f"{'executor':<16}{'ingest+scale img/s':>20}{'classic img/s':>16}{'load':>12}")
    for row in pipeline:
        loads = f"{row['load_before']}-{row['load_after']}"
        print(
            f"{row['executor']:<16}{row['ingest_scale_images_per_s']:>20}{row['classic_images_per_s']:>16}{loads:>12}"
        )
    print(f"dask local:2 / pool 2: {ratio} (target 0.8)")
    print(
        f"scheduler: {overhead['seconds_per_task'] * 1e3:.2f} ms per bare task, "
        f"{overhead['parallel_map_seconds_per_item'] * 1e6:.0f} µs per item through parallel_map"
    )
    for backend, rates in writes.items():
        ingest_rate, batch_rate = rates["ingest_rows_per_s"], rates["executemany_rows_per_s"]
        print(f"{backend:<11} ingest-style {ingest_rate} rows/s, executemany {batch_rate} rows/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
