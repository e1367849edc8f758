"""Ingestion throughput: hashing + conversion on a demo corpus, 1 and 2 workers.

Generates (or reuses) a demo corpus of ``--images`` images, ingests it into a
fresh store and database once per worker count, each in its own process so
that peak memory is measured per run, and prints a table.  Results go to
``bench/results/ingest.json`` (or ``--out``).  Each worker count is timed
``--runs`` times in interleaved rounds and its fastest run is kept, with the
1-minute load average before and after it and every run's wall time: the
machine may be shared, and a run started above ~1.5 competes for the cores.

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

from machine_load import add_quiet_load_option, wait_for_quiet

HERE = Path(__file__).resolve().parent


def ingest_once(corpus: Path, workdir: Path, workers: int, quiet_load: float) -> dict:
    """Once the load is below ``quiet_load`` (see :func:`wait_for_quiet`), ingest ``corpus`` into a fresh store and
    database in a child process; its wall time, rates and peak memory."""
    store, db = workdir / f"store{workers}", workdir / f"w{workers}.db"
    shutil.rmtree(store, ignore_errors=True)
    db.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-c",
        (
            "import json, resource, sys\n"
            "from semcurate.cli import app\n"
            "sys.argv = ['semcurate', 'ingest', sys.argv[1], '--store', sys.argv[2], '--db', sys.argv[3],"
            " '--workers', sys.argv[4], '--json']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            # VmHWM: this process image's own peak (ru_maxrss would carry this script's RSS over the exec)
            "with open('/proc/self/status') as status:\n"
            "    peak = next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))\n"
            "print(json.dumps({'rss_self_kib': peak,"
            " 'rss_children_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
        ),
        str(corpus / "new_dati_SEM"),
        str(store),
        f"sqlite:///{db}",
        str(workers),
    ]
    load_before = wait_for_quiet(quiet_load)
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()
    wall = time.perf_counter() - started
    load_after = os.getloadavg()[0]
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
        "near_duplicate_candidates": summary.get("near_duplicate_candidates"),
        "load_average_1min_before": round(load_before, 2),
        "load_average_1min_after": round(load_after, 2),
    }


def main() -> None:
    """Generate (or reuse) the corpus, ingest it ``--runs`` times per worker count, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="size of the generated demo corpus")
    parser.add_argument("--corpus", type=Path, help="reuse this demo corpus (else one is generated)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="worker counts to time; the first is the speed-up's baseline",
    )
    parser.add_argument("--runs", type=int, default=2, help="interleaved rounds; each worker count's fastest is kept")
    add_quiet_load_option(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results" / "ingest.json",
        help="JSON result file (default: the committed bench/results/ingest.json)",
    )
    args = parser.parse_args()

    from semcurate.datasets.demo_corpus import make_sem_corpus

    workdir = Path(tempfile.mkdtemp(prefix="semcurate-bench-ingest-"))
    corpus = args.corpus or workdir / "corpus"
    generation_s = None
    if not (corpus / "ground_truth.csv").exists():
        started = time.perf_counter()
        make_sem_corpus(corpus, args.images, seed=0, workers=max(args.workers))
        generation_s = round(time.perf_counter() - started, 1)
    timed: dict[int, list[dict]] = {workers: [] for workers in args.workers}
    for _ in range(args.runs):
        for workers in args.workers:
            timed[workers].append(ingest_once(corpus, workdir, workers, args.quiet_load))
    runs = [
        {**min(tries, key=lambda run: run["wall_s"]), "all_wall_s": [run["wall_s"] for run in tries]}
        for tries in timed.values()
    ]
    baseline = runs[0]["wall_s"]
    for run in runs:
        run["speedup_vs_1_worker"] = round(baseline / run["wall_s"], 2)

    header = (
        "workers",
        "wall s (best)",
        "all runs s",
        "images",
        "files",
        "img/s",
        "img/s/core",
        "speed-up",
        "peak RSS MiB",
        "load before",
        "load after",
    )
    print(" | ".join(header))
    for run in runs:
        print(
            " | ".join(
                str(run[key])
                for key in (
                    "workers",
                    "wall_s",
                    "all_wall_s",
                    "images",
                    "files",
                    "images_per_s",
                    "images_per_s_per_core",
                    "speedup_vs_1_worker",
                    "peak_rss_mib",
                    "load_average_1min_before",
                    "load_average_1min_after",
                )
            )
        )
    for run in runs:
        print(f"  phases ({run['workers']} workers): {run['phase_seconds']}")
    result = {
        "benchmark": "ingest",
        "target": "hashing + conversion >= 40 images/s per core",
        "corpus": "generated" if args.corpus is None else str(args.corpus),
        "corpus_images": args.images if args.corpus is None else None,
        "corpus_generation_s": generation_s,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "timing": f"fastest of {args.runs} interleaved runs per worker count, "
        + (
            f"each started once the 1-minute load average was below {args.quiet_load} (or after 5 min)"
            if args.quiet_load > 0
            else "started without waiting for a quiet machine"
        ),
        "runs": runs,
        "target_met": all(run["images_per_s_per_core"] >= 40 for run in runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    shutil.rmtree(workdir, ignore_errors=True)  # the stores, and the corpus when it was generated here


if __name__ == "__main__":
    main()
