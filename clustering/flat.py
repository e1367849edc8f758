"""Flat (non-hierarchical) clustering algorithms behind one interface, all from scikit-learn.

``make_flat_estimator(method, n_clusters)`` returns an unfitted scikit-learn
clusterer whose ``fit(X)`` sets ``labels_``; ``cluster_labels_per_k(X, method, ks)``
fits it once per k. The methods are the usual alternatives to the dendrograms
and Density Peaks of this stage, for comparison on the same feature sets:

``"kmeans"``
    :class:`sklearn.cluster.KMeans` with k-means++ seeding (Arthur & Vassilvitskii 2007).
``"gmm"``
    :class:`GaussianMixtureClustering`, a clusterer over
    :class:`sklearn.mixture.GaussianMixture` (EM; Dempster, Laird & Rubin 1977):
    each point goes to its most probable component.
``"hdbscan"``
    :class:`sklearn.cluster.HDBSCAN` (Campello, Moulavi & Sander 2013). It
    chooses its own number of clusters and labels noise ``-1``.
``"spectral"``
    :class:`sklearn.cluster.SpectralClustering` (Ng, Jordan & Weiss 2002) on a
    k-nearest-neighbour affinity graph, so the affinity matrix stays sparse.
``"louvain"``
    :class:`~semcurate.clustering.communities.LouvainCommunities` (Blondel et
    al. 2008): the modularity communities of the 10-nearest-neighbour graph. It
    chooses its own number of clusters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import HDBSCAN, KMeans, SpectralClustering
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted, validate_data

from semcurate.clustering.agglomerative import check_observations
from semcurate.clustering.communities import LouvainCommunities
from semcurate.clustering.methods import FLAT_METHODS, OWN_COUNT_METHODS

#: k-means restarts (best inertia kept) unless ``n_init`` is passed.
KMEANS_N_INIT = 4


class GaussianMixtureClustering(ClusterMixin, BaseEstimator):
    """Clustering by a Gaussian mixture: each point joins its most probable component.

    A thin clusterer over :class:`sklearn.mixture.GaussianMixture`, which is a
    density estimator and so has no ``labels_``; this one has, so it can stand
    wherever a scikit-learn clusterer is expected (pipelines, HyperSpy's
    ``cluster_analysis``).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of mixture components, hence of clusters (some may end up empty).
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Shape of each component's covariance, as in ``GaussianMixture``.
    n_init : int, default=1
        EM runs from different initialisations; the one with the best likelihood is kept.
    max_iter : int, default=100
        EM iterations per run.
    tol : float, default=1e-3
        Convergence threshold on the lower bound of the log-likelihood.
    reg_covar : float, default=1e-6
        Added to the covariance diagonals so they stay positive definite.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        How the responsibilities are initialised.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Component of each training point, ``0 .. n_clusters - 1``.
    mixture_ : GaussianMixture
        The fitted mixture (means, covariances, weights, ``predict_proba``).
    n_iter_ : int
        EM iterations of the best run.
    converged_ : bool
        Whether the best run converged before ``max_iter``.
    n_features_in_ : int
        Number of features seen during fit.

    Notes
    -----
    One EM iteration costs ``O(n k d²)`` time for full covariances (``O(n k d)``
    for diagonal ones) and ``O(k d²)`` memory for the covariances plus
    ``O(n k)`` for the responsibilities. With ``d`` in the hundreds prefer
    ``covariance_type="diag"`` or reduce the features first (PCA, autoencoder).

    References
    ----------
    .. [1] A. P. Dempster, N. M. Laird and D. B. Rubin, "Maximum likelihood from
       incomplete data via the EM algorithm", J. R. Stat. Soc. B 39 (1977) 1-38.
    """

    def __init__(
        self,
        *,
        n_clusters: int = 8,
        covariance_type: str = "full",
        n_init: int = 1,
        max_iter: int = 100,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        init_params: str = "kmeans",
        random_state: Any = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.init_params = init_params
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> GaussianMixtureClustering:
        """Fit the mixture to ``X`` (shape ``(n_samples, n_features)``) and label every row; ``y`` is ignored."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=True)
        self.mixture_ = GaussianMixture(
            n_components=self.n_clusters,
            covariance_type=self.covariance_type,
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            reg_covar=self.reg_covar,
            init_params=self.init_params,
            random_state=self.random_state,
        ).fit(X)
        self.labels_ = self.mixture_.predict(X)
        self.n_iter_ = self.mixture_.n_iter_
        self.converged_ = self.mixture_.converged_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each row of ``X``, shape ``(n_samples,)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.mixture_.predict(X)


