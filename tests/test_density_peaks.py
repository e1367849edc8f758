"""Density Peaks: the scikit-learn contract, nearest denser points against brute force, the divisive hierarchy.

Every expected value is a generated truth (``make_blobs`` labels), a brute-force reference written here from
the definitions of thesis section 4.2.1, or a structural property; never a number the code under test produced.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy.cluster.hierarchy import dendrogram, is_valid_linkage
from scipy.spatial.distance import cdist
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from semcurate.clustering import density_peaks
from semcurate.clustering.density_peaks import DensityPeaks, plot_decision_graph
from semcurate.clustering.hierarchy import Cutter, first_appearance
from semcurate.features import TwoNN


@parametrize_with_checks([DensityPeaks()])
def test_scikit_learn_contract(estimator, check):
    check(estimator)


def density_rank(log_density: np.ndarray) -> np.ndarray:
    """Position of every point in the total order of the definition: larger log density first, then lower index."""
    n = log_density.size
    ranks = np.empty(n, dtype=np.int64)
    ranks[sorted(range(n), key=lambda i: (-log_density[i], i))] = np.arange(n)
    return ranks


def brute_force_nearest_denser(X: np.ndarray, log_density: np.ndarray) -> np.ndarray:
    """For every point the nearest point ranked denser (ties in distance to the denser); the densest maps to itself."""
    distances = cdist(X, X)
    ranks = density_rank(log_density)
    expected = np.arange(len(X))
    for i in range(len(X)):
        denser = [j for j in range(len(X)) if ranks[j] < ranks[i]]
        if denser:
            expected[i] = min(denser, key=lambda j: (distances[i, j], ranks[j]))
    return expected


def brute_force_peaks(X: np.ndarray, log_density: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Points none of whose ``n_neighbors`` nearest other points is denser (X without ties in distance)."""
    distances = cdist(X, X)
    np.fill_diagonal(distances, np.inf)
    ranks = density_rank(log_density)
    neighbours = np.argsort(distances, axis=1)[:, :n_neighbors]
    return np.flatnonzero(np.all(ranks[neighbours] > ranks[:, None], axis=1))


