"""Distances against the discrete label distance: sampling, d_disc, correlation index, the command."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from semcurate.features.distances import (
    THESIS_SAMPLE,
    balanced_sample,
    correlation_index,
    discrete_distance,
    heatmaps,
)


def test_discrete_distance_is_zero_within_a_category():
    matrix = discrete_distance(["a", "a", "b", "c"])
    assert matrix.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]]


def test_correlation_index_is_pearson_over_pairs():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(12, 4))
    categories = ["x"] * 5 + ["y"] * 7
    same = np.array([categories[i] == categories[j] for i in range(12) for j in range(i + 1, 12)])
    distances = np.array([np.linalg.norm(features[i] - features[j]) for i in range(12) for j in range(i + 1, 12)])
    assert correlation_index(features, categories) == pytest.approx(pearsonr(distances, ~same).statistic)


def test_separated_categories_correlate_strongly():
    rng = np.random.default_rng(1)
    categories = [name for name in "abcd" for _ in range(10)]
    centres = {name: rng.normal(scale=20, size=8) for name in "abcd"}
    features = np.array([centres[name] + rng.normal(size=8) for name in categories])
    assert correlation_index(features, categories) > 0.8
    assert abs(correlation_index(rng.normal(size=(40, 8)), categories)) < 0.15


def test_undefined_correlations_are_errors():
    with pytest.raises(ValueError, match="one category"):
        correlation_index(np.random.default_rng(0).normal(size=(5, 2)), ["a"] * 5)
    with pytest.raises(ValueError, match="same distance"):
        correlation_index(np.zeros((4, 3)), ["a", "a", "b", "b"])
    with pytest.raises(ValueError, match="n >= 3"):
        correlation_index(np.zeros((2, 3)), ["a", "b"])


def test_balanced_sample_follows_the_counts_and_sorts_by_category():
    labels = {f"{index:032x}": category for index, category in enumerate(["Tips"] * 50 + ["Fibres"] * 10)}
    sample = balanced_sample(labels, None, random_state=0)
    counts = {category: sum(1 for _, c in sample if c == category) for category in ("Tips", "Fibres")}
    assert counts == {"Tips": THESIS_SAMPLE["Tips"], "Fibres": 10}
    assert [category for _, category in sample] == sorted(category for _, category in sample)
    assert len({md5 for md5, _ in sample}) == len(sample)
    assert len(balanced_sample(labels, 3)) == 6


def test_heatmap_figure_has_one_panel_per_feature_set_plus_d_disc():
    rng = np.random.default_rng(2)
    figure = heatmaps([("a", rng.normal(size=(9, 3))), ("b", rng.normal(size=(9, 2)))], list("aaabbbccc"))
    assert len(figure.axes) == 3 and "correlation" in figure.axes[1].get_title()
