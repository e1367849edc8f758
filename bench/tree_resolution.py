"""Benchmark: the tree's resolution at size, ``tree build --sample-size``, on a stored run's images.

The gap rule is a test, and a test sees more structure in more rows: a
category of 16,000 images shows it slight but real structure inside each
sub-category (a generator's parameter drawn from a range) that 400 images do
not. ``split`` judges a node larger than ``sample_size`` rows on a random
sample of that many, so the sample size, not the category's size, decides
how fine the tree's leaves are.  This measures that choice where it matters,
on a large store: a stored tree's feature rows (its own images, preprocessed
as it was) split over the true categories, as ``bench/tree_truth.py``'s
diagnosis splits them (``bench/categorisation.py``'s functions, the tree's
method and silhouette floor), at each ``--samples`` size and each ``--seeds`` seed, timed on one
thread.

Per (sample size, seed): leaves for the true number, leaf NMI against the
true sub-categories, the worst category's NMI and which, and seconds; then
the means per sample size.

Usage: ``.venv/bin/python bench/tree_resolution.py DIR --tree ID [--samples 500 1000 2000] [--seeds 0 1 2]
[--json FILE]``, ``DIR`` a ``semcurate demo --out`` folder (``DIR/semcurate.db``,
``DIR/corpus/ground_truth.csv``). Results: ``bench/results/tree_resolution.json`` by default.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import categorisation
import numpy as np
import tree_truth
from threadpoolctl import threadpool_limits

from semcurate.clustering.splitting import MIN_SILHOUETTE
from semcurate.datasets.demo_corpus import GROUND_TRUTH_FILE
from semcurate.db import DatabaseOpenError, open_database
from semcurate.db.models import TreeRow
from semcurate.features.preprocessing import preprocess

HERE = Path(__file__).resolve().parent


def stored_tree_rows(db_url: str, truth_csv: Path, tree_id: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """The feature rows of tree ``tree_id`` (in the database at ``db_url``) whose images have a truth in
    ``truth_csv``, preprocessed as the tree was, their true sub-category paths, and the tree's stored parameters
    with its ``method`` and ``feature_set``."""
    sessions = open_database(db_url, read_only=True)
    truth, _conflicts = tree_truth.image_truth(sessions, truth_csv)
    with sessions() as session:
        tree = session.get(TreeRow, tree_id)
        if tree is None:
            raise SystemExit(f"error: no tree {tree_id} in {db_url}: see `semcurate tree list`")
        feature_set, made = tree.feature_set, {**json.loads(tree.parameters or "{}"), "method": tree.method}
    members, _top = tree_truth.tree_rows(sessions, tree_id)
    md5s, values, _placing = tree_truth.paired_rows(
        sessions, feature_set, feature_set, lambda md5: md5 in truth and md5 in members
    )
    made["feature_set"] = feature_set
    return preprocess(values, made.get("preprocessing", "standard")), np.array([truth[md5] for md5 in md5s]), made


def resolution_row(
    values: np.ndarray,
    leaves: np.ndarray,
    method: str,
    sample_size: int,
    seed: int,
    min_silhouette: float = MIN_SILHOUETTE,
) -> dict:
    """The split over the true categories at one sample size and seed (under the tree's ``min_silhouette`` floor),
    scored, with its time on one thread."""
    categories = np.array([path.split("/")[0] for path in leaves])
    started = time.perf_counter()
    with threadpool_limits(1):
        found = categorisation.tree_leaves(values, categories, seed, method, sample_size, min_silhouette)
    seconds = time.perf_counter() - started
    scores = categorisation.tree_scores(found, categories, leaves)
    scored = {name: cell["nmi"] for name, cell in scores["per_category"].items() if cell["nmi"] is not None}
    worst = min(scored, key=scored.get)
    return {
        "sample_size": sample_size,
        "seed": seed,
        "leaves": scores["leaves"],
        "true_subcategories": scores["true_subcategories"],
        "leaf_nmi": scores["leaf_nmi"],
        "worst_category": worst,
        "worst_category_nmi": scored[worst],
        "per_category": {name: (cell["nmi"], cell["leaves_reached"]) for name, cell in scores["per_category"].items()},
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, metavar="DIR", help="a semcurate demo --out folder")
    parser.add_argument("--tree", type=int, required=True, metavar="ID", help="the stored tree whose rows to split")
    parser.add_argument("--samples", type=int, nargs="+", default=[500, 1000, 2000], metavar="N")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="SEED")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "tree_resolution.json")
    args = parser.parse_args()
    try:
        values, leaves, made = stored_tree_rows(
            f"sqlite:///{args.run.resolve() / 'semcurate.db'}", args.run / "corpus" / GROUND_TRUTH_FILE, args.tree
        )
    except DatabaseOpenError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"{len(values)} images of tree {args.tree} ({made['feature_set']}, {made['method']})")
    print("sample | seed | leaves | leaf NMI | worst category | seconds")
    rows = []
    for sample_size in args.samples:
        for seed in args.seeds:
            row = resolution_row(
                values, leaves, made["method"], sample_size, seed, made.get("min_silhouette", MIN_SILHOUETTE)
            )
            rows.append(row)
            print(
                f"{sample_size} | {seed} | {row['leaves']}/{row['true_subcategories']} | {row['leaf_nmi']} | "
                f"{row['worst_category']} {row['worst_category_nmi']} | {row['seconds']}",
                flush=True,
            )
    means = {
        str(sample_size): {
            key: round(float(np.mean([row[key] for row in rows if row["sample_size"] == sample_size])), 3)
            for key in ("leaves", "leaf_nmi", "worst_category_nmi", "seconds")
        }
        for sample_size in args.samples
    }
    for sample_size, mean in means.items():
        print(f"mean at {sample_size}: {mean}")
    result = {
        "benchmark": "tree_resolution",
        "run": str(args.run),
        "tree": args.tree,
        "feature_set": made["feature_set"],
        "method": made["method"],
        "images": len(values),
        "machine": {"platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
        "means": means,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
