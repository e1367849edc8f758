"""Benchmark: the sub-category trees a `semcurate demo` run stored, scored against the truth of every image.

``bench/categorisation.py`` measures the placement and the splitting on the
demo's specimens drawn bare (no data bar, no ingest, 15 % labelled at
random per category). This scores what the shipped pipeline stored instead:
images ingested from the messy source tree, their data bar cropped by the
scale reading, SEM_Dataset's labels (14 % of the images, as the generator
drew them), the placement of the rest and the tree split per category, read
back from the database. The truth is the corpus' ``ground_truth.csv``: the
``subcategory_path`` of every file, mapped to its image as ``semcurate
scale validate`` maps it (a file's source path, dropping leading folders),
so each image counts once however many files it came from.

Per stored tree: images scored, how many the tree took from labels and how
many a classifier placed, the placement accuracy of the placed ones against
their true category, the leaves against the true sub-categories (NMI over
all scored images and within each true category of more than one
sub-category, as ``bench/categorisation.py`` scores them), and the targets
of issue 13 (placement ≥ 0.95, leaf NMI ≥ 0.90, every category ≥ 0.80,
leaves within ±20 % of the true number).  The images of the truth that the
tree does not hold (``tree build`` leaves out those the quality stage
flagged unusable) are counted (``not_in_tree``, and per flag as the tree
recorded them), and the leaf NMI is also given over every image of the
truth with those in one leaf of their own (``leaf_nmi_left_out_as_one_leaf``):
what leaving them out costs when they are counted.

Where the figures are lost: for each tree, its feature set's rows in the
run's feature store are also placed and split as ``bench/categorisation.py``
does (its functions), once over the true categories (the split alone) and on
``--draws`` stratified 15 % labelled draws (placement by the tree's placement
set, split of its feature set, preprocessed as the tree was; the tree's own
images), so that the
stored tree, the splitting and the placement can be told apart on the same
images.

Usage: ``.venv/bin/python bench/tree_truth.py DIR [DIR ...] [--draws 0 1 2] [--trees ID ...] [--json FILE]``,
each ``DIR`` a ``semcurate demo --out`` folder (or a ``bench/full_scale.py
--out`` one): ``DIR/semcurate.db`` and ``DIR/corpus/ground_truth.csv``.
Results: ``bench/results/tree_truth.json`` by default. With ``--trees``
only those stored trees are scored, and the other rows already in the JSON
file are kept (each row says the day it was scored, ``scored_on``; rows
written before that field have none).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import categorisation
import numpy as np
from sklearn.metrics import normalized_mutual_info_score
from sqlalchemy import select

from semcurate.clustering.splitting import CATEGORY_BLOCK_WEIGHT, MIN_SILHOUETTE
from semcurate.datasets.demo_corpus import GROUND_TRUTH_FILE
from semcurate.db import DatabaseOpenError, open_database
from semcurate.db.models import Label, TreeMemberRow, TreeNodeRow, TreeRow
from semcurate.ingest.scale_database import _image_of_path, _lookup

HERE = Path(__file__).resolve().parent

#: ``--sample-size`` of the trees stored before it was a parameter (and stored): they were split on samples of
#: 2,000 rows.
UNSTORED_SAMPLE_ROWS = 2000


def mapped_rows(sessions, truth_csv: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``(image md5, row)`` for each row of ``truth_csv`` whose file maps to an ingested image, mapped as
    ``semcurate scale validate`` maps it (the file's source path, dropping leading folders)."""
    names = _image_of_path(sessions)
    with truth_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            md5 = _lookup(names, row["path"])
            if md5 is not None:
                yield md5, row


def image_truth(sessions, truth_csv: Path) -> tuple[dict[str, str], int]:
    """``{image md5: true sub-category path}`` for every image a row of ``truth_csv`` names, and how many images
    two rows gave different sub-categories (kept as the first row says)."""
    truth: dict[str, str] = {}
    conflicts = set()
    for md5, row in mapped_rows(sessions, truth_csv):
        path = row["subcategory_path"]
        if path and truth.setdefault(md5, path) != path:
            conflicts.add(md5)
    return truth, len(conflicts)


