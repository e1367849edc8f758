"""The separability study's own truths (bench/subcategory_separability.py, issue 13), on points whose structure is
set by hand: it must tell "the features hold the groups but their geometry hides them" from "the groups are plain"."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import bench_script
from sklearn.metrics import normalized_mutual_info_score


@pytest.fixture(scope="module")
def separability():
    with bench_script("subcategory_separability") as module:
        yield module


def test_plain_groups_score_one_with_labels_and_without(separability):
    """Three groups 12 standard deviations apart in 4-D: every clusterer at the true k finds them exactly."""
    rng = np.random.default_rng(0)
    leaves = np.repeat(["a", "b", "c"], 40)
    values = rng.normal(size=(120, 4)) + 12 * np.eye(3, 4)[np.repeat(np.arange(3), 40)]
    study = separability.category_study(values, leaves, seed=0)
    assert study["true_subcategories"] == 3 and study["images"] == 120
    assert study["supervised_accuracy"] == 1.0
    assert set(study["nmi_at_true_k"].values()) == {1.0}
    assert all(cell == {"nmi": 1.0, "k": 3} for cell in study["best_nmi_at_any_k"].values())
    assert study["gap_tree"] == {"nmi": 1.0, "leaves": 3}


def test_groups_hidden_by_a_wide_nuisance_column_are_separable_but_not_found(separability):
    """Two groups apart in one column (6 standard deviations) beside nine columns of wide noise (σ = 10) that are not
    standardised away here: a classifier finds the column, Ward and k-means split along the noise."""
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 60)
    values = np.hstack([6.0 * labels[:, None] + rng.normal(size=(120, 1)), 10 * rng.normal(size=(120, 9))])
    study = separability.category_study(values, labels.astype(str), seed=0)
    assert study["supervised_accuracy"] >= 0.95
    assert study["nmi_at_true_k"]["ward/corpus"] < 0.2 and study["nmi_at_true_k"]["kmeans/corpus"] < 0.2


def test_corpus_study_summarises_per_category_and_leaves_out_categories_of_one_leaf(separability):
    rng = np.random.default_rng(2)
    categories = np.repeat(["one", "two", "single"], 60)
    leaves = np.concatenate([np.repeat(["one/a", "one/b"], 30), np.repeat(["two/a", "two/b"], 30), ["single"] * 60])
    offsets = {"one/a": 0, "one/b": 8, "two/a": 30, "two/b": 38, "single": 60}
    values = rng.normal(size=(180, 3)) + np.array([offsets[leaf] for leaf in leaves])[:, None]
    study = separability.corpus_study(values, categories, leaves, seed=0)
    assert set(study["per_category"]) == {"one", "two"}
    assert study["supervised_accuracy"]["categories"] == 1.0
    assert study["nmi_at_true_k_worst"]["ward/corpus"] == min(
        cell["nmi_at_true_k"]["ward/corpus"] for cell in study["per_category"].values()
    )


def test_louvain_keeps_two_rings_that_ward_cuts_across(separability):
    """Two concentric rings (radii 1 and 4, noise 0.05): each is a chain of neighbours, so the 10-NN graph holds
    them apart, while Ward's variance criterion cuts both rings into halves."""
    rng = np.random.default_rng(3)
    angles = rng.uniform(0, 2 * np.pi, 200)
    radius = np.repeat([1.0, 4.0], 100)
    values = np.column_stack([radius * np.cos(angles), radius * np.sin(angles)]) + rng.normal(0, 0.05, (200, 2))
    leaves = np.repeat(["inner", "outer"], 100)
    assert normalized_mutual_info_score(leaves, separability.louvain(values, 2, seed=0)) == 1.0
    assert normalized_mutual_info_score(leaves, separability.ward(values, 2, seed=0)) < 0.5


def test_the_any_k_ceiling_of_a_sub_category_in_two_modes_is_reached_by_splitting_it(separability):
    """Sub-category "a" is two blobs (at 0 and 40), "b" one blob at 20, 40 rows each, 1 standard deviation wide:
    at k = 2 one blob of "a" joins "b"; at k = 3 the clusters are the blobs, and NMI is
    2 H(Y) / (H(Y) + H(C)), H(Y) = H(2/3, 1/3) and H(C) = ln 3, since the blobs determine the sub-category."""
    rng = np.random.default_rng(4)
    centres = np.repeat([0.0, 40.0, 20.0], 40)
    values = (centres + rng.normal(size=120))[:, None]
    leaves = np.repeat(["a", "a", "b"], 40)
    study = separability.category_study(values, leaves, seed=0)
    entropy_y = -(2 / 3) * np.log(2 / 3) - (1 / 3) * np.log(1 / 3)
    expected = 2 * entropy_y / (entropy_y + np.log(3))
    assert study["best_nmi_at_any_k"]["ward"] == {"nmi": round(expected, 3), "k": 3}
    assert study["nmi_at_true_k"]["ward/corpus"] < expected
    assert study["best_nmi_of_any_clusterer_at_any_k"] == round(expected, 3)
