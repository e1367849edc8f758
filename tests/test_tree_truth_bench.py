"""bench/tree_truth.py's scorer on a hand-built tree whose placement and leaves are counted by hand."""

from __future__ import annotations

import pytest
from conftest import bench_script
from sklearn.metrics import normalized_mutual_info_score


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
    assert (scored["images"], scored["from_labels"], scored["placed"]) == (7, 3, 4)
    assert scored["placement_accuracy"] == 0.75  # 2, 3 and 6 right, 7 wrong
    assert (scored["leaves"], scored["true_subcategories"]) == (3, 4)
    assert scored["per_category"]["A"] == {"images": 4, "true_subcategories": 2, "leaves_reached": 2, "nmi": 1.0}
    b = normalized_mutual_info_score(["z", "w", "w"], [12, 12, 11])
    assert scored["per_category"]["B"]["nmi"] == round(b, 3) and 0 < b < 1
    assert "C" not in scored["per_category"]  # 8 has no leaf; a category of one sub-category has no NMI
    assert scored["worst_category_nmi"] == round(b, 3)
    assert scored["leaf_nmi"] == round(
        normalized_mutual_info_score(["A/x", "A/x", "A/y", "A/y", "B/z", "B/w", "B/w"], [10, 10, 11, 11, 12, 12, 11]),
        3,
    )
    assert scored["targets_met"] == {"placement": False, "leaf_nmi": False, "category_nmi": False, "leaf_count": False}