def tree_rows(sessions, tree_id: int) -> tuple[dict[str, int], dict[str, tuple[str, str]]]:
    """``{md5: leaf node id}`` and ``{md5: (top category, assigned_by)}`` of stored tree ``tree_id``."""
    with sessions() as session:
        nodes = session.execute(
            select(TreeNodeRow.id, TreeNodeRow.parent_id, TreeNodeRow.depth, TreeNodeRow.category).where(
                TreeNodeRow.tree_id == tree_id
            )
        ).all()
        parents = {parent for _, parent, _, _ in nodes if parent is not None}
        tops = {node: category for node, _, depth, category in nodes if depth == 1}
        leaf_ids = {node for node, _, _, _ in nodes if node not in parents}
        members = session.execute(
            select(TreeMemberRow.node_id, TreeMemberRow.image_md5, TreeMemberRow.assigned_by).where(
                TreeMemberRow.node_id.in_([node for node, _, _, _ in nodes])
            )
        ).all()
    leaf = {md5: node for node, md5, _ in members if node in leaf_ids}
    top = {md5: (tops[node], assigned_by) for node, md5, assigned_by in members if node in tops}
    return leaf, top


def score_tree(leaf: dict[str, int], top: dict[str, tuple[str, str]], truth: dict[str, str]) -> dict:
    """Placement and leaves of one tree against ``truth``: the leaves scored by ``bench/categorisation.py``'s
    :func:`~categorisation.tree_scores`, and the placement of the images a classifier placed."""
    md5s = sorted(md5 for md5 in leaf if md5 in truth)
    true_leaf = np.array([truth[md5] for md5 in md5s])
    true_category = np.array([path.split("/")[0] for path in true_leaf])
    scores = categorisation.tree_scores(np.array([leaf[md5] for md5 in md5s]), true_category, true_leaf)
    placed = [md5 for md5 in md5s if top[md5][1] == "classifier"]
    right = sum(top[md5][0] == truth[md5].split("/")[0] for md5 in placed)
    placement = right / len(placed) if placed else None
    outside = sorted(set(truth) - set(leaf))
    with_left_out = normalized_mutual_info_score(
        [truth[md5] for md5 in md5s + outside], [str(leaf[md5]) for md5 in md5s] + ["left out"] * len(outside)
    )
    return {
        "images": len(md5s),
        "not_in_tree": len(outside),
        "leaf_nmi_left_out_as_one_leaf": round(float(with_left_out), 3),
        "from_labels": len(md5s) - len(placed),
        "placed": len(placed),
        "placement_accuracy": None if placement is None else round(placement, 3),
        **scores,
        "targets_met": {
            "placement": placement is not None and placement >= categorisation.PLACEMENT_TARGET,
            "leaf_nmi": scores["leaf_nmi"] >= categorisation.LEAF_NMI_TARGET,
            "category_nmi": scores["worst_category_nmi"] >= categorisation.CATEGORY_NMI_TARGET,
            "leaf_count": abs(scores["leaf_count_error"]) <= categorisation.LEAF_COUNT_TOLERANCE,
        },
    }