def make_flat_estimator(method: str, n_clusters: int | None = None, *, random_state: Any = 0, **parameters: Any):
    """An unfitted scikit-learn clusterer for ``method``; after ``fit(X)`` it has ``labels_``.

    Parameters
    ----------
    method : {"kmeans", "gmm", "hdbscan", "spectral", "louvain"}
        Algorithm, see :data:`FLAT_METHODS` and the module docstring.
    n_clusters : int or None
        Number of clusters, required for ``kmeans``, ``gmm`` and ``spectral``;
        must be ``None`` for ``hdbscan`` and ``louvain``, which choose their own.
    random_state : int, RandomState instance or None, default=0
        Seed for the methods that use one (all but ``hdbscan``).
    **parameters
        Passed to the estimator's constructor, overriding the defaults below
        (for example ``n_init=10``, ``covariance_type="diag"``,
        ``min_cluster_size=20``, ``n_neighbors=15``).

    Returns
    -------
    estimator : sklearn estimator
        ``KMeans(init="k-means++", n_init=4)``, ``GaussianMixtureClustering()``,
        ``HDBSCAN(copy=True)``, ``SpectralClustering(affinity="nearest_neighbors",
        assign_labels="cluster_qr")`` or ``LouvainCommunities()``.

    Raises
    ------
    ValueError
        For an unknown method, ``n_clusters`` missing or below 1, or ``n_clusters`` given to HDBSCAN or Louvain.

    Notes
    -----
    Time and memory for ``n`` points in ``d`` dimensions:

    * kmeans: ``O(n k d)`` per iteration and ``n_init`` restarts; ``O(n d)`` memory.
    * gmm: see :class:`GaussianMixtureClustering`.
    * hdbscan: core distances and the minimum spanning tree from a k-d or ball
      tree when ``d`` is small (about ``O(n log n)`` time); in high dimensions
      scikit-learn falls back to brute force, ``O(n²)`` time and an ``n × n``
      distance matrix, so reduce the features first for large ``n``.
    * spectral: the nearest-neighbour affinity is a sparse graph of about
      ``n × n_neighbors`` entries (default 10), never the dense ``n × n`` RBF
      kernel (8 GB per 32,000 points); the neighbour search is ``O(n² d)`` time
      in high dimensions and the eigensolver (ARPACK by default, ``eigen_solver="amg"``
      with pyamg for large ``n``) then finds ``k`` eigenvectors, ``O(n k)`` memory.
      ``assign_labels="cluster_qr"`` (Damle, Minden & Ying 2019) labels the
      embedding without iterations or random restarts; ``"kmeans"`` is the
      classic alternative. When the neighbour graph falls apart into pieces
      scikit-learn warns that it is not fully connected; well separated groups
      then still come out as the pieces.
    * louvain: see :class:`~semcurate.clustering.communities.LouvainCommunities`.
    """
    if method not in FLAT_METHODS:
        raise ValueError(f"unknown clustering method {method!r}; choose one of {', '.join(FLAT_METHODS)}")
    if method == "hdbscan":
        if n_clusters is not None:
            raise ValueError(
                "HDBSCAN chooses its own number of clusters (noise is labelled -1); "
                "leave n_clusters unset and tune min_cluster_size instead"
            )
        return HDBSCAN(**{"copy": True, **parameters})
    if method == "louvain":
        if n_clusters is not None:
            raise ValueError(
                "Louvain chooses its own number of clusters; leave n_clusters unset and tune resolution instead "
                "(below 1: fewer clusters)"
            )
        return LouvainCommunities(random_state=random_state, **parameters)
    k = _check_k(method, n_clusters)
    if method == "kmeans":
        options = {"init": "k-means++", "n_init": KMEANS_N_INIT, **parameters}
        return KMeans(n_clusters=k, random_state=random_state, **options)
    if method == "gmm":
        return GaussianMixtureClustering(n_clusters=k, random_state=random_state, **parameters)
    options = {"affinity": "nearest_neighbors", "assign_labels": "cluster_qr", **parameters}
    return SpectralClustering(n_clusters=k, random_state=random_state, **options)


