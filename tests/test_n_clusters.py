"""Number of clusters: elbow, silhouette and gap criteria, and the widest dendrogram gap."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score

from semcurate.clustering.flat import make_flat_estimator
from semcurate.clustering.n_clusters import (
    NClustersEstimate,
    elbow_k,
    estimate_n_clusters,
    gap_k,
    largest_dendrogram_gap,
    within_cluster_sum_of_squares,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def blobs():
    """300 points in 3-D around 4 well separated centres."""
    X, _ = make_blobs(n_samples=300, n_features=3, centers=4, cluster_std=0.6, center_box=(-10, 10), random_state=1)
    return X


@pytest.fixture(scope="module")
def gap_on_blobs(blobs):
    return estimate_n_clusters(blobs, "gap", range(1, 9), n_references=8)


def tibshirani_choice(ks, gap, sd):
    """Smallest k with Gap(k) ≥ Gap(k+1) − s_{k+1}, written out independently of the module."""
    chosen = [k for j, k in enumerate(ks[:-1]) if gap[j] >= gap[j + 1] - sd[j + 1]]
    return chosen[0] if chosen else ks[-1]


@pytest.mark.parametrize("method", ["elbow", "silhouette"])
def test_elbow_and_silhouette_find_four_blobs(blobs, method):
    estimate = estimate_n_clusters(blobs, method, range(2, 11))
    assert estimate.best_k == 4
    assert estimate.ks == tuple(range(2, 11)) and len(estimate.scores) == 9


def test_gap_finds_four_blobs(gap_on_blobs):
    assert gap_on_blobs.best_k == 4


def test_gap_choice_follows_the_tibshirani_rule(gap_on_blobs):
    estimate = gap_on_blobs
    assert len(estimate.gap_sd) == len(estimate.ks) == len(estimate.scores)
    assert all(sd >= 0 for sd in estimate.gap_sd)
    assert estimate.best_k == tibshirani_choice(list(estimate.ks), estimate.scores, estimate.gap_sd)
    # the rule itself, on a made-up curve: 3 is the first k not beaten by the next one's lower error bar
    assert gap_k([1, 2, 3, 4, 5], [0.1, 0.5, 0.9, 1.0, 1.05], [0.05, 0.05, 0.05, 0.2, 0.05]) == 3
    assert gap_k([1, 2, 3], [0.0, 1.0, 2.0], [0.1, 0.1, 0.1]) == 3  # never satisfied: the last k


def test_gap_compares_with_uniform_data_in_the_principal_component_box(blobs, gap_on_blobs):
    # Gap(1) = E*[log W*_1] − log W_1, and for n uniform points in a box with sides L_j, W*_1 ≈ n Σ L_j² / 12.
    centred = blobs - blobs.mean(axis=0)
    projected = centred @ np.linalg.svd(centred, full_matrices=False)[2].T
    sides = projected.max(axis=0) - projected.min(axis=0)
    expected_reference = math.log(len(blobs) * np.sum(sides**2) / 12)
    log_w1 = math.log(np.sum(centred**2))
    assert gap_on_blobs.ks[0] == 1
    assert gap_on_blobs.scores[0] + log_w1 == pytest.approx(expected_reference, abs=0.05)


def test_gap_on_uniform_noise_picks_one_cluster():
    noise = np.random.default_rng(4).uniform(size=(200, 2))
    estimate = estimate_n_clusters(noise, "gap", range(1, 7), n_references=10)
    assert estimate.best_k == 1
    assert estimate.best_k == tibshirani_choice(list(estimate.ks), estimate.scores, estimate.gap_sd)


def test_elbow_rule_on_a_hand_made_curve():
    ks = [1, 2, 3, 4, 5, 6, 7, 8]
    knee_at_3 = [100.0, 40.0, 12.0, 11.0, 10.0, 9.5, 9.0, 8.7]
    assert elbow_k(ks, knee_at_3, log=False) == 3
    assert elbow_k(ks, knee_at_3, log=True) == 3
    # the farthest-from-the-chord point does not move when either axis is rescaled
    assert elbow_k([10 * k for k in ks], [1e-3 * v for v in knee_at_3], log=False) == 30
    # log space sees a knee that linear space misses: a drop by ×10 per step until k = 5, then flat
    decades = [1e4, 1e3, 1e2, 1e1, 1e0, 0.9, 0.8, 0.7]
    assert elbow_k(ks, decades, log=True) == 5
    assert elbow_k(ks, decades, log=False) == 2


def test_elbow_scores_are_the_within_cluster_sums_of_squares(blobs):
    estimate = estimate_n_clusters(blobs, "elbow", [2, 4, 6])
    for k, score in zip(estimate.ks, estimate.scores, strict=True):
        kmeans = make_flat_estimator("kmeans", k).fit(blobs)
        assert score == pytest.approx(kmeans.inertia_, rel=1e-9)
    assert estimate.best_k == elbow_k(estimate.ks, estimate.scores, log=True)


def test_within_cluster_sum_of_squares_by_hand():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 14.0], [10.0, 12.0]])
    assert within_cluster_sum_of_squares(X, [7, 7, -1, -1, -1]) == pytest.approx(2.0 + 8.0)


def test_silhouette_scores_are_sklearns(blobs):
    estimate = estimate_n_clusters(blobs, "silhouette", range(2, 7))
    labels = make_flat_estimator("kmeans", 3, random_state=0).fit(blobs).labels_
    assert estimate.scores[estimate.ks.index(3)] == pytest.approx(silhouette_score(blobs, labels), abs=1e-12)
    assert estimate.best_k == estimate.ks[int(np.argmax(estimate.scores))]


def test_silhouette_on_a_sample(blobs):
    estimate = estimate_n_clusters(blobs, "silhouette", [3, 4], sample_size=100, random_state=2)
    labels = make_flat_estimator("kmeans", 4, random_state=2).fit(blobs).labels_
    expected = silhouette_score(blobs, labels, sample_size=100, random_state=2)
    assert estimate.scores[1] == pytest.approx(expected, abs=1e-12)
    assert estimate.scores[1] != pytest.approx(silhouette_score(blobs, labels), abs=1e-9)


def test_a_sample_that_misses_a_one_point_cluster_is_scored_on_every_row():
    """Ward keeps a far outlier apart at k = 2; a 50-row sample of 2,001 rows misses it, and scikit-learn's sampled
    score would raise (one label): the score is then SciPy's Ward cut scored by scikit-learn on every row."""
    rng = np.random.default_rng(0)
    values = np.vstack([rng.normal(0, 1, (2000, 3)), [[40.0, 40.0, 40.0]]])
    with pytest.raises(ValueError, match="Number of labels is 1"):
        silhouette_score(values, fcluster(linkage(values, "ward"), 2, "maxclust"), sample_size=50, random_state=0)
    estimate = estimate_n_clusters(values, "silhouette", [2, 3], algorithm="ward", sample_size=50, random_state=0)
    expected = silhouette_score(values, fcluster(linkage(values, "ward"), 2, "maxclust"))
    assert estimate.scores[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.filterwarnings("ignore:Graph is not fully connected")  # separate blobs, separate kNN pieces
@pytest.mark.parametrize("algorithm", ["gmm", "spectral"])
def test_other_flat_algorithms_score_the_blobs(blobs, algorithm):
    estimate = estimate_n_clusters(blobs, "silhouette", range(2, 8), algorithm=algorithm)
    assert estimate.best_k == 4 and estimate.algorithm == algorithm


def test_a_linkage_matrix_is_cut_not_reclustered(blobs):
    tree = linkage(blobs, "ward")
    ticks = []
    estimate = estimate_n_clusters(blobs, "silhouette", range(2, 9), algorithm=tree, progress=ticks.append)
    assert estimate.algorithm == "linkage" and estimate.best_k == 4
    assert len(ticks) == 7
    for k, score in zip(estimate.ks, estimate.scores, strict=True):
        scipy_labels = fcluster(tree, k, criterion="maxclust")
        assert score == pytest.approx(silhouette_score(blobs, scipy_labels), abs=1e-12)
    elbow = estimate_n_clusters(blobs, "elbow", range(2, 9), algorithm=tree)
    assert elbow.best_k == 4
    assert elbow.scores[2] == pytest.approx(
        within_cluster_sum_of_squares(blobs, fcluster(tree, 4, criterion="maxclust")), rel=1e-12
    )


@pytest.mark.parametrize("algorithm", ["ward", "average"])
def test_gap_reclusters_references_with_a_named_linkage(blobs, algorithm):
    estimate = estimate_n_clusters(blobs, "gap", range(1, 8), algorithm=algorithm, n_references=5)
    assert estimate.algorithm == algorithm and estimate.best_k == 4


def test_gap_counts_every_clustering_in_progress(blobs):
    ticks = []
    estimate_n_clusters(blobs[:60], "gap", [1, 2, 3], n_references=4, progress=ticks.append)
    assert len(ticks) == 3 * (1 + 4)


def hand_built_tree(heights):
    """Five points merged as ((0 1) (2 3)) then 4, then everything: rows create nodes 5, 6, 7, 8."""
    rows = [[0, 1, heights[0], 2], [2, 3, heights[1], 2], [4, 5, heights[2], 3], [6, 7, heights[3], 5]]
    return np.array(rows, dtype=float)


def test_largest_dendrogram_gap_on_a_hand_built_tree():
    # Cut leaving k clusters lives between the heights of rows n-k-1 and n-k (n = 5):
    # k=2: [2, 10) width 8; k=3: [1.5, 2) 0.5; k=4: [1, 1.5) 0.5; k=5: [0, 1) 1.
    tree = hand_built_tree([1.0, 1.5, 2.0, 10.0])
    assert largest_dendrogram_gap(tree, range(2, 6)) == 2
    assert largest_dendrogram_gap(tree, range(3, 6)) == 5
    assert largest_dendrogram_gap(tree, [3, 4]) == 3  # equal widths: the smaller k
    # a tree whose widest interval is the one with 3 clusters: [2, 10)
    tree = hand_built_tree([1.0, 2.0, 10.0, 11.0])
    assert largest_dendrogram_gap(tree, range(2, 6)) == 3
    # singletons (k = n) start at height 0, not at the top of the tree
    tree = hand_built_tree([5.0, 5.5, 6.0, 6.2])
    assert largest_dendrogram_gap(tree, range(2, 6)) == 5


def test_largest_dendrogram_gap_agrees_with_a_height_cut(blobs):
    tree = linkage(blobs, "average")
    k = largest_dendrogram_gap(tree, range(2, 11))
    n = len(blobs)
    middle = (tree[n - k, 2] + tree[n - k - 1, 2]) / 2
    assert len(np.unique(fcluster(tree, middle, criterion="distance"))) == k
    assert k == 4


def test_largest_dendrogram_gap_refuses_bad_ks():
    tree = hand_built_tree([1.0, 1.5, 2.0, 10.0])
    with pytest.raises(ValueError, match=r"k in 2 \.\. 5 for a tree over 5 points; got 1 \.\. 3"):
        largest_dendrogram_gap(tree, [1, 2, 3])
    with pytest.raises(ValueError, match=r"got 2 \.\. 6"):
        largest_dendrogram_gap(tree, [2, 6])
    with pytest.raises(ValueError, match=r"k_range is empty"):
        largest_dendrogram_gap(tree, [])


def test_plot_returns_a_figure_with_the_curve(blobs, gap_on_blobs):
    estimate = estimate_n_clusters(blobs, "silhouette", range(2, 8))
    figure = estimate.plot()
    assert isinstance(figure, Figure)
    (ax,) = figure.axes
    curve = ax.lines[0]
    assert list(curve.get_xdata()) == list(estimate.ks)
    assert np.allclose(curve.get_ydata(), estimate.scores)
    assert any(list(line.get_xdata()) == [estimate.best_k] for line in ax.lines[1:])

    own = Figure()
    ax = own.add_subplot()
    assert gap_on_blobs.plot(ax) is own
    assert np.allclose(ax.lines[0].get_ydata(), gap_on_blobs.scores)
    assert ax.containers  # the error bars s_k


def test_estimate_is_frozen_and_json_ready(gap_on_blobs):
    with pytest.raises(dataclasses.FrozenInstanceError):
        gap_on_blobs.best_k = 2
    data = json.loads(json.dumps(gap_on_blobs.as_dict()))
    assert data["method"] == "gap" and data["algorithm"] == "kmeans"
    assert data["ks"] == list(gap_on_blobs.ks) and data["best_k"] == gap_on_blobs.best_k
    assert data["scores"] == pytest.approx(list(gap_on_blobs.scores))
    assert data["gap_sd"] == pytest.approx(list(gap_on_blobs.gap_sd))
    assert NClustersEstimate("elbow", (2, 3, 4), (3.0, 2.0, 1.0), 3).as_dict()["gap_sd"] is None


def test_k_range_is_sorted_and_deduplicated(blobs):
    estimate = estimate_n_clusters(blobs, "silhouette", [5, 3, 4, 3])
    assert estimate.ks == (3, 4, 5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "aic"}, r"unknown method 'aic' .*choose one of elbow, silhouette, gap"),
        ({"method": "silhouette", "k_range": range(1, 5)}, r"silhouette must start at 2 .*got k = 1"),
        ({"method": "gap", "k_range": range(0, 3)}, r"gap must start at 1 or more; got k = 0"),
        ({"method": "elbow", "k_range": range(2, 21)}, r"reaches k = 20 but 20 samples allow at most k = 19"),
        ({"method": "silhouette", "k_range": []}, r"k_range is empty"),
        ({"method": "elbow", "k_range": [2, 3]}, r"elbow needs at least 3 values of k"),
        ({"method": "elbow", "k_range": [2, 3.5, 4]}, r"must be integers; got 3.5"),
        ({"algorithm": "hdbscan"}, r"cannot be given a number of clusters \(HDBSCAN chooses its own k\)"),
        ({"algorithm": "louvain"}, r"cannot be given a number of clusters \(Louvain chooses its own k\)"),
        (
            {"algorithm": "dbscan"},
            r"algorithm 'dbscan' .*use one of kmeans, gmm, spectral, single, .*density-peaks or a linkage matrix",
        ),
        ({"method": "gap", "n_references": 0}, r"n_references must be a positive integer"),
    ],
)
def test_bad_arguments_give_one_clear_error(kwargs, message):
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=message):
        estimate_n_clusters(X, **{"k_range": range(2, 6), **kwargs})


def test_bad_features_and_trees_are_refused():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with_nan = X.copy()
    with_nan[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(first at row 3\)"):
        estimate_n_clusters(with_nan, "silhouette")
    tree = linkage(X, "ward")
    with pytest.raises(ValueError, match=r"gap statistic reclusters .*pass algorithm='kmeans'"):
        estimate_n_clusters(X, "gap", range(1, 5), algorithm=tree)
    with pytest.raises(ValueError, match=r"tree over 20 points but X has 19 rows"):
        estimate_n_clusters(X[:19], "elbow", range(2, 6), algorithm=tree)
    with pytest.raises(ValueError, match=r"linkage matrix"):
        estimate_n_clusters(X, "elbow", range(2, 6), algorithm=np.zeros((3, 3)))