def paired_rows(
    sessions, feature_set: str, place_with: str, keep: Callable[[str], bool]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The md5s that ``keep`` accepts and that have a row in both sets of the run's feature store, with their rows
    of ``feature_set`` and of ``place_with`` in that order (float64, not preprocessed)."""
    from semcurate.db.models import FeatureSet
    from semcurate.features.store import FeatureStore

    with sessions() as session:
        store = FeatureStore(session.get(FeatureSet, feature_set).store_path)
    md5s, values = store.read(feature_set)
    # a tree placed with its own set (or the resolution bench) needs the set read once
    place_md5s, place_values = (md5s, values) if place_with == feature_set else store.read(place_with)
    place_row = {md5: row for row, md5 in enumerate(place_md5s)}
    rows = [row for row, md5 in enumerate(md5s) if md5 in place_row and keep(md5)]
    kept = [md5s[row] for row in rows]
    return (
        kept,
        values[rows].astype(np.float64),
        place_values[[place_row[md5] for md5 in kept]].astype(np.float64),
    )


def diagnosis(
    sessions,
    truth: dict[str, str],
    parameters: dict,
    feature_set: str,
    members: set[str],
    draws: list[int],
    method: str = "ward",
) -> dict:
    """The tree's feature set split over the true categories, and placed and split on stratified 15 % draws, by
    ``bench/categorisation.py``'s functions (see the module docstring) with the tree's clustering ``method``, its
    stored ``sample_size``, its stored ``min_silhouette`` floor, its ``--category-block`` (stored set and
    weight) and its ``--community-weights``, over the tree's ``members``."""
    from semcurate.features.preprocessing import preprocess

    placing = parameters.get("placement_feature_set") or feature_set
    block_set = parameters.get("category_block")
    md5s, values, placing_rows = paired_rows(
        sessions, feature_set, placing, lambda md5: md5 in truth and md5 in members
    )
    block, block_weight = None, CATEGORY_BLOCK_WEIGHT
    if block_set is not None:  # the tree's own --category-block and weight (0 included), aligned with these rows
        block_md5s, block = paired_rows(sessions, block_set, block_set, lambda md5: True)[:2]
        block_row = {md5: row for row, md5 in enumerate(block_md5s)}
        block = block[[block_row[md5] for md5 in md5s]]
        block_weight = parameters["category_block_weight"]
    leaves = np.array([truth[md5] for md5 in md5s])
    categories = np.array([path.split("/")[0] for path in leaves])
    values = preprocess(values, parameters.get("preprocessing", "standard"))
    placing_rows = preprocess(placing_rows)
    sample_size = parameters.get("sample_size", UNSTORED_SAMPLE_ROWS)
    floor = parameters.get("min_silhouette", MIN_SILHOUETTE)
    weighted = bool(parameters.get("community_weights", False))
    oracle = categorisation.tree_scores(
        categorisation.tree_leaves(values, categories, 0, method, sample_size, floor, block, block_weight, weighted),
        categories,
        leaves,
    )
    results = [
        categorisation.categorise(
            values, categories, leaves, draw, placing_rows, method, sample_size, floor, block, block_weight, weighted
        )
        for draw in draws
    ]
    return {
        "with_true_categories": {key: oracle[key] for key in ("leaf_nmi", "worst_category_nmi", "leaves")},
        "stratified_draws": categorisation.draw_summary(draws, results),
    }


def unlabelled_leaf_nmi(sessions, hierarchy_dataset: str, leaf: dict[str, int], truth: dict[str, str]) -> dict:
    """Leaf NMI over the tree's images that carry no label of ``hierarchy_dataset``, the set that stopped its
    splits (``tree build --hierarchy``): the score those labels cannot have helped."""
    with sessions() as session:
        labelled = set(
            session.scalars(
                select(Label.image_md5).where(Label.dataset == hierarchy_dataset, Label.image_md5.is_not(None))
            )
        )
    md5s = [md5 for md5 in leaf if md5 in truth and md5 not in labelled]
    return {
        "images_without_hierarchy_label": len(md5s),
        "leaf_nmi_without_hierarchy_label": round(
            float(normalized_mutual_info_score([truth[md5] for md5 in md5s], [leaf[md5] for md5 in md5s])), 3
        ),
    }


def score_run(db_url: str, truth_csv: Path, draws: list[int], run: str, trees: set[int] | None = None) -> list[dict]:
    """One row per tree stored in the database at ``db_url`` (only those in ``trees`` when given), scored against
    ``truth_csv`` and named ``run``."""
    sessions = open_database(db_url, read_only=True)
    truth, conflicts = image_truth(sessions, truth_csv)
    with sessions() as session:
        stored = session.execute(
            select(
                TreeRow.id, TreeRow.feature_set, TreeRow.method, TreeRow.parameters, TreeRow.classifier_accuracy
            ).order_by(TreeRow.id)
        ).all()
    rows = []
    for tree_id, feature_set, method, parameters, heldout in stored:
        if trees is not None and tree_id not in trees:
            continue
        leaf, top = tree_rows(sessions, tree_id)
        made = json.loads(parameters or "{}")
        rows.append(
            {
                "run": run,
                "tree": tree_id,
                "scored_on": time.strftime("%Y-%m-%d"),
                "feature_set": feature_set,
                "method": method,
                "placed_with": made.get("placement_feature_set", feature_set),
                "min_size": made.get("min_size"),
                "min_silhouette": made.get("min_silhouette"),
                "min_stability": made.get("min_stability"),
                "min_null_z": made.get("min_null_z"),
                "sample_size": made.get("sample_size", UNSTORED_SAMPLE_ROWS),
                "left_out_flagged": made.get("left_out_flagged", 0),
                "left_out_per_flag": made.get("left_out_per_flag", {}),
                "hierarchy_dataset": made.get("hierarchy_dataset"),
                "stopped_by_labels": made.get("stopped_by_labels", 0),
                "merged_by_labels": made.get("merged_by_labels", 0),
                "category_block": made.get("category_block"),
                "category_block_weight": made.get("category_block_weight"),
                "community_weights": made.get("community_weights", False),
                "classifier_heldout_accuracy": heldout,
                "truth_images": len(truth),
                "truth_conflicts": conflicts,
                **score_tree(leaf, top, truth),
                **(
                    unlabelled_leaf_nmi(sessions, made["hierarchy_dataset"], leaf, truth)
                    if made.get("hierarchy_dataset")
                    else {}
                ),
                **(diagnosis(sessions, truth, made, feature_set, set(leaf), draws, method) if draws else {}),
            }
        )
    return rows


def merged_rows(earlier: list[dict], scored: list[dict]) -> list[dict]:
    """The ``scored`` rows and those of ``earlier`` whose run and tree they do not score again, by run and tree."""
    again = {(row["run"], row["tree"]) for row in scored}
    kept = [row for row in earlier if (row["run"], row["tree"]) not in again]
    return sorted(kept + scored, key=lambda row: (row["run"], row["tree"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", metavar="DIR", help="semcurate demo --out folders")
    parser.add_argument(
        "--draws",
        type=int,
        nargs="*",
        default=[0, 1, 2],
        metavar="DRAW",
        help="stratified 15 %% labelled draws of the diagnosis (none: score the stored trees only)",
    )
    parser.add_argument(
        "--trees",
        type=int,
        nargs="+",
        metavar="ID",
        help="score only these stored trees, and keep the other rows of --json as they are (a run of several stored "
        "trees takes an hour and more at 52,682 images: each is split four times by the diagnosis)",
    )
    parser.add_argument("--json", type=Path, default=HERE / "results" / "tree_truth.json")
    args = parser.parse_args()
    trees = set(args.trees) if args.trees else None
    try:
        rows = [
            row
            for folder in args.runs
            for row in score_run(
                f"sqlite:///{folder.resolve() / 'semcurate.db'}",
                folder / "corpus" / GROUND_TRUTH_FILE,
                args.draws,
                str(folder),
                trees,
            )
        ]
    except DatabaseOpenError as error:
        raise SystemExit(f"error: {error}") from None
    print("run | tree | split | placed with | placed | placement | held-out | leaf NMI | worst | leaves")
    for row in rows:
        print(
            f"{row['run']} | {row['tree']} | {row['feature_set']} | {row['placed_with']} | {row['placed']} | "
            f"{row['placement_accuracy']} | {row['classifier_heldout_accuracy']} | {row['leaf_nmi']} | "
            f"{row['worst_category_nmi']} | {row['leaves']}/{row['true_subcategories']}"
        )
        print("   per category:", {name: cell["nmi"] for name, cell in row["per_category"].items()})
        print(
            f"   not in the tree: {row['not_in_tree']} (left out for a quality flag: {row['left_out_flagged']} "
            f"{row['left_out_per_flag']}); leaf NMI with them as one leaf: {row['leaf_nmi_left_out_as_one_leaf']}"
        )
        if "with_true_categories" in row:
            print("   split over the true categories:", row["with_true_categories"])
            print(
                "   stratified 15 % draws:",
                {key: row["stratified_draws"][key]["each"] for key in ("placement_accuracy", "leaf_nmi", "leaves")},
            )
    if trees is not None and args.json.exists():
        rows = merged_rows(json.loads(args.json.read_text(encoding="utf-8"))["rows"], rows)
    result = {
        "benchmark": "tree_truth",
        "targets": {
            "placement_accuracy": f">= {categorisation.PLACEMENT_TARGET}",
            "leaf_nmi": f">= {categorisation.LEAF_NMI_TARGET}",
            "worst_category_nmi": f">= {categorisation.CATEGORY_NMI_TARGET}",
            "leaf_count": f"within ±{categorisation.LEAF_COUNT_TOLERANCE:.0%} of the true number",
        },
        "machine": {"platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
        "worst_category_counts": dict(
            Counter(
                min(
                    (name for name, cell in row["per_category"].items() if cell["nmi"] is not None),
                    key=lambda name: row["per_category"][name]["nmi"],
                )
                for row in rows
            )
        ),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
