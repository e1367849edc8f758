"""Benchmark: dendrograms and Density Peaks at the thesis' scale, side by side with SciPy, fastcluster and DADApy.

Cases (each measured in a fresh process, so peak RSS is its own):

* linkage, 52,682 × 18 (the size of the thesis' 1u-2u subset): ward,
  centroid and single through :func:`semcurate.clustering.linkage`
  (fastcluster's memory-lean ``linkage_vector``), complete and average through
  the same function: complete in a float32 condensed matrix (5.2 GiB) by a
  nearest-neighbour chain, average in the float64 one (10.3 GiB, written once
  by ``pdist``, which fastcluster then works in). SciPy is not run there: it
  would hold the float64 matrix twice (pdist's and its working copy); the
  figure is printed instead.
* linkage, 20,000 × 18: ours vs ``scipy.cluster.hierarchy.linkage`` for the
  five methods (speed ratio, peak memory, and whether heights and partitions
  agree; complete linkage's heights are float32-rounded, so they are compared
  to within 2^-24 of SciPy's, the rest to 1e-9).
* Density Peaks (:class:`semcurate.clustering.DensityPeaks`): 52,682 × 18
  (target ≤ 10 s) and 20,000 × 50 next to DADApy's ``compute_clustering_DP``
  pipeline (distances, kNN density, decision graph, assignment), which runs in
  its own virtualenv ``bench/.venv-dadapy/`` (created on first use; DADApy pins
  an older NumPy).

Data: 36 Gaussian clusters of unequal sizes on a random 6-dimensional
subspace of the embedding space, plus isotropic noise (σ = 0.3 of the
cluster spread) in all dimensions, like autoencoder codes of images whose
intrinsic dimension is lower than the code size. Seeded; written once per
size to a temporary ``.npy`` file that every process reads.

Every case starts once the machine's 1-minute load average is below
``--quiet-load`` (the machine is shared; see ``bench/machine_load.py``); the
load it started at is recorded with it, and the memory available before each
distance-matrix run.

Usage: ``.venv/bin/python bench/clustering.py [--quick] [--quiet-load 1.0] [--max-wait 300]``.
Results go to ``bench/results/clustering.json``.
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
from pathlib import Path

import numpy as np
from machine_load import add_quiet_load_option, wait_for_quiet

HERE = Path(__file__).resolve().parent
DADAPY_VENV = HERE / ".venv-dadapy"
DADAPY_REQUIREMENT = "dadapy==0.3.4"
N_CLUSTERS = 36
#: The thesis' four linkages (§4.1), then average linkage.
METHODS = ("ward", "centroid", "single", "complete", "average")


def make_points(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points and their generating cluster: 36 anisotropic Gaussians on a 6-d subspace of R^d, plus noise."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, 6)))[0]  # d × 6 orthonormal
    weights = rng.dirichlet(np.full(N_CLUSTERS, 2.0))
    truth = rng.choice(N_CLUSTERS, size=n, p=weights)
    centres = rng.normal(0, 6, (N_CLUSTERS, 6))
    scales = rng.uniform(0.5, 1.5, (N_CLUSTERS, 6))
    latent = centres[truth] + rng.normal(size=(n, 6)) * scales[truth]
    return latent @ basis.T + rng.normal(0, 0.3, (n, d)), truth


WORKER = r"""
import json, sys, time
import numpy as np
case = json.loads(sys.argv[1])
X = np.load(case["data"])
started = time.perf_counter()
if case["tool"] == "semcurate-linkage":
    from semcurate.clustering import linkage
    result = linkage(X, case["method"])
    np.save(case["out"], result)
elif case["tool"] == "scipy-linkage":
    from scipy.cluster.hierarchy import linkage
    result = linkage(X, case["method"])
    np.save(case["out"], result)
elif case["tool"] == "semcurate-dp":
    from semcurate.clustering import DensityPeaks
    model = DensityPeaks(n_clusters=case["k"], n_neighbors=case["n_neighbors"], n_jobs=-1).fit(X)
    np.save(case["out"], model.labels_)
elif case["tool"] == "dadapy-dp":
    from dadapy import Clustering
    data = Clustering(coordinates=X, maxk=case["n_neighbors"], n_jobs=2)
    data.compute_distances()
    data.compute_id_2NN()
    data.compute_density_kNN(k=case["n_neighbors"])
    data.compute_DecGraph()
    gamma = data.log_den - data.log_den.min() + np.log(np.maximum(data.delta, 1e-300))
    order = np.argsort(-gamma)
    # the k centres of largest rho * delta, as ours; DADApy's cuts select the same set
    centres = order[: case["k"]]
    dens_cut = data.log_den[centres].min() - 1e-12
    delta_cut = data.delta[centres].min() - 1e-12
    labels = data.compute_clustering_DP(dens_cut=dens_cut, delta_cut=delta_cut)
    np.save(case["out"], labels)
