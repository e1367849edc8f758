"""The gap rule on clouds with and without sub-groups: what reading the gap past a flat start buys and risks.

Tibshirani's first-k rule answers 1 when ``Gap(1) ≥ Gap(2) − s(2)``.  Groups
at equal distances from each other (the vertices of a regular tetrahedron)
have no good 2-partition, so the rule can stop at the root however far apart
they are; :func:`semcurate.clustering.splitting.k_past_a_flat_start` reads on
from ``k = 2`` when a later ``Gap(k) − s(k)`` clears ``Gap(1) + s(1)``.  Alone
that is Dudoit and Fridlyand's global test, which splits skewed clouds at
their tail, so :func:`~semcurate.clustering.splitting.split` reads past a
flat start only while the silhouette floor is on.

Two tables, each node one :func:`~semcurate.clustering.splitting.split` at
depth 1 (Ward, ``min_size`` 10, default floor), with and without the reading
(``min_silhouette`` 0 turns both the floor and the reading off, so the
"first-k only" column is the first-k rule with the floor, the reading patched
out):

* **unimodal clouds** (Gaussian with unequal axes, uniform, log-normal,
  Student t with 3 degrees of freedom, correlated Gaussian; 60-3,000 rows,
  8-40 dimensions, 4 seeds): how often the reading fires (the first-k rule
  said 1 and a later gap cleared Gap(1) + s(1)) and how many nodes end split,
  which should be none;
* **equidistant groups**: 4 groups of 40 at a tetrahedron's vertices in 3
  dimensions, 4, 5 and 6 standard deviations apart, 6 seeds: how many nodes
  find the 4 groups (adjusted Rand index against them, scikit-learn's).

Writes ``bench/results/gap_null.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # ships no type information

from semcurate.clustering import splitting
from semcurate.clustering.methods import MIN_SILHOUETTE
from semcurate.datasets.clouds import UNIMODAL_SHAPES, make_equidistant_groups, make_unimodal_cloud

HERE = Path(__file__).resolve().parent
ROWS = (60, 120, 200, 500, 1000, 3000)
DIMENSIONS = (8, 12, 20, 40)
CLOUD_SEEDS = (10, 11, 12, 13)
SEPARATIONS_SD = (4.0, 5.0, 6.0)
GROUP_SEEDS = range(6)


def node(values: np.ndarray, reading: bool) -> splitting.Branch:
    """The root of a depth-1 Ward split of ``values``, with or without the reading past a flat start."""
    if reading:
        return splitting.split(values, "ward", 1, min_size=10)
    with mock.patch.object(splitting, "k_past_a_flat_start", return_value=None):
        return splitting.split(values, "ward", 1, min_size=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gap_null.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    started = time.perf_counter()
    counts = {"clouds": 0, "fired": 0, "split_with_reading": 0, "split_first_k_only": 0}
    clouds = {shape: dict(counts) for shape in UNIMODAL_SHAPES}
    split_clouds = []
    with threadpool_limits(1):
        for shape in UNIMODAL_SHAPES:
            for rows in ROWS:
                for dimensions in DIMENSIONS:
                    for seed in CLOUD_SEEDS:
                        values = make_unimodal_cloud(shape, rows, dimensions, seed)
                        read, first_k = node(values, True), node(values, False)
                        cell = clouds[shape]
                        cell["clouds"] += 1
                        cell["fired"] += "clears Gap(1) + s(1)" in read.note
                        cell["split_with_reading"] += bool(read.children)
                        cell["split_first_k_only"] += bool(first_k.children)
                        if read.children or first_k.children:
                            split_clouds.append(
                                {
                                    "shape": shape,
                                    "rows": rows,
                                    "dimensions": dimensions,
                                    "seed": seed,
                                    "note": read.note,
                                }
                            )
        equidistant = []
        for separation in SEPARATIONS_SD:
            row = {"separation_sd": separation, "draws": len(GROUP_SEEDS)}
            for reading in (True, False):
                found, agreement = 0, []
                for seed in GROUP_SEEDS:
                    values, groups = make_equidistant_groups(separation, 40, seed)
                    root = node(values, reading)
                    leaf = np.zeros(len(values), dtype=int)
                    for number, child in enumerate(root.children):
                        leaf[child.members] = number
                    found += len(root.children) == 4
                    agreement.append(adjusted_rand_score(groups, leaf))
                key = "with_reading" if reading else "first_k_only"
                row[f"found_4_{key}"] = found
                row[f"mean_ari_{key}"] = round(float(np.mean(agreement)), 3)
            equidistant.append(row)
    print(f"{'unimodal shape':<12} {'clouds':>6} {'fired':>6} {'split, reading':>15} {'split, first k':>15}")
    for shape, cell in clouds.items():
        print(
            f"{shape:<12} {cell['clouds']:>6} {cell['fired']:>6} {cell['split_with_reading']:>15} "
            f"{cell['split_first_k_only']:>15}"
        )
    print(f"\n{'4 groups, sd apart':<18} {'found 4, reading':>17} {'ARI':>6} {'found 4, first k':>17} {'ARI':>6}")
    for row in equidistant:
        print(
            f"{row['separation_sd']:<18} {row['found_4_with_reading']:>14}/{row['draws']} "
            f"{row['mean_ari_with_reading']:>6} {row['found_4_first_k_only']:>14}/{row['draws']} "
            f"{row['mean_ari_first_k_only']:>6}"
        )
    results = {
        "benchmark": "gap_null",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
        "settings": {"method": "ward", "depth": 1, "min_size": 10, "min_silhouette": MIN_SILHOUETTE},
        "unimodal_clouds": clouds,
        "clouds_left_split": split_clouds,
        "equidistant_groups": equidistant,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
