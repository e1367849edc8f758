"""Density Peaks clustering as a divisive hierarchy (Rodriguez & Laio 2014; thesis section 4.2.1).

Every point gets a density ``rho`` and the distance ``delta`` to its nearest
denser point.  Cluster centres are the points where both are large, the first
``k`` points by ``gamma = rho * delta``; every other point takes the cluster of
its nearest denser point, walking down the density slope.  As the centres for
``k + 1`` clusters are those for ``k`` plus one, the step from ``k`` to ``k + 1``
splits exactly one cluster in two: one fit gives a divisive hierarchy, stored as
a SciPy-format linkage matrix so that :class:`~semcurate.clustering.hierarchy.Cutter`
and :func:`scipy.cluster.hierarchy.dendrogram` work on it unchanged.

The array ``nearest_denser`` is built in the two steps of the thesis:

1. a k-nearest-neighbour search; each point's nearest denser neighbour among
   its ``k`` neighbours is its nearest denser point.  Points with no denser
   neighbour are the *local density peaks*;
2. for each local peak, an exact search over the points denser than it only:
   candidates are sorted by density and a peak of density rank ``q`` is
   compared with the ``q`` densest points.  Peaks are few and mostly dense, so
   this costs a small fraction of an all-pairs search.

:class:`DensityPeaks` is a scikit-learn clusterer (``fit``, ``fit_predict``,
``labels_``); :func:`plot_decision_graph` draws the ``rho``-``delta`` plane
the centres are chosen from.

References
----------
A. Rodriguez and A. Laio, "Clustering by fast search and find of density
peaks", Science 344, 1492-1496 (2014). https://doi.org/10.1126/science.1242072
"""

from __future__ import annotations

import math
import time
from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
from joblib import effective_n_jobs
from scipy.spatial import cKDTree
from scipy.special import gammaln
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted, validate_data

from semcurate.clustering.hierarchy import Cutter
from semcurate.features.intrinsic_dimension import TwoNN, dimension_from_ratios

if TYPE_CHECKING:  # matplotlib is imported by plot_decision_graph only, so the estimator loads without it
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: From this many points on, the neighbour search times a k-d tree and brute force on a sample and keeps the faster.
PROBE_MIN_SAMPLES = 10_000
#: Every this-many-th point is a query of that trial (2 % of the points).
PROBE_STRIDE = 50
#: The tree's part of the trial runs in this many chunks, stopping once it is slower than brute force.
PROBE_CHUNKS = 4
#: Below ``PROBE_MIN_SAMPLES`` points, up to this many columns get the k-d tree, more get brute force (on two
#: cores, clustered data: 30,000 points in 32 columns take 2.4 s either way; in 50 columns the tree is slower).
KD_TREE_MAX_COLUMNS = 32
#: Float64 entries in one block of squared distances of the exact search (256 MB).
EXACT_SEARCH_BLOCK = 2**25
#: Point pairs per chunk when distances are recomputed exactly from coordinate differences.
PAIR_CHUNK = 2**20
#: A neighbour nearer than ``(1 - NEIGHBOUR_MARGIN)`` times the k-th neighbour distance is certainly nearer than
#: every point the neighbour search did not return, whatever its rounding; a nearer denser neighbour beyond
#: that margin is confirmed by the exact search.
NEIGHBOUR_MARGIN = 1e-9
#: Candidates whose squared distance by the matrix-product expansion ``|x|^2 - 2 x.y + |y|^2`` exceeds the least
#: by no more than this share of ``|x|^2 + max |y|^2`` (the scale of its rounding error) are recomputed exactly
#: before the nearest is chosen.
EXPANSION_TOLERANCE = 1e-12