def cluster_labels_per_k(
    X,
    method: str,
    ks: Iterable[int] | None,
    *,
    random_state: Any = 0,
    progress: Callable[[int], Any] | None = None,
    **parameters: Any,
) -> dict[int, np.ndarray]:
    """Labels of ``X`` for each number of clusters in ``ks``, fitting ``method`` once per k.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite features, at least 2 rows.
    method : {"kmeans", "gmm", "hdbscan", "spectral", "louvain"}
        See :func:`make_flat_estimator`.
    ks : iterable of int, or None
        Numbers of clusters, each ``1 .. n_samples``. Must be ``None`` for
        ``hdbscan`` and ``louvain``, which find their own number.
    random_state : int, RandomState instance or None, default=0
        Seed passed to every fit, so each k is reproducible on its own.
    progress : callable(int) or None
        Called with 1 after each fit (``tqdm.update``, ``rich`` ``advance``).
    **parameters
        Passed to :func:`make_flat_estimator`.

    Returns
    -------
    labels : dict of int to ndarray of shape (n_samples,)
        ``{k: labels}`` in the order of ``ks``; for ``hdbscan`` and ``louvain`` a single entry
        ``{number of clusters found: labels}`` (HDBSCAN's noise labelled ``-1``).
    """
    if method not in FLAT_METHODS:
        raise ValueError(f"unknown clustering method {method!r}; choose one of {', '.join(FLAT_METHODS)}")
    values = check_observations(X)
    n = len(values)
    if method in OWN_COUNT_METHODS:
        if ks is not None:
            own = "HDBSCAN chooses its own number of clusters (noise is labelled -1)"
            if method == "louvain":
                own = "Louvain chooses its own number of clusters"
            raise ValueError(f"{own}; pass ks=None for method {method!r}")
        labels = make_flat_estimator(method, random_state=random_state, **parameters).fit(values).labels_
        _advance(progress)
        labels = np.asarray(labels, dtype=np.int64)
        return {len(np.unique(labels[labels >= 0])): labels}
    if ks is None:
        raise ValueError(f"method {method!r} needs the numbers of clusters: pass ks, e.g. ks=range(2, 11)")
    ks = [_check_k(method, k, n) for k in ks]
    result = {}
    for k in ks:
        if k == 1:  # one cluster needs no fit (and spectral embeddings of one vector are ill-posed)
            result[k] = np.zeros(n, dtype=np.int64)
        else:
            estimator = make_flat_estimator(method, k, random_state=random_state, **parameters)
            result[k] = np.asarray(estimator.fit(values).labels_, dtype=np.int64)
        _advance(progress)
    return result


def _check_k(method: str, k: Any, n_samples: int | None = None) -> int:
    """``k`` as an int in ``1 .. n_samples``, or a ValueError naming the fix."""
    if k is None:
        raise ValueError(f"method {method!r} needs n_clusters, an integer of at least 1")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"number of clusters must be an integer; got {k!r}")
    if k < 1:
        raise ValueError(f"number of clusters must be at least 1; got {k}")
    if n_samples is not None and k > n_samples:
        raise ValueError(f"cannot make {k} clusters of {n_samples} samples; use k ≤ {n_samples}")
    return int(k)


def _advance(progress: Callable[[int], Any] | None) -> None:
    if progress is not None:
        progress(1)
