"""Benchmark: NMI curves at the 1u-2u size, and the demo's wall time per stage.

1. NMI as a function of k = 2..500 for merge trees over 52,682 points of
   which 7,557 carry one of 10 labels (the thesis' 1u-2u: Table 2.5), for a
   Ward tree (fastcluster) and a Density Peaks hierarchy.
   :func:`semcurate.evaluation.scores.nmi_curve` walks the merges once; the
   baseline measured in the same run cuts the tree at every k
   (:class:`~semcurate.clustering.hierarchy.Cutter`) and scores each cut with
   scikit-learn's ``normalized_mutual_info_score``. Both curves must agree.
   Also timed: the reference curves of Fig. 4.4 on the same labels.
2. ``semcurate demo`` on a fresh corpus (every stage), then again on the same
   folder (each stage skips finished work): wall seconds per stage from
   ``results/demo_timings.json``. At 1,000 images (``make demo``: target
   < 20 minutes on 2 cores) and at 1,300 (issue 13: the whole offline
   pipeline < 5 minutes), with SEM_Dataset labelling 14 % of the images.

Data of part 1: ``bench/clustering.py``'s 36 Gaussian clusters on a 6-d
subspace of R^18; the 36 generating clusters are folded onto 10 categories
and 7,557 points drawn to carry them, 10 % of those with a wrong category.

Usage: ``.venv/bin/python bench/evaluation.py [--quick] [--skip-demo]``.
Results: ``bench/results/evaluation.json``.
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

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from clustering import make_points  # noqa: E402  (the sibling benchmark's data generator)

N_LABELLED = 7_557
N_CATEGORIES = 10


def labels_like_1u2u(truth: np.ndarray, n_labelled: int, seed: int = 0) -> np.ndarray:
    """Object array of categories for ``n_labelled`` random points (10 % wrong), None for the rest."""
    rng = np.random.default_rng(seed)
    categories = np.array([f"category_{cluster % N_CATEGORIES}" for cluster in truth], dtype=object)
    labelled = rng.choice(len(truth), size=min(n_labelled, len(truth)), replace=False)
    wrong = rng.random(len(labelled)) < 0.1
    categories[labelled[wrong]] = [f"category_{value}" for value in rng.integers(0, N_CATEGORIES, wrong.sum())]
    result = np.full(len(truth), None, dtype=object)
    result[labelled] = categories[labelled]
    return result


def time_curves(tree: np.ndarray, labels: np.ndarray, ks: list[int]) -> dict:
    """One-pass ``nmi_curve`` against cut-and-score per k (scikit-learn), on the same tree and labels."""
    from sklearn.metrics import normalized_mutual_info_score

    from semcurate.clustering.hierarchy import Cutter
    from semcurate.evaluation.scores import nmi_curve

    started = time.perf_counter()
    curve = nmi_curve(tree, labels, ks)
    one_pass = time.perf_counter() - started

    started = time.perf_counter()
    cutter, mask = Cutter(tree), np.array([label is not None for label in labels])
    truth = labels[mask].astype(str)
    baseline = [normalized_mutual_info_score(truth, cutter.labels(k)[mask], average_method="geometric") for k in ks]
    per_k = time.perf_counter() - started
    return {
        "one_pass_seconds": round(one_pass, 3),
        "cut_and_score_seconds": round(per_k, 3),
        "speedup": round(per_k / one_pass, 1),
        "max_abs_difference": float(np.max(np.abs(curve - baseline))),
        "best_k": ks[int(np.argmax(curve))],
        "best_nmi": round(float(np.max(curve)), 4),
    }


def nmi_part(quick: bool) -> dict:
    """Seconds of ward linkage and Density Peaks on the points, then of their NMI curves for k = 2..500 (one pass
    against cut-and-score per k) and of the reference curves."""
    from semcurate.clustering import DensityPeaks, linkage
    from semcurate.evaluation.scores import reference_curves

    n_points = 8_000 if quick else 52_682
    points, truth = make_points(n_points, 18, seed=3)
    labels = labels_like_1u2u(truth, N_LABELLED if not quick else 1_200)
    ks = list(range(2, 501))
    started = time.perf_counter()
    ward = linkage(points, "ward")
    ward_seconds = time.perf_counter() - started
    started = time.perf_counter()
    peaks = DensityPeaks(n_jobs=-1).fit(points).linkage_
    peaks_seconds = time.perf_counter() - started
    started = time.perf_counter()
    references = reference_curves(labels, ks)
    reference_seconds = time.perf_counter() - started
    return {
        "n_points": n_points,
        "n_labelled": int(sum(label is not None for label in labels)),
        "ks": "2..500",
        "ward": {"linkage_seconds": round(ward_seconds, 2), **time_curves(ward, labels, ks)},
        "density_peaks": {"fit_seconds": round(peaks_seconds, 2), **time_curves(peaks, labels, ks)},
        "reference_curves_seconds": round(reference_seconds, 3),
        "ideal_at_10": round(float(references["ideal"][ks.index(10)]), 4),
    }


#: Images of each ``semcurate demo`` timed, and its target for a fresh run (seconds).
DEMO_TARGETS = {1000: 1200, 1300: 300}


def demo_part(n_images: int) -> dict:
    """Wall time of ``semcurate demo`` on a fresh folder, per stage, then of a second run on the same folder."""
    folder = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    runs = {}
    for run in ("fresh", "again"):
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-m", "semcurate", "demo", "--out", str(folder), "--images", str(n_images)],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if completed.returncode != 0:
            raise SystemExit(f"demo failed: {completed.stderr.strip().splitlines()[-1]}")
        stages = json.loads((folder / "results" / "demo_timings.json").read_text())
        runs[run] = {"total_seconds": round(seconds, 1), "stages": stages}
        print(f"demo {run}: {seconds:.1f} s", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    target = DEMO_TARGETS.get(n_images)
    met = None if target is None else runs["fresh"]["total_seconds"] < target
    return {"images": n_images, **runs, "target_fresh_seconds": target, "target_met": met}


def main() -> None:
    """Run the NMI-curve part (and the demo part unless skipped), print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes (a smoke run, not the targets).")
    parser.add_argument("--skip-demo", action="store_true", help="Only the NMI-curve part.")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results" / "evaluation.json",
        help="JSON result file (default: the committed bench/results/evaluation.json)",
    )
    args = parser.parse_args()

    load_before = os.getloadavg()
    results = {"nmi_curves": nmi_part(args.quick)}
    nmi = results["nmi_curves"]
    print(f"\nNMI curves, k = 2..500, {nmi['n_points']} points, {nmi['n_labelled']} labelled")
    print(f"{'tree':<15}{'one pass s':>12}{'cut+score s':>13}{'speedup':>9}{'max |diff|':>12}")
    for tree in ("ward", "density_peaks"):
        row = nmi[tree]
        print(
            f"{tree:<15}{row['one_pass_seconds']:>12}{row['cut_and_score_seconds']:>13}{row['speedup']:>9}"
            f"{row['max_abs_difference']:>12.1e}"
        )
    print(f"reference curves: {nmi['reference_curves_seconds']} s")
    if not args.skip_demo:
        results["demo"] = [demo_part(n) for n in ([200] if args.quick else DEMO_TARGETS)]
        for demo in results["demo"]:
            print(f"\ndemo of {demo['images']} images, wall time per stage (s)")
            print(f"{'stage':<22}{'fresh':>10}{'again':>10}")
            for stage, seconds in demo["fresh"]["stages"].items():
                print(f"{stage:<22}{seconds:>10}{demo['again']['stages'].get(stage, ''):>10}")
            print(f"{'total':<22}{demo['fresh']['total_seconds']:>10}{demo['again']['total_seconds']:>10}")
            if demo["target_met"] is not None:
                print(f"target fresh < {demo['target_fresh_seconds']} s: {'met' if demo['target_met'] else 'not met'}")
    results["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    results["quick"] = args.quick
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
