"""The separability study's own truths (bench/subcategory_separability.py, issue 13), on points whose structure is
set by hand: it must tell "the features hold the groups but their geometry hides them" from "the groups are plain"."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import bench_script


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
