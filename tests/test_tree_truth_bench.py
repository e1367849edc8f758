"""bench/tree_truth.py: its scorer on a hand-built tree counted by hand, and a stored tree read back against the truth
the shared fixture computes from the corpus files' own md5s."""

from __future__ import annotations

import pytest
from conftest import bench_script
from sklearn.metrics import normalized_mutual_info_score
from sqlalchemy import select

from semcurate.clustering.tree_building import build_tree
from semcurate.db.models import Label
from semcurate.features.store import FeatureStore


@pytest.fixture(scope="module")
def tree_truth():
    with bench_script("tree_truth") as module:
        yield module


def test_placement_leaves_and_per_category_nmi_of_a_hand_built_tree(tree_truth):
    truth = {"1": "A/x", "2": "A/x", "3": "A/y", "4": "A/y", "5": "B/z", "6": "B/w", "7": "B/w", "8": "C/only"}
    leaf = {"1": 10, "2": 10, "3": 11, "4": 11, "5": 12, "6": 12, "7": 11, "9": 12}  # 9: no truth, not scored
    top = {
        "1": ("A", "label"),
        "2": ("A", "classifier"),
        "3": ("A", "classifier"),
        "4": ("A", "label"),
        "5": ("B", "label"),
        "6": ("B", "classifier"),
        "7": ("A", "classifier"),  # a B image placed in A, in A's second leaf
        "9": ("B", "classifier"),
    }
    scored = tree_truth.score_tree(leaf, top, truth)
    assert (scored["images"], scored["from_labels"], scored["placed"], scored["not_in_tree"]) == (7, 3, 4, 1)
    assert scored["leaf_nmi_left_out_as_one_leaf"] == round(
        normalized_mutual_info_score(
            ["A/x", "A/x", "A/y", "A/y", "B/z", "B/w", "B/w", "C/only"], [10, 10, 11, 11, 12, 12, 11, "out"]
        ),
        3,
    )
    assert scored["placement_accuracy"] == 0.75  # 2, 3 and 6 right, 7 wrong
    assert (scored["leaves"], scored["true_subcategories"]) == (3, 4)
    assert scored["per_category"]["A"] == {
        "images": 4,
        "true_subcategories": 2,
        "leaves_reached": 2,
        "largest_leaf_share": 0.5,
        "nmi": 1.0,
    }
    b = normalized_mutual_info_score(["z", "w", "w"], [12, 12, 11])
    assert scored["per_category"]["B"]["nmi"] == round(b, 3) and 0 < b < 1
    assert "C" not in scored["per_category"]  # 8 has no leaf; a category of one sub-category has no NMI
    assert scored["worst_category_nmi"] == round(b, 3)
    assert scored["leaf_nmi"] == round(
        normalized_mutual_info_score(["A/x", "A/x", "A/y", "A/y", "B/z", "B/w", "B/w"], [10, 10, 11, 11, 12, 12, 11]),
        3,
    )
    assert scored["targets_met"] == {"placement": False, "leaf_nmi": False, "category_nmi": False, "leaf_count": False}


def test_a_stored_tree_is_read_back_against_the_truth_of_every_image(tree_truth, demo_repository):
    root, db_url, sessions, truth = demo_repository
    summary = build_tree(sessions, FeatureStore(root / "features.h5"), root / "store", "classic", "ward", "SEM_Dataset")
    mapped, conflicts = tree_truth.image_truth(sessions, root / "corpus" / "ground_truth.csv")
    assert conflicts == 0 and len(mapped) >= 0.95 * 360
    assert all(truth[md5] == path for md5, path in mapped.items() if md5 in truth)
    assert sum(md5 in truth for md5 in mapped) >= 0.95 * len(mapped)
    (row,) = tree_truth.score_run(db_url, root / "corpus" / "ground_truth.csv", [0], "shared", {summary["tree_id"]})
    assert row["tree"] == summary["tree_id"]
    assert row["images"] == len(mapped) and row["from_labels"] + row["placed"] == row["images"]
    assert row["placed"] == summary["classified"]
    assert (row["category_block"], row["category_block_weight"]) == (None, None)  # built without --category-block
    assert row["community_weights"] is False
    assert 0.5 < row["leaf_nmi"] <= 1 and 0.5 < row["with_true_categories"]["leaf_nmi"] <= 1
    assert row["stratified_draws"]["seeds"] == [0]


def test_the_diagnosis_splits_with_the_tree_s_own_floor(tree_truth, demo_repository):
    """A tree stored with a floor no split can reach (0.99) is one leaf per category when the diagnosis splits its
    rows over the true categories (under the default floor the same rows split: the test above)."""
    root, db_url, sessions, _truth = demo_repository
    truth_csv = root / "corpus" / "ground_truth.csv"
    store = FeatureStore(root / "features.h5")
    whole = build_tree(
        sessions, store, root / "store", "classic", "ward", "SEM_Dataset", min_silhouette=0.99, min_size=7
    )
    (row,) = tree_truth.score_run(db_url, truth_csv, [0], "shared", {whole["tree_id"]})
    assert (row["min_silhouette"], row["min_size"]) == (0.99, 7)
    mapped, _conflicts = tree_truth.image_truth(sessions, truth_csv)
    assert row["with_true_categories"]["leaves"] == len({path.split("/")[0] for path in mapped.values()})


def test_rescoring_some_trees_keeps_the_other_rows_and_replaces_those_scored_again(tree_truth):
    earlier = [{"run": "a", "tree": 1, "nmi": 0.1}, {"run": "a", "tree": 2, "nmi": 0.2}, {"run": "b", "tree": 1}]
    scored = [{"run": "a", "tree": 2, "nmi": 0.9}, {"run": "a", "tree": 3, "nmi": 0.3}]
    assert tree_truth.merged_rows(earlier, scored) == [
        {"run": "a", "tree": 1, "nmi": 0.1},
        {"run": "a", "tree": 2, "nmi": 0.9},
        {"run": "a", "tree": 3, "nmi": 0.3},
        {"run": "b", "tree": 1},
    ]


def test_a_tree_stopped_by_a_hierarchy_is_also_scored_without_its_labelled_images(tree_truth, demo_repository):
    """``tree build --hierarchy Hierarchical``: the row names the set and scores the leaves again over the images
    it does not label, which are counted from the database here."""
    root, db_url, sessions, _truth = demo_repository
    guided = build_tree(
        sessions, FeatureStore(root / "features.h5"), root / "store", "classic", "ward", "SEM_Dataset",
        hierarchy_dataset="Hierarchical",
    )  # fmt: skip
    (row,) = tree_truth.score_run(db_url, root / "corpus" / "ground_truth.csv", [], "shared", {guided["tree_id"]})
    with sessions() as session:
        labelled = set(session.scalars(select(Label.image_md5).where(Label.dataset == "Hierarchical")))
    assert row["hierarchy_dataset"] == "Hierarchical" and row["stopped_by_labels"] == guided["stopped_by_labels"]
    assert row["merged_by_labels"] == guided["merged_by_labels"]
    mapped, _conflicts = tree_truth.image_truth(sessions, root / "corpus" / "ground_truth.csv")
    in_tree = set(tree_truth.tree_rows(sessions, guided["tree_id"])[0]) & set(mapped)
    assert 0 < row["images_without_hierarchy_label"] == len(in_tree - labelled) < len(in_tree) == row["images"]
    assert 0 < row["leaf_nmi_without_hierarchy_label"] <= 1