def mixed_cloud(n: int = 300, seed: int = 0) -> np.ndarray:
    """Gaussian clumps of different widths plus uniform background: many local peaks at many densities."""
    rng = np.random.default_rng(seed)
    clumps = make_blobs(n - n // 4, 4, centers=6, cluster_std=[0.3, 0.5, 0.8, 1.0, 1.5, 2.0], random_state=seed)[0]
    return np.vstack([clumps, rng.uniform(-12, 12, size=(n // 4, 4))])


def with_copies(seed: int = 1) -> np.ndarray:
    """Blobs where some points have more copies than ``n_neighbors`` (``r_k = 0``) and some a few."""
    X = make_blobs(200, 3, centers=3, random_state=seed)[0]
    return np.vstack([X, np.repeat(X[:2], 12, axis=0), np.repeat(X[10:20], 2, axis=0)])


def test_separated_blobs_are_recovered_exactly():
    X, truth = make_blobs(600, 5, centers=4, cluster_std=0.5, random_state=3)
    model = DensityPeaks(n_clusters=4).fit(X)
    assert adjusted_rand_score(truth, model.labels_) == 1.0
    assert sorted(truth[model.centers_]) == [0, 1, 2, 3]  # one centre per blob
    assert np.array_equal(model.labels_[model.centers_], np.arange(4))


@pytest.mark.parametrize("n_neighbors", [1, 3, 10])
def test_nearest_denser_matches_brute_force(n_neighbors):
    X = mixed_cloud()
    model = DensityPeaks(n_neighbors=n_neighbors).fit(X)
    assert np.array_equal(model.peaks_, brute_force_peaks(X, model.log_density_, n_neighbors))
    assert model.peaks_.size > 5  # the exact search for the peaks has work to do
    assert np.array_equal(model.nearest_denser_, brute_force_nearest_denser(X, model.log_density_))


def test_delta_is_distance_to_nearest_denser():
    X = mixed_cloud()
    model = DensityPeaks().fit(X)
    distances = cdist(X, X)
    densest = np.argmax(model.log_density_)
    others = np.arange(len(X)) != densest
    np.testing.assert_allclose(model.delta_[others], distances[others, model.nearest_denser_[others]], rtol=1e-12)
    assert model.nearest_denser_[densest] == densest
    np.testing.assert_allclose(model.delta_[densest], distances[densest].max(), rtol=1e-12)


def test_density_is_the_knn_estimate_in_the_given_dimension():
    X = mixed_cloud()
    k, d = 7, 3.0
    model = DensityPeaks(n_neighbors=k, density_dimension=d).fit(X)
    distances = cdist(X, X)
    np.fill_diagonal(distances, np.inf)
    kth = np.sort(distances, axis=1)[:, k - 1]
    unit_ball = 4.0 / 3.0 * math.pi
    np.testing.assert_allclose(model.log_density_, np.log(k / (len(X) * unit_ball * kth**d)), rtol=1e-10)
    np.testing.assert_allclose(model.density_, np.exp(model.log_density_) / np.exp(model.log_density_).max())
    assert model.density_dimension_ == d


def test_density_dimension_defaults_to_two_nn():
    X = mixed_cloud()
    assert DensityPeaks().fit(X).density_dimension_ == pytest.approx(TwoNN().fit(X).dimension_, rel=1e-9)
    copies = np.vstack([X[:50], X[:50]])
    assert DensityPeaks().fit(copies).density_dimension_ == pytest.approx(TwoNN().fit(copies).dimension_)
    two_distinct = np.repeat([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]], 4, axis=0)
    assert DensityPeaks().fit(two_distinct).density_dimension_ == 3.0  # 2-NN needs 3 distinct points


def test_dimension_sets_the_balance_of_density_and_distance():
    """Far apart, the sparse blob's centre wins on delta at small d and loses to a second dense centre at large d."""
    dense = make_blobs(300, 2, centers=[[0.0, 0.0]], cluster_std=1.0, random_state=0)[0]
    sparse = make_blobs(300, 2, centers=[[40.0, 0.0]], cluster_std=3.0, random_state=1)[0]
    X = np.vstack([dense, sparse])
    in_sparse = np.arange(600) >= 300
    assert in_sparse[DensityPeaks(density_dimension=2.0).fit(X).centers_].tolist() == [False, True]
    assert not in_sparse[DensityPeaks(density_dimension=200.0).fit(X).centers_].any()


def test_centres_order_and_assignment_down_the_slope():
    X = mixed_cloud()
    model = DensityPeaks(n_clusters=7).fit(X)
    assert model.order_[0] == np.argmax(model.log_density_)
    assert sorted(model.order_) == list(range(len(X)))
    assert np.all(np.diff(model.gamma_[model.order_[1:]]) <= 0)
    assert np.array_equal(model.centers_, model.order_[:7])
    np.testing.assert_allclose(model.gamma_, model.density_ * model.delta_ / model.delta_.max())
    followers = np.setdiff1d(np.arange(len(X)), model.centers_)
    assert np.array_equal(model.labels_[followers], model.labels_[model.nearest_denser_[followers]])
    assert np.array_equal(model.labels_[model.centers_], np.arange(7))


def test_each_extra_centre_splits_exactly_one_cluster():
    model = DensityPeaks().fit(mixed_cloud(400))
    coarse = model.labels_for(1)
    assert np.all(coarse == 0)
    for k in range(1, 41):
        fine = model.labels_for(k + 1)
        assert np.unique(fine).size == k + 1
        parents = [np.unique(coarse[fine == label]) for label in range(k + 1)]
        assert all(parent.size == 1 for parent in parents)  # every new cluster lies inside one old cluster
        assert np.bincount([parent[0] for parent in parents]).max() == 2  # exactly one old cluster was split
        coarse = fine


def test_linkage_is_valid_and_cuts_equal_fresh_fits():
    X = mixed_cloud()
    model = DensityPeaks().fit(X)
    linkage = model.linkage_
    assert linkage.shape == (len(X) - 1, 4)
    assert is_valid_linkage(linkage, throw=True)
    assert len(dendrogram(linkage, no_plot=True)["leaves"]) == len(X)
    assert np.all(linkage[:, 2] >= 0) and np.all(np.diff(linkage[:, 2]) >= 0)
    assert linkage[-1, 3] == len(X)
    cutter = Cutter(linkage)
    per_k = model.labels_per_k(25)
    assert per_k.shape == (25, len(X))
    for k in [1, 2, 3, 5, 8, 13, 25, 60, len(X)]:
        refit = DensityPeaks(n_clusters=k).fit(X).labels_
        assert np.array_equal(first_appearance(cutter.labels(k)), first_appearance(refit))
        assert np.array_equal(model.labels_for(k), refit)
        if k <= 25:
            assert np.array_equal(per_k[k - 1], refit)


def test_copies_give_finite_values_and_an_acyclic_tree():
    X = with_copies()
    model = DensityPeaks(n_neighbors=10, n_clusters=3).fit(X)
    for values in (model.log_density_, model.density_, model.delta_, model.gamma_):
        assert np.all(np.isfinite(values))
    assert np.array_equal(model.nearest_denser_, brute_force_nearest_denser(X, model.log_density_))
    # Following nearest_denser from any point reaches the densest point in fewer than n steps.
    reached = np.arange(len(X))
    for _ in range(len(X)):
        reached = model.nearest_denser_[reached]
    assert np.all(reached == np.argmax(model.log_density_))
    assert is_valid_linkage(model.linkage_)
    assert np.array_equal(model.labels_for(3), model.labels_)


def test_identical_points():
    model = DensityPeaks(n_clusters=2).fit(np.ones((6, 3)))
    assert np.all(model.delta_ == 0) and np.all(model.gamma_ == 0)
    assert model.order_[0] == 0 and np.array_equal(model.centers_, [0, 1])
    assert np.bincount(model.labels_).tolist() == [5, 1]
    assert is_valid_linkage(model.linkage_)


def test_both_neighbour_searches_give_the_same_fit(monkeypatch):
    X = make_blobs(600, 40, centers=5, random_state=2)[0]
    fits = []
    for tree_is_faster in (True, False):
        monkeypatch.setattr(density_peaks, "_tree_is_faster", lambda *args, answer=tree_is_faster: answer)
        fits.append(DensityPeaks(n_clusters=5).fit(X))
    tree, brute_force = fits
    np.testing.assert_allclose(tree.log_density_, brute_force.log_density_, rtol=1e-12)
    assert np.array_equal(tree.nearest_denser_, brute_force.nearest_denser_)
    assert np.array_equal(tree.labels_, brute_force.labels_)


def test_float32_input_and_clipped_neighbours():
    X, truth = make_blobs(30, 3, centers=2, cluster_std=0.3, random_state=4)
    model = DensityPeaks(n_neighbors=100).fit(X.astype(np.float32))
    assert adjusted_rand_score(truth, model.labels_) == 1.0
    assert model.log_density_.dtype == np.float64


def test_invalid_input_is_refused_clearly():
    X = make_blobs(10, 2, random_state=0)[0]
    with pytest.raises(ValueError, match="n_clusters=11 is larger than n_samples=10"):
        DensityPeaks(n_clusters=11).fit(X)
    with pytest.raises(ValueError, match="n_clusters"):
        DensityPeaks(n_clusters=0).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        DensityPeaks().fit(np.where(np.arange(20).reshape(10, 2) == 5, np.nan, X))
    with pytest.raises(ValueError, match="1 sample"):
        DensityPeaks(n_clusters=1).fit(X[:1])
    model = DensityPeaks().fit(X)
    for k in (0, 11):
        with pytest.raises(ValueError, match=r"k must be an int in 1 \.\. 10"):
            model.labels_for(k)


@pytest.mark.parametrize(
    ("parameters", "error", "message"),
    [
        ({"n_clusters": 2.5}, TypeError, "n_clusters must be an int of at least 1, got 2.5"),
        ({"n_clusters": True}, TypeError, "n_clusters must be an int"),
        ({"n_neighbors": 0}, ValueError, "n_neighbors must be an int of at least 1, got 0"),
        ({"density_dimension": 0.0}, ValueError, "density_dimension must be None .* or a finite number > 0"),
        ({"density_dimension": float("nan")}, ValueError, "density_dimension"),
        ({"density_dimension": "2"}, TypeError, "density_dimension"),
        ({"n_jobs": 1.5}, TypeError, "n_jobs must be None or an int"),
    ],
)
def test_invalid_parameters_are_named_at_fit(parameters, error, message):
    X = make_blobs(10, 2, random_state=0)[0]
    estimator = DensityPeaks(**parameters)  # __init__ only stores them (scikit-learn's contract)
    with pytest.raises(error, match=message):
        estimator.fit(X)


def test_numpy_scalars_are_valid_parameters():
    X = make_blobs(30, 2, centers=2, random_state=0)[0]
    model = DensityPeaks(n_clusters=np.int64(2), n_neighbors=np.int32(5), density_dimension=np.float32(2.0)).fit(X)
    assert model.density_dimension_ == 2.0
    assert sorted(set(model.labels_.tolist())) == [0, 1]


def test_decision_graph_marks_the_centres():
    model = DensityPeaks(n_clusters=3).fit(make_blobs(200, 2, centers=3, random_state=5)[0])
    figure = plot_decision_graph(model)
    assert isinstance(figure, Figure)
    axis = figure.axes[0]
    centres = np.column_stack([model.density_[model.centers_], model.delta_[model.centers_]])
    offsets = [np.asarray(collection.get_offsets()) for collection in axis.collections]
    assert any(points.shape == centres.shape and np.allclose(points, centres) for points in offsets)
    assert sorted(text.get_text() for text in axis.texts) == ["0", "1", "2"]
    given = Figure().subplots()
    assert plot_decision_graph(model, ax=given) is given.figure