class DensityPeaks(ClusterMixin, BaseEstimator):
    """Density Peaks clustering (Rodriguez & Laio 2014; thesis section 4.2.1), with its divisive hierarchy.

    Parameters
    ----------
    n_clusters : int, default=2
        Number of centres ``k``: the points with the ``k`` largest ``gamma``.
    n_neighbors : int, default=20
        Neighbours ``k`` of the density estimate and of the first step of the
        nearest-denser search; clipped to ``n_samples - 1``.
    density_dimension : float or None, default=None
        Exponent ``d`` of the density estimate.  None: the 2-NN intrinsic
        dimension of ``X`` (:class:`~semcurate.features.intrinsic_dimension.TwoNN`),
        or ``n_features`` where it cannot be estimated (fewer than 3 distinct
        points, a regular lattice).
    n_jobs : int or None, default=None
        Workers of the k-d tree neighbour search; None means 1 outside a
        :func:`joblib.parallel_config` context, -1 all processors.
        scikit-learn's brute-force search and the matrix products (BLAS) use
        all cores regardless.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of every point, ``0 .. n_clusters - 1``; label ``j`` is the
        cluster of ``centers_[j]``.
    centers_ : ndarray of shape (n_clusters,)
        Indices of the centres, in decreasing ``gamma`` (``order_[:n_clusters]``).
    log_density_ : ndarray of shape (n_samples,)
        Natural logarithm of the kNN estimate ``rho`` of the probability
        density (per unit of ``X``'s units to the power
        ``density_dimension_``).
    density_ : ndarray of shape (n_samples,)
        ``rho / rho_max`` in [0, 1]: ``exp(log_density_ - max(log_density_))``
        (``rho`` itself overflows float64 in high dimension; the ratio is 0
        only where it underflows, more than 745 e-folds below the maximum).
    density_dimension_ : float
        The exponent ``d`` used.
    delta_ : ndarray of shape (n_samples,)
        Distance (units of ``X``) to ``nearest_denser_``; for the global
        density maximum, its largest distance to any point.
    gamma_ : ndarray of shape (n_samples,)
        ``density_ * delta_ / max(delta_)`` in [0, 1]; 1 at the global density
        maximum.  Only ratios of ``gamma`` matter for the centres.
    nearest_denser_ : ndarray of shape (n_samples,)
        Index of every point's nearest denser point (nearest in Euclidean
        distance, ties to the denser); the global density maximum points to
        itself.
    peaks_ : ndarray of shape (n_peaks,)
        Indices, ascending, of the local density peaks: points with no denser
        point among their ``n_neighbors`` neighbours.
    order_ : ndarray of shape (n_samples,)
        All points by decreasing ``gamma_`` (ties: larger ``log_density_ +
        log(delta_)``, then denser); ``order_[0]`` is the global density
        maximum.  The centres for ``k`` clusters are ``order_[:k]``.
    linkage_ : ndarray of shape (n_samples - 1, 4)
        The hierarchy for every ``k`` in SciPy format.  Row ``i`` merges
        ``order_[n_samples - 1 - i]``'s cluster (column 1) back into the
        cluster it was split from (column 0), as node ``n_samples + i``;
        column 2, the height, is the ``gamma_`` of that centre (non-decreasing
        row to row), column 3 the size of the merged cluster.  Cutting it into
        ``k`` clusters (:meth:`labels_for`) gives the labels of a fit with
        ``n_clusters=k``.
    n_features_in_ : int
        Number of columns seen during ``fit``.

    Notes
    -----
    Density.  ``rho_i = k / (n V_d r_ik^d)``, with ``r_ik`` the distance to the
    ``k``-th neighbour and ``V_d = pi^(d/2) / Gamma(d/2 + 1)`` the volume of the
    unit ``d``-ball, is computed in logarithms.  ``d`` does not change the
    *order* of the densities (``rho`` falls with ``r_ik`` for any ``d > 0``), so
    ``nearest_denser_``, ``delta_`` and the assignment down the slope do not
    depend on it; it sets how many decades ``rho`` spans, and so the balance of
    ``rho`` against ``delta`` in ``gamma`` that picks the centres.  In the
    ambient dimension of CNN features (hundreds to thousands of columns) a 10 %
    larger ``r_ik`` divides ``rho`` by ``1.1^d``: ``gamma`` becomes the density
    order and every centre lands in the densest cluster.  The intrinsic
    dimension is the rate at which neighbour counts grow with the radius on
    the data's manifold, which makes ``rho`` a density on that manifold.

    Ties and duplicates.  Densities are totally ordered: larger
    ``log_density_`` first, then lower index, so ``nearest_denser_`` is acyclic
    and the global maximum unique.  A point with at least ``k`` exact copies
    has ``r_ik = 0``; it is raised to half the smallest positive ``r_ik``, so
    such a clump counts as denser than any point with distinct neighbours
    while ``rho`` and ``gamma`` stay finite.  Copies have ``delta = 0`` and so
    ``gamma = 0``: they are centres last.

    Complexity.  Neighbour search, on the principal axes: a k-d tree
    (scipy's ``cKDTree``), ``O(N log N)`` on average at low intrinsic
    dimension but up to ``O(N^2 D)`` with a large overhead at high intrinsic
    dimension, or scikit-learn's blocked brute force, ``O(N^2 D)`` through
    BLAS; from 10,000 points on, both are timed on 2 % of the queries and the
    faster one runs (both are exact).  Exact search of the peaks:
    ``O(sum_p q_p D)`` through matrix products, ``q_p`` the density rank of
    peak ``p``, in blocks of at most 256 MB.  Hierarchy and labels:
    ``O(N log N)`` by binary lifting over ``nearest_denser_``, and one
    ``O(N)`` pass for the linkage.  Memory: ``O(N (D + k + log N))`` besides
    those blocks.  Measured on two cores with ``n_jobs=-1``: 52,682 points
    in 18 columns in 1-3.5 s (6-d or 15-d clusters), 8 s for a uniform
    18-d cube; 20,000 points in 50 columns in 1.6 s.

    References
    ----------
    A. Rodriguez and A. Laio, "Clustering by fast search and find of density
    peaks", Science 344, 1492-1496 (2014).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, _ = make_blobs(300, centers=3, cluster_std=0.5, random_state=0)
    >>> model = DensityPeaks(n_clusters=3).fit(X)
    >>> np.bincount(model.labels_).tolist()
    [100, 100, 100]
    >>> int(model.labels_for(2).max())
    1
    """

    def __init__(self, *, n_clusters=2, n_neighbors=20, density_dimension=None, n_jobs=None):
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.density_dimension = density_dimension
        self.n_jobs = n_jobs

    def fit(self, X, y=None) -> DensityPeaks:
        """Estimate densities, find every point's nearest denser point, choose centres, build the hierarchy.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite points, at least 2.
        y : None
            Ignored; present for the scikit-learn API.

        Returns
        -------
        self : DensityPeaks
            The fitted estimator.

        Raises
        ------
        ValueError
            On NaN or infinite values, fewer than 2 samples, ``n_clusters``
            below 1 or above ``n_samples``, ``n_neighbors`` below 1, or
            ``density_dimension`` not positive and finite.
        TypeError
            If ``n_clusters`` or ``n_neighbors`` is not an int,
            ``density_dimension`` neither None nor a real number, or
            ``n_jobs`` neither None nor an int.
        """
        self._check_parameters()
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        n_samples = X.shape[0]
        if self.n_clusters > n_samples:
            raise ValueError(
                f"n_clusters={self.n_clusters} is larger than n_samples={n_samples}: "
                "ask for at most one cluster per point"
            )
        points = X.astype(np.float64, copy=False)
        n_neighbors = min(self.n_neighbors, n_samples - 1)
        neighbours, distances = _nearest_neighbours(points, n_neighbors, effective_n_jobs(self.n_jobs))

        if self.density_dimension is None:
            self.density_dimension_ = _two_nn_dimension(points, distances)
        else:
            self.density_dimension_ = float(self.density_dimension)
        self.log_density_ = _log_knn_density(distances, self.density_dimension_)
        self.density_ = np.exp(self.log_density_ - self.log_density_.max())

        by_density = np.lexsort((np.arange(n_samples), -self.log_density_))
        density_rank = _inverse_permutation(by_density)
        self.nearest_denser_, self.peaks_ = _nearest_denser(points, neighbours, distances, density_rank, by_density)
        maximum = by_density[0]
        self.delta_ = _pair_distances(points, np.arange(n_samples), self.nearest_denser_)
        self.delta_[maximum] = _pair_distances(points, np.full(n_samples, maximum), np.arange(n_samples)).max()

        largest_delta = self.delta_[maximum]
        self.gamma_ = self.density_ * (self.delta_ / largest_delta) if largest_delta > 0 else np.zeros(n_samples)
        with np.errstate(divide="ignore"):
            log_gamma = self.log_density_ + np.log(self.delta_)
        by_gamma = np.lexsort((density_rank, -log_gamma, -self.gamma_))
        self.order_ = np.concatenate([[maximum], by_gamma[by_gamma != maximum]])
        centre_rank = _inverse_permutation(self.order_)

        self.centers_ = self.order_[: self.n_clusters]
        self.labels_ = _labels_down_the_slope(self.nearest_denser_, centre_rank, self.n_clusters)
        parent_centre = _nearest_ancestor_ranked_below(self.nearest_denser_, centre_rank, centre_rank)
        self.linkage_ = _divisive_linkage(self.order_, parent_centre, self.gamma_)
        return self

    def labels_for(self, k: int) -> np.ndarray:
        """Labels with ``k`` centres, as a fit with ``n_clusters=k`` would give, by cutting :attr:`linkage_`.

        Parameters
        ----------
        k : int
            Number of clusters, ``1 .. n_samples``.

        Returns
        -------
        ndarray of shape (n_samples,)
            Cluster of every point, ``0 .. k - 1``; label ``j`` is the cluster
            of ``order_[j]``.

        Notes
        -----
        ``O(N log N)`` time and memory per call; :meth:`labels_per_k` shares
        the set-up between many ``k``.
        """
        self._check_k(k)
        return self._numbered_by_centre(Cutter(self.linkage_).labels(k))

    def labels_per_k(self, k_max: int) -> np.ndarray:
        """Labels for every ``k = 1 .. k_max``, for curves of a score against the number of clusters.

        Parameters
        ----------
        k_max : int
            Largest number of clusters, ``1 .. n_samples``.

        Returns
        -------
        ndarray of shape (k_max, n_samples)
            Row ``k - 1`` holds :meth:`labels_for` ``(k)``.

        Notes
        -----
        ``O(N log N)`` set-up and ``O(N log N)`` per ``k``; the result takes
        ``8 k_max N`` bytes.
        """
        self._check_k(k_max)
        cutter = Cutter(self.linkage_)
        return np.stack([self._numbered_by_centre(cutter.labels(k)) for k in range(1, k_max + 1)])

    def _check_parameters(self) -> None:
        """Raise a ``TypeError`` or ``ValueError`` naming the parameter that is out of its range.

        Parameters are checked here, at ``fit``, not in ``__init__`` (scikit-learn's contract).
        """
        for name in ("n_clusters", "n_neighbors"):
            value = getattr(self, name)
            if not _is_int(value):
                raise TypeError(f"{name} must be an int of at least 1, got {value!r} ({type(value).__name__})")
            if value < 1:
                raise ValueError(f"{name} must be an int of at least 1, got {value}")
        dimension = self.density_dimension
        if dimension is not None:
            if isinstance(dimension, bool) or not isinstance(dimension, Real):
                raise TypeError(
                    f"density_dimension must be None (2-NN estimate) or a real number > 0, got {dimension!r}"
                )
            if not (math.isfinite(dimension) and float(dimension) > 0):
                raise ValueError(
                    f"density_dimension must be None (2-NN estimate) or a finite number > 0, got {dimension!r}"
                )
        if self.n_jobs is not None and not _is_int(self.n_jobs):
            raise TypeError(f"n_jobs must be None or an int (-1: all cores), got {self.n_jobs!r}")

    def _check_k(self, k) -> None:
        """Raise unless fitted and ``1 <= k <= n_samples``."""
        check_is_fitted(self, "linkage_")
        n_samples = self.labels_.shape[0]
        if not _is_int(k) or not 1 <= k <= n_samples:
            raise ValueError(f"k={k!r} clusters asked of {n_samples} points; k must be an int in 1 .. {n_samples}")

    def _numbered_by_centre(self, cut_labels: np.ndarray) -> np.ndarray:
        """Labels of a cut into ``k`` clusters renumbered so that label ``j`` is the cluster of ``order_[j]``."""
        k = cut_labels.max() + 1
        by_centre = np.empty(k, dtype=np.int64)
        by_centre[cut_labels[self.order_[:k]]] = np.arange(k)
        return by_centre[cut_labels]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def plot_decision_graph(model: DensityPeaks, ax: Axes | None = None) -> Figure:
    """The decision graph: ``delta`` against ``rho / rho_max``, centres highlighted and numbered by rank.

    Parameters
    ----------
    model : DensityPeaks
        A fitted estimator.
    ax : matplotlib.axes.Axes, optional
        Axes to draw in; by default a new figure with one axes.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes: points in grey, centres in red labelled
        ``0 .. n_clusters - 1`` (their label in ``labels_``), density on a
        logarithmic axis (it spans many decades when ``d`` is large).
    """
    from matplotlib.figure import Figure

    check_is_fitted(model, "centers_")
    if ax is None:
        figure = Figure(figsize=(5.5, 4), layout="constrained")
        ax = figure.subplots()
    else:
        root = ax.get_figure(root=True)
        if root is None:
            raise ValueError("ax must belong to a figure")
        figure = root
    density = np.maximum(model.density_, np.finfo(np.float64).tiny)  # keep underflowed densities on the log axis
    others = np.setdiff1d(np.arange(density.size), model.centers_)
    ax.scatter(density[others], model.delta_[others], s=4, color="tab:gray", label="points")
    ax.scatter(density[model.centers_], model.delta_[model.centers_], s=24, color="tab:red", label="centres")
    for rank, centre in enumerate(model.centers_):
        ax.annotate(
            str(rank),
            (density[centre], model.delta_[centre]),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=8,
            color="tab:red",
        )
    ax.set_xscale("log")
    ax.set_xlabel("density ρ / ρ_max")
    ax.set_ylabel("δ, distance to the nearest denser point")
    ax.set_title(f"Decision graph, d = {model.density_dimension_:.3g}, {model.centers_.size} centres")
    ax.legend(loc="upper left")
    return figure


