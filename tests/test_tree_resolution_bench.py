"""bench/tree_resolution.py: a stored tree's rows read back with their truth, and each sample size's split over the
true categories scored as scikit-learn scores the leaves that ``split`` gives at that size."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import bench_script
from sklearn.metrics import normalized_mutual_info_score

from semcurate.clustering.splitting import split
from semcurate.clustering.tree_building import build_tree
from semcurate.features.store import FeatureStore


@pytest.fixture(scope="module")
def tree_resolution():
    with bench_script("tree_resolution") as module:
        yield module


def test_each_sample_size_scores_the_leaves_split_gives_at_that_size(tree_resolution, demo_repository):
    root, db_url, sessions, truth = demo_repository
    summary = build_tree(
        sessions, FeatureStore(root / "features.h5"), root / "store", "classic", "ward", "SEM_Dataset", sample_size=40
    )
    values, leaves, made = tree_resolution.stored_tree_rows(
        db_url, root / "corpus" / "ground_truth.csv", summary["tree_id"]
    )
    assert (made["feature_set"], made["method"], made["sample_size"]) == ("classic", "ward", 40)
    assert len(values) == len(leaves) >= 0.95 * 360 and set(leaves) <= set(truth.values())
    assert np.allclose(values.mean(axis=0), 0, atol=1e-9)  # standardised, as the tree was
    categories = np.array([path.split("/")[0] for path in leaves])
    for sample_size in (40, 1000):
        row = tree_resolution.resolution_row(values, leaves, "ward", sample_size, seed=0)
        found = np.empty(len(values), dtype=object)
        for category in np.unique(categories):
            rows = np.flatnonzero(categories == category)
            tree = split(values[rows], "ward", 4, sample_size=sample_size, random_state=0)
            for number, leaf in enumerate(branch for _path, branch in tree.walk() if not branch.children):
                found[rows[leaf.members]] = f"{category}/{number}"
        assert row["leaves"] == len(set(found)) and row["true_subcategories"] == len(set(leaves))
        assert row["leaf_nmi"] == round(normalized_mutual_info_score(leaves, found.astype(str)), 3)
        assert row["sample_size"] == sample_size and row["seconds"] > 0
