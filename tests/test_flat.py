"""Flat clustering algorithms behind one interface: k-means, Gaussian mixture, HDBSCAN, spectral."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.cluster import HDBSCAN, KMeans, SpectralClustering
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from semcurate.clustering.flat import (
    FLAT_METHODS,
    GaussianMixtureClustering,
    cluster_labels_per_k,
    make_flat_estimator,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def blobs():
    """400 points in 5-D around 4 well separated centres."""
    X, y = make_blobs(n_samples=400, n_features=5, centers=4, cluster_std=0.5, center_box=(-10, 10), random_state=3)
    return X, y


@pytest.mark.parametrize("method", ["kmeans", "gmm", "spectral"])
def test_methods_that_take_k_recover_the_blobs(blobs, method):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Graph is not fully connected")  # separate blobs, separate kNN pieces
        labels = cluster_labels_per_k(X, method, [4])
    assert list(labels) == [4]
    assert labels[4].shape == (len(X),)
    assert adjusted_rand_score(y, labels[4]) >= 0.99


def test_hdbscan_finds_the_number_of_blobs_itself(blobs):
    X, y = blobs
    labels = cluster_labels_per_k(X, "hdbscan", None, min_cluster_size=20)
    assert list(labels) == [4]
    found = labels[4]
    clustered = found >= 0
    assert set(np.unique(found[clustered])) == {0, 1, 2, 3}
    assert clustered.mean() > 0.9  # a few fringe points may be noise (-1)
    assert adjusted_rand_score(y[clustered], found[clustered]) >= 0.99


def test_one_fit_per_k_in_order_with_progress(blobs):
    X, _ = blobs
    ticks = []
    labels = cluster_labels_per_k(X, "kmeans", [5, 1, 2, 3], progress=ticks.append)
    assert list(labels) == [5, 1, 2, 3]
    assert ticks == [1, 1, 1, 1]
    for k, found in labels.items():
        assert len(np.unique(found)) == k
    assert np.all(labels[1] == 0)


def test_the_same_seed_gives_the_same_labels(blobs):
    X, _ = blobs
    first = cluster_labels_per_k(X, "gmm", [3, 6], random_state=7)
    second = cluster_labels_per_k(X, "gmm", [3, 6], random_state=7)
    for k in (3, 6):
        assert np.array_equal(first[k], second[k])


def test_parameters_pass_through_to_the_estimators():
    kmeans = make_flat_estimator("kmeans", 3, random_state=5, n_init=10)
    assert isinstance(kmeans, KMeans)
    assert (kmeans.n_clusters, kmeans.init, kmeans.n_init, kmeans.random_state) == (3, "k-means++", 10, 5)
    spectral = make_flat_estimator("spectral", 4, n_neighbors=15)
    assert isinstance(spectral, SpectralClustering)
    assert (spectral.affinity, spectral.assign_labels, spectral.n_neighbors) == ("nearest_neighbors", "cluster_qr", 15)
    assert make_flat_estimator("spectral", 4, assign_labels="kmeans").assign_labels == "kmeans"
    hdbscan = make_flat_estimator("hdbscan", min_cluster_size=12)
    assert isinstance(hdbscan, HDBSCAN) and hdbscan.min_cluster_size == 12
    gmm = make_flat_estimator("gmm", 2, covariance_type="diag")
    assert isinstance(gmm, GaussianMixtureClustering)
    assert (gmm.n_clusters, gmm.covariance_type, gmm.random_state) == (2, "diag", 0)


def test_gaussian_mixture_clustering_keeps_its_mixture(blobs):
    X, y = blobs
    model = GaussianMixtureClustering(n_clusters=4, random_state=0)
    labels = model.fit_predict(X)
    assert labels.shape == (len(X),)
    assert adjusted_rand_score(y, labels) == 1.0  # std 0.5 blobs in a 20-wide box: no point is ambiguous
    assert np.array_equal(labels, model.mixture_.predict(X))
    assert model.mixture_.means_.shape == (4, X.shape[1])
    assert np.array_equal(model.predict(X), model.labels_)
    assert np.array_equal(model.labels_, model.mixture_.predict(X))
    assert model.get_params()["n_clusters"] == 4
    with pytest.raises(TypeError):
        GaussianMixtureClustering(4)  # keyword-only


@parametrize_with_checks([GaussianMixtureClustering(n_clusters=2, random_state=0)])
def test_gaussian_mixture_clustering_follows_the_sklearn_contract(estimator, check):
    check(estimator)


def test_flat_methods_are_listed():
    assert FLAT_METHODS == ("kmeans", "gmm", "hdbscan", "spectral", "louvain")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda X: make_flat_estimator("dbscan", 3), r"unknown clustering method 'dbscan'; choose one of kmeans, gmm"),
        (lambda X: cluster_labels_per_k(X, "birch", [2]), r"choose one of kmeans, gmm, hdbscan, spectral"),
        (lambda X: make_flat_estimator("kmeans"), r"needs n_clusters"),
        (lambda X: make_flat_estimator("hdbscan", 3), r"HDBSCAN chooses its own number of clusters .*-1"),
        (lambda X: cluster_labels_per_k(X, "hdbscan", [3]), r"HDBSCAN chooses its own number .*ks=None"),
        (lambda X: cluster_labels_per_k(X, "kmeans", None), r"pass ks"),
        (lambda X: cluster_labels_per_k(X, "kmeans", [2, 0]), r"at least 1; got 0"),
        (lambda X: cluster_labels_per_k(X, "gmm", [-1]), r"at least 1; got -1"),
        (lambda X: cluster_labels_per_k(X, "kmeans", [2.5]), r"must be an integer"),
        (lambda X: cluster_labels_per_k(X, "kmeans", [11]), r"cannot make 11 clusters of 10 samples"),
        (lambda X: cluster_labels_per_k(X[:1], "kmeans", [1]), r"at least 2 points; got 1"),
        (lambda X: cluster_labels_per_k(X[:, 0], "kmeans", [2]), r"2-D array"),
    ],
)
def test_bad_input_gives_one_clear_error(call, message):
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match=message):
        call(X)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_are_refused(bad):
    X = np.random.default_rng(0).normal(size=(10, 3))
    X[6, 1] = bad
    with pytest.raises(ValueError, match=r"1 of 10 feature rows contain NaN or infinity \(first at row 6\)"):
        cluster_labels_per_k(X, "kmeans", [2])