seconds = time.perf_counter() - started
# VmHWM is this process image's own peak; ru_maxrss would carry over the forking parent's RSS across exec
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"seconds": round(seconds, 3), "peak_rss_mib": round(peak_kib / 1024)}))
"""


def ensure_dadapy() -> Path:
    """Python of the DADApy virtualenv, created on first use."""
    python = DADAPY_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DADAPY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", DADAPY_REQUIREMENT], check=True)
    return python


def run_case(python: str, case: dict, quiet: tuple[float, float], timeout: int = 1800) -> dict:
    """Run one case in a fresh process once the load is below ``quiet = (load, at most seconds waited)``.

    Its seconds, peak RSS and the 1-minute load average it started at, or the
    error it ended with.
    """
    load_before = round(wait_for_quiet(*quiet), 2)
    completed = subprocess.run(
        [python, "-c", WORKER, json.dumps(case)], capture_output=True, text=True, timeout=timeout
    )
    if completed.returncode != 0:
        error = completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "killed"
        return {"error": error, "load_before": load_before}
    return {**json.loads(completed.stdout.strip().splitlines()[-1]), "load_before": load_before}


#: Relative tolerance on merge heights against SciPy: complete linkage keeps float32 distances (24-bit mantissa).
HEIGHT_RTOL = {"complete": 2**-24}


def partitions_agree(ours: np.ndarray, theirs: np.ndarray, ks: range, rtol: float = 1e-9) -> bool:
    """Merge heights equal to within ``rtol`` and equal partitions at every k in ``ks``."""
    from semcurate.clustering.hierarchy import Cutter

    if not np.allclose(ours[:, 2], theirs[:, 2], rtol=rtol, atol=1e-9):
        return False
    ours_cut, theirs_cut = Cutter(ours), Cutter(theirs)
    return all(np.array_equal(ours_cut.labels(k), theirs_cut.labels(k)) for k in ks)


def print_table(title: str, rows: list[dict], columns: list[str]) -> None:
    """Print ``rows`` under ``title`` as left-aligned ``columns`` (missing values blank)."""
    print(f"\n{title}")
    widths = [max(len(column), *(len(str(row.get(column, ""))) for row in rows)) for column in columns]
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row.get(column, "")).ljust(width) for column, width in zip(columns, widths, strict=True)))


def main() -> None:
    """Run the cases (each in its own process), print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Smaller sizes (a smoke run, not the targets).")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results" / "clustering.json",
        help="JSON result file (default: the committed bench/results/clustering.json)",
    )
    add_quiet_load_option(parser)
    parser.add_argument(
        "--max-wait", type=float, default=300.0, help="longest wait for --quiet-load before each case, seconds"
    )
    args = parser.parse_args()
    quiet = (args.quiet_load, args.max_wait)
    from sklearn.metrics import adjusted_rand_score

    from semcurate.clustering.agglomerative import MATRIX_METHODS, available_memory

    big, middle, wide = (5_000, 2_000, 2_000) if args.quick else (52_682, 20_000, 20_000)
    scratch = Path(tempfile.mkdtemp(prefix="bench-clustering-"))
    data, truth = {}, {}
    for name, (n, d) in {"big": (big, 18), "middle": (middle, 18), "wide": (wide, 50)}.items():
        points, truth[name] = make_points(n, d, seed=len(name))
        data[name] = scratch / f"{name}.npy"
        np.save(data[name], points)

    load_before = os.getloadavg()
    linkage_rows = []
    for method in METHODS:
        memory = {"available_gib_before": round(available_memory() / 2**30, 1)} if method in MATRIX_METHODS else {}
        out = scratch / f"big-{method}.npy"
        case = {"tool": "semcurate-linkage", "method": method, "data": str(data["big"]), "out": str(out)}
        result = run_case(sys.executable, case, quiet)
        tool = {"complete": "semcurate (float32 matrix, NN chain)", "average": "semcurate (float64 matrix, in place)"}
        tool = tool.get(method, "semcurate (vector)")
        row = {"n": big, "d": 18, "method": method, "tool": tool, **result, **memory}
        if "peak_rss_mib" in result:
            row["peak_gib"] = round(result["peak_rss_mib"] / 1024, 2)
        linkage_rows.append(row)
        print(f"linkage {method} at {big}: {row}", flush=True)
    scipy_bytes = 2 * 8 * (big * (big - 1) // 2)
    linkage_rows.append(
        {
            "n": big,
            "d": 18,
            "method": "any",
            "tool": "scipy",
            "error": f"not run: pdist's condensed matrix and linkage's working copy are {scipy_bytes / 2**30:.1f} GiB "
            f"of {available_memory() / 2**30:.1f} GiB available",
        }
    )

    compare_rows = []
    for method in METHODS:
        timings = {}
        for tool in ("semcurate-linkage", "scipy-linkage"):
            out = scratch / f"middle-{method}-{tool}.npy"
            timings[tool] = run_case(
                sys.executable,
                {"tool": tool, "method": method, "data": str(data["middle"]), "out": str(out)},
                quiet,
            )
            print(f"linkage {method} at {middle} by {tool}: {timings[tool]}", flush=True)
        ours = np.load(scratch / f"middle-{method}-semcurate-linkage.npy")
        theirs = np.load(scratch / f"middle-{method}-scipy-linkage.npy")
        compare_rows.append(
            {
                "n": middle,
                "method": method,
                "ours_s": round(timings["semcurate-linkage"]["seconds"], 2),
                "scipy_s": round(timings["scipy-linkage"]["seconds"], 2),
                "speedup": round(timings["scipy-linkage"]["seconds"] / timings["semcurate-linkage"]["seconds"], 2),
                "ours_peak_mib": round(timings["semcurate-linkage"]["peak_rss_mib"]),
                "scipy_peak_mib": round(timings["scipy-linkage"]["peak_rss_mib"]),
                "equal_heights_and_partitions_k_1_500": partitions_agree(
                    ours, theirs, range(1, 501), HEIGHT_RTOL.get(method, 1e-9)
                ),
                "height_rtol": HEIGHT_RTOL.get(method, 1e-9),
                "ours_load_before": timings["semcurate-linkage"]["load_before"],
                "scipy_load_before": timings["scipy-linkage"]["load_before"],
            }
        )

    dp_rows = []
    dadapy_python = str(ensure_dadapy())
    for name, tools in (("big", ("semcurate-dp", "dadapy-dp")), ("wide", ("semcurate-dp", "dadapy-dp"))):
        n, d = np.load(data[name], mmap_mode="r").shape
        for tool in tools:
            out = scratch / f"{name}-{tool}.npy"
            python = dadapy_python if tool == "dadapy-dp" else sys.executable
            result = run_case(
                python,
                {"tool": tool, "data": str(data[name]), "out": str(out), "k": N_CLUSTERS, "n_neighbors": 20},
                quiet,
            )
            row = {"n": n, "d": d, "tool": tool, **result}
            if "error" not in result:
                row["ari_vs_generating_clusters"] = round(adjusted_rand_score(truth[name], np.load(out)), 3)
            dp_rows.append(row)
            print(f"density peaks {tool} at {n}×{d}: {row}", flush=True)
    for n, d in {(row["n"], row["d"]) for row in dp_rows}:
        pair = {row["tool"]: row for row in dp_rows if (row["n"], row["d"]) == (n, d)}
        if all("seconds" in pair.get(tool, {}) for tool in ("semcurate-dp", "dadapy-dp")):
            pair["semcurate-dp"]["dadapy_over_ours"] = round(
                pair["dadapy-dp"]["seconds"] / pair["semcurate-dp"]["seconds"], 2
            )
    load_after = os.getloadavg()
    shutil.rmtree(scratch, ignore_errors=True)  # the points and the linkages the cases wrote

    print_table(
        "linkage at the 1u-2u size",
        linkage_rows,
        ["n", "d", "method", "tool", "seconds", "peak_gib", "load_before", "available_gib_before", "error"],
    )
    print_table("linkage vs SciPy (same data, fresh process each)", compare_rows, list(compare_rows[0]))
    equal = {row["method"]: row["equal_heights_and_partitions_k_1_500"] for row in compare_rows}
    summary = [
        {**row, f"equal_to_scipy_at_{middle}": equal[row["method"]]} for row in linkage_rows if row["method"] in equal
    ]
    print_table("every linkage", summary, ["method", "n", "seconds", "peak_gib", f"equal_to_scipy_at_{middle}"])
    print_table(
        "Density Peaks (k = 36 centres, 20 neighbours)",
        dp_rows,
        ["n", "d", "tool", "seconds", "peak_rss_mib", "ari_vs_generating_clusters", "dadapy_over_ours"],
    )
    results = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "quiet_load": args.quiet_load,
            "max_wait_s": args.max_wait,
        },
        "data": "36 Gaussian clusters on a random 6-d subspace plus noise σ=0.3 (bench/clustering.py make_points)",
        "quick": args.quick,
        "linkage_1u2u_size": linkage_rows,
        "linkage_vs_scipy": compare_rows,
        "density_peaks": dp_rows,
        "targets": {
            "complete_and_average_52682x18_peak_gb": 15.0,
            "complete_52682x18_peak_gb_per_stage": 8.0,
            "density_peaks_52682x18_seconds": 10.0,
            "density_peaks_20000x50": "no slower than DADApy compute_clustering_DP",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
