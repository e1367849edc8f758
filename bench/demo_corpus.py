"""Demo-corpus generation speed: 1,000 images with 1 and 2 worker processes.

Target (issue 2): 1,000 images in under a minute on 2 cores.  The 1-worker
run is the baseline for the speed-up.  Writes ``bench/results/demo_corpus.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from semcurate.datasets.demo_corpus import make_sem_corpus

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "demo_corpus.json")
    args = parser.parse_args()

    runs = []
    for workers in args.workers:
        workdir = Path(tempfile.mkdtemp(prefix="semcurate-bench-corpus-"))
        started = time.perf_counter()
        summary = make_sem_corpus(workdir / "corpus", args.images, seed=0, workers=workers)
        wall = time.perf_counter() - started
        size_mb = sum(path.stat().st_size for path in (workdir / "corpus").rglob("*") if path.is_file()) / 1e6
        runs.append({
            "workers": workers, "wall_s": round(wall, 1), "images": summary.n_images, "files": summary.n_files,
            "megabytes": round(size_mb), "images_per_s": round(args.images / wall, 1),
        })
        shutil.rmtree(workdir, ignore_errors=True)
    for run in runs:
        run["speedup_vs_first"] = round(runs[0]["wall_s"] / run["wall_s"], 2)
    print("workers | wall s | images | files | MB written | img/s | speed-up")
    for run in runs:
        print(" | ".join(str(run[key]) for key in ("workers", "wall_s", "images", "files", "megabytes",
                                                   "images_per_s", "speedup_vs_first")))
    result = {
        "benchmark": "demo_corpus",
        "target": "1,000 images in under 60 s on 2 cores",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "runs": runs,
        "target_met": all(run["wall_s"] < 60 * run["images"] / 1000 for run in runs if run["workers"] >= 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
