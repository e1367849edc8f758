"""Ingestion throughput: hashing + conversion on a demo corpus, 1 and 2 workers.

Generates (or reuses) a demo corpus of ``--images`` images, ingests it into a
fresh store and database once per worker count, each in its own process so
that peak memory is measured per run, and prints a table.  Results go to
``bench/results/ingest.json``.

Target (issue 2): hashing + conversion ≥ 40 images/s per core.  "images/s" is
unique images admitted per second of the whole ingest (walk, MD5 of every
file, TIFF decode + store copy + JPG conversion, JPG rendition matching,
near-duplicate grouping).  The 1-worker run is the baseline for the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ingest_once(corpus: Path, workdir: Path, workers: int) -> dict:
    store, db = workdir / f"store{workers}", workdir / f"w{workers}.db"
    shutil.rmtree(store, ignore_errors=True)
    db.unlink(missing_ok=True)
    command = [sys.executable, "-c", (
        "import json, resource, sys\n"
        "from semcurate.cli import app\n"
        "sys.argv = ['semcurate', 'ingest', sys.argv[1], '--store', sys.argv[2], '--db', sys.argv[3],"
        " '--workers', sys.argv[4], '--json']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps({'rss_self_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " 'rss_children_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    ), str(corpus / "new_dati_SEM"), str(store), f"sqlite:///{db}", str(workers)]
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()
    wall = time.perf_counter() - started
    summary, memory = json.loads(output[-2]), json.loads(output[-1])
    images = summary["images_total"]
    return {
        "workers": workers,
        "wall_s": round(wall, 2),
        "images": images,
        "files": summary["files_seen"],
        "images_per_s": round(images / wall, 1),
        "images_per_s_per_core": round(images / wall / workers, 1),
        "peak_rss_mib": round(max(memory["rss_self_kib"], memory["rss_children_kib"]) / 1024, 1),
        "phase_seconds": summary["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--corpus", type=Path, help="reuse this demo corpus (else one is generated)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ingest.json")
    args = parser.parse_args()

    from semcurate.datasets.demo_corpus import make_sem_corpus

    workdir = Path(tempfile.mkdtemp(prefix="semcurate-bench-ingest-"))
    corpus = args.corpus or workdir / "corpus"
    generation_s = None
    if not (corpus / "ground_truth.csv").exists():
        started = time.perf_counter()
        make_sem_corpus(corpus, args.images, seed=0, workers=max(args.workers))
        generation_s = round(time.perf_counter() - started, 1)
    runs = [ingest_once(corpus, workdir, workers) for workers in args.workers]
    baseline = runs[0]["wall_s"]
    for run in runs:
        run["speedup_vs_1_worker"] = round(baseline / run["wall_s"], 2)

    header = ("workers", "wall s", "images", "files", "img/s", "img/s/core", "speed-up", "peak RSS MiB")
    print(" | ".join(header))
    for run in runs:
        print(" | ".join(str(run[key]) for key in (
            "workers", "wall_s", "images", "files", "images_per_s", "images_per_s_per_core",
            "speedup_vs_1_worker", "peak_rss_mib")))
    for run in runs:
        print(f"  phases ({run['workers']} workers): {run['phase_seconds']}")
    result = {
        "benchmark": "ingest",
        "target": "hashing + conversion >= 40 images/s per core",
        "corpus_images": args.images,
        "corpus_generation_s": generation_s,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "runs": runs,
        "target_met": all(run["images_per_s_per_core"] >= 40 for run in runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if args.corpus is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