def _is_int(value: object) -> bool:
    """Whether ``value`` is a Python or NumPy integer (a bool is not a count)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _inverse_permutation(permutation: np.ndarray) -> np.ndarray:
    """``inverse[permutation[i]] = i``."""
    inverse = np.empty_like(permutation)
    inverse[permutation] = np.arange(permutation.size)
    return inverse


def _pair_distances(points: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Euclidean distances ``|points[first] - points[second]|`` of index arrays of one shape, from differences.

    Exact to rounding (no ``|x|^2 - 2 x.y + |y|^2`` cancellation); ``PAIR_CHUNK`` pairs at a time.
    """
    first_flat, second_flat = first.ravel(), second.ravel()
    distances = np.empty(first_flat.size)
    step = max(1, PAIR_CHUNK // points.shape[1])
    for start in range(0, first_flat.size, step):
        offsets = points[first_flat[start : start + step]] - points[second_flat[start : start + step]]
        distances[start : start + step] = np.sqrt(np.einsum("ij,ij->i", offsets, offsets))
    return distances.reshape(first.shape)


def _nearest_neighbours(points: np.ndarray, n_neighbors: int, n_jobs: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and exact distances, each of shape (n_samples, n_neighbors), of every point's nearest other points.

    Rows are sorted by distance.  A point's copies count as its neighbours (at distance 0); the point itself
    does not.  Both searches run on the principal axes: there the tree's coordinate splits follow the data's
    spread, so a cloud on a tilted low-dimensional subspace is searched at the speed of its own dimension.
    Distances are then recomputed from coordinate differences in the original axes.
    """
    n_samples = points.shape[0]
    centred = points - points.mean(axis=0)
    principal = centred @ np.linalg.svd(centred, full_matrices=False)[2].T
    tree = cKDTree(principal)
    brute_force = NearestNeighbors(n_neighbors=n_neighbors + 1, algorithm="brute", n_jobs=n_jobs).fit(principal)
    if _tree_is_faster(tree, brute_force, principal, n_jobs):
        _, found = tree.query(principal, k=n_neighbors + 1, workers=n_jobs)
    else:
        found = brute_force.kneighbors(principal, return_distance=False)
        if found.min() < 0 or found.max() >= n_samples:
            # Seen once here (scikit-learn 1.9, 360 points × 160 columns, a loaded machine): the threaded
            # brute-force reduction returned indices from uninitialised memory. The tree search is exact too.
            _, found = tree.query(principal, k=n_neighbors + 1, workers=n_jobs)
    is_self = found == np.arange(n_samples)[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # copies at distance 0 pushed the point itself out: drop the farthest
    neighbours = found[~is_self].reshape(n_samples, n_neighbors)
    distances = _pair_distances(points, np.repeat(np.arange(n_samples)[:, None], n_neighbors, axis=1), neighbours)
    by_distance = np.argsort(distances, axis=1, kind="stable")
    return np.take_along_axis(neighbours, by_distance, axis=1), np.take_along_axis(distances, by_distance, axis=1)


def _tree_is_faster(tree: cKDTree, brute_force: NearestNeighbors, principal: np.ndarray, n_jobs: int) -> bool:
    """Whether the k-d tree answers the neighbour queries faster than brute force, on this machine and these data.

    A tree's speed depends on the intrinsic dimension, unknown before the search: on 52,682 points in 18
    columns it took 3 s on clustered data and 45 s on a uniform cube, where brute force takes 8 s either way.
    From ``PROBE_MIN_SAMPLES`` points on, both answer every ``PROBE_STRIDE``-th point: brute force in one
    call (its cost per call is high for few queries), the tree in ``PROBE_CHUNKS`` chunks so that a slower
    tree is abandoned early.  Below, up to ``KD_TREE_MAX_COLUMNS`` columns get the tree.  Both searches are
    exact: the choice changes the time only.
    """
    n_samples, n_features = principal.shape
    if n_samples < PROBE_MIN_SAMPLES:
        return n_features <= KD_TREE_MAX_COLUMNS
    sample = principal[::PROBE_STRIDE]
    brute_force.kneighbors(sample[:1], return_distance=False)  # its first call starts thread pools: not timed
    started = time.perf_counter()
    brute_force.kneighbors(sample, return_distance=False)
    brute_force_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for chunk in np.array_split(sample, PROBE_CHUNKS):
        tree.query(chunk, k=brute_force.n_neighbors, workers=n_jobs)
        if time.perf_counter() - started > brute_force_seconds:
            return False
    return True


def _two_nn_dimension(points: np.ndarray, distances: np.ndarray) -> float:
    """The 2-NN intrinsic dimension (thesis section 3.3.1), or ``n_features`` where it cannot be estimated.

    Without copies the first two neighbour distances already found give the ratios ``r2 / r1`` that
    :class:`~semcurate.features.intrinsic_dimension.TwoNN` would search for again, and its fit (90 % of the
    ratios) is applied to them; with copies, or fewer than two neighbours, :class:`TwoNN` runs its own search
    over the distinct points.
    """
    estimator = TwoNN()
    try:
        if distances.shape[1] >= 2 and np.all(distances[:, 0] > 0):
            return dimension_from_ratios(np.sort(distances[:, 1] / distances[:, 0]), estimator.fraction)
        return estimator.fit(points).dimension_
    except ValueError:
        return float(points.shape[1])


def _log_knn_density(distances: np.ndarray, dimension: float) -> np.ndarray:
    """``log(k / (n V_d r_k^d))`` from (n, k) neighbour distances; ``r_k = 0`` is raised to half the least positive."""
    n_samples, n_neighbors = distances.shape
    kth_distance = distances[:, -1]
    positive = kth_distance[kth_distance > 0]
    floor = 0.5 * positive.min() if positive.size else 1.0
    log_unit_ball = 0.5 * dimension * math.log(math.pi) - gammaln(0.5 * dimension + 1.0)
    log_count_share = math.log(n_neighbors) - math.log(n_samples)
    return log_count_share - log_unit_ball - dimension * np.log(np.maximum(kth_distance, floor))


def _nearest_denser(
    points: np.ndarray,
    neighbours: np.ndarray,
    distances: np.ndarray,
    density_rank: np.ndarray,
    by_density: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``nearest_denser`` (the densest point maps to itself) and the local peaks, by the two steps of section 4.2.1.

    Parameters
    ----------
    points : ndarray of shape (n_samples, n_features)
    neighbours, distances : ndarray of shape (n_samples, n_neighbors)
        Output of :func:`_nearest_neighbours`.
    density_rank : ndarray of shape (n_samples,)
        Position of every point in the total density order (0: densest).
    by_density : ndarray of shape (n_samples,)
        Its inverse, the points from densest to least dense.

    Returns
    -------
    nearest_denser : ndarray of shape (n_samples,)
    peaks : ndarray of shape (n_peaks,)
        Points without a denser one among their neighbours, ascending.
    """
    n_samples = points.shape[0]
    neighbour_rank = density_rank[neighbours]
    denser = neighbour_rank < density_rank[:, None]
    denser_distances = np.where(denser, distances, np.inf)
    nearest = denser_distances.min(axis=1)
    # Among equally near denser neighbours, the denser one.
    tied_ranks = np.where(denser_distances == nearest[:, None], neighbour_rank, n_samples)
    is_peak = ~denser.any(axis=1)
    nearest_denser = by_density[np.where(is_peak, 0, tied_ranks.min(axis=1))]  # peaks: filled in below
    # Beyond the margin a point the search did not return could be as near: confirm those exactly too.
    confirmed = nearest < distances[:, -1] * (1.0 - NEIGHBOUR_MARGIN)
    searched = np.flatnonzero(~confirmed)
    searched = searched[density_rank[searched] > 0]
    nearest_denser[searched] = _nearest_denser_exact(points, searched, density_rank, by_density)
    nearest_denser[by_density[0]] = by_density[0]
    return nearest_denser, np.flatnonzero(is_peak)


def _nearest_denser_exact(
    points: np.ndarray, queries: np.ndarray, density_rank: np.ndarray, by_density: np.ndarray
) -> np.ndarray:
    """The nearest denser point of each of ``queries`` (none the densest), by exhaustive search over denser points.

    Queries are taken in increasing density rank ``q`` in blocks of at most ``EXACT_SEARCH_BLOCK`` squared
    distances, each query against the ``q`` densest points only, by matrix products; the few candidates within
    ``EXPANSION_TOLERANCE`` of the best are recomputed exactly and the nearest taken, ties to the denser.
    """
    by_rank = np.argsort(density_rank[queries], kind="stable")
    queries = queries[by_rank]
    query_ranks = density_rank[queries]
    centred = points - points.mean(axis=0)
    squared_norms = np.einsum("ij,ij->i", centred, centred)
    candidates = centred[by_density]
    candidate_norms = squared_norms[by_density]
    found = np.empty(queries.size, dtype=np.int64)
    start = 0
    while start < queries.size:
        block_cost = np.arange(1, queries.size - start + 1) * query_ranks[start:]
        stop = start + max(1, int(np.searchsorted(block_cost, EXACT_SEARCH_BLOCK, side="right")))
        block, ranks = queries[start:stop], query_ranks[start:stop]
        width = ranks[-1]
        squared = centred[block] @ candidates[:width].T
        squared *= -2.0
        squared += squared_norms[block, None]
        squared += candidate_norms[None, :width]
        squared[np.arange(width)[None, :] >= ranks[:, None]] = np.inf  # only points denser than the query
        least = squared.min(axis=1)
        tolerance = EXPANSION_TOLERANCE * (squared_norms[block] + candidate_norms[:width].max())
        row, column = np.nonzero(squared <= (least + tolerance)[:, None])
        exact = _pair_distances(points, block[row], by_density[column])
        best = np.lexsort((column, exact, row))
        first_per_row = np.unique(row[best], return_index=True)[1]
        found[start:stop] = by_density[column[best[first_per_row]]]
        start = stop
    in_given_order = np.empty_like(found)
    in_given_order[by_rank] = found
    return in_given_order


def _nearest_ancestor_ranked_below(nearest_denser: np.ndarray, rank: np.ndarray, limit: np.ndarray | int) -> np.ndarray:
    """For every point, its nearest strict ancestor along ``nearest_denser`` with ``rank < limit``.

    ``limit`` is one int or one per point, at least 1 wherever the answer is used (the root, rank 0, ends every
    path and answers for itself).  Binary lifting: ``jumps[j]`` is the ``2^j``-th ancestor and ``lowest[j]`` the
    least rank among the ancestors it passes, so the search takes ``log2(depth)`` vectorised steps:
    ``O(N log N)`` time and memory.
    """
    root = nearest_denser[nearest_denser == np.arange(nearest_denser.size)][0]
    jumps = [nearest_denser]
    lowest = [rank[nearest_denser]]
    while np.any(jumps[-1] != root):
        previous_jump, previous_lowest = jumps[-1], lowest[-1]
        jumps.append(previous_jump[previous_jump])
        lowest.append(np.minimum(previous_lowest, previous_lowest[previous_jump]))
    current = np.arange(nearest_denser.size)
    for jump, least in zip(reversed(jumps), reversed(lowest), strict=True):
        passes_none = least[current] >= limit
        current = np.where(passes_none, jump[current], current)
    return nearest_denser[current]


def _labels_down_the_slope(nearest_denser: np.ndarray, centre_rank: np.ndarray, n_clusters: int) -> np.ndarray:
    """Label of every point: the rank of the first centre (rank ``< n_clusters``) on its path up ``nearest_denser``."""
    is_centre = centre_rank < n_clusters
    centre = np.where(
        is_centre, np.arange(centre_rank.size), _nearest_ancestor_ranked_below(nearest_denser, centre_rank, n_clusters)
    )
    return centre_rank[centre]


def _divisive_linkage(order: np.ndarray, parent_centre: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """SciPy linkage of the hierarchy: the centres from last to second, each merged back into its parent centre.

    Parameters
    ----------
    order : ndarray of shape (n_samples,)
        Points by decreasing ``gamma``, the root first.
    parent_centre : ndarray of shape (n_samples,)
        For the point of rank ``r``, the cluster it splits from: its nearest ancestor of rank ``< r``.
    gamma : ndarray of shape (n_samples,)
        Non-increasing along ``order[1:]``: the heights.

    Returns
    -------
    ndarray of shape (n_samples - 1, 4)
        ``[parent's node, centre's node, gamma of the centre, size]`` per merge.  One pass in merge order, as
        each node id depends on the merges before it.
    """
    n_samples = order.size
    merged = order[:0:-1]
    parents = parent_centre[merged].tolist()
    node = list(range(n_samples))
    size = [1] * n_samples
    linkage = np.empty((n_samples - 1, 4))
    parent_nodes, centre_nodes, sizes = [], [], []
    for step, (centre, parent) in enumerate(zip(merged.tolist(), parents, strict=True)):
        parent_nodes.append(node[parent])
        centre_nodes.append(node[centre])
        size[parent] += size[centre]
        sizes.append(size[parent])
        node[parent] = n_samples + step
    linkage[:, 0] = parent_nodes
    linkage[:, 1] = centre_nodes
    linkage[:, 2] = gamma[merged]
    linkage[:, 3] = sizes
    return linkage
