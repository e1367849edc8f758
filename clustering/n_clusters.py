"""How many clusters? The elbow, silhouette and gap criteria, and the widest dendrogram gap.

``estimate_n_clusters(X, method, k_range)`` clusters ``X`` once for every k of
``k_range`` and scores each partition, as HyperSpy's
``estimate_number_of_clusters`` does (metrics ``"elbow"``, ``"silhouette"``,
``"gap"``):

``"elbow"``
    Within-cluster sum of squares ``W_k`` per k; the elbow is the k whose point
    of the ``log W_k`` curve lies farthest from the straight line through its
    first and last points (HyperSpy's ``estimate_elbow_position``, after
    Satopää et al. 2011).
``"silhouette"``
    Mean silhouette coefficient per k (Rousseeuw 1987); the best k has the highest.
``"gap"``
    Gap statistic (Tibshirani, Walther & Hastie 2001); the best k is the
    smallest with ``Gap(k) ≥ Gap(k+1) − s_{k+1}``.

The partitions come from a flat algorithm of :mod:`semcurate.clustering.flat`
refitted for each k, or from cuts of one fixed merge tree (a SciPy linkage
matrix), which is how the tree builder asks the question of a dendrogram.
:func:`largest_dendrogram_gap` answers it from the merge heights alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import silhouette_score

from semcurate.clustering.agglomerative import check_observations, linkage
from semcurate.clustering.flat import cluster_labels_per_k
from semcurate.clustering.hierarchy import Cutter, check_linkage
from semcurate.clustering.methods import K_METHODS, N_CLUSTERS_METHODS, TREE_ALGORITHMS

if TYPE_CHECKING:  # matplotlib is imported by the plotting method only, so this module loads without it
    from matplotlib.figure import Figure


def merge_tree(values: np.ndarray, algorithm: str) -> np.ndarray:
    """SciPy-format merge tree of ``values`` by a linkage method or Density Peaks' divisive hierarchy."""
    if algorithm == "density-peaks":
        from semcurate.clustering.density_peaks import DensityPeaks

        return DensityPeaks(n_jobs=-1).fit(values).linkage_
    return linkage(values, algorithm)


_Y_LABELS = {
    "elbow": "within-cluster sum of squares",
    "silhouette": "mean silhouette coefficient",
    "gap": "gap statistic",
}


@dataclass(frozen=True)
class NClustersEstimate:
    """Scores of the candidate numbers of clusters and the one chosen.

    Attributes
    ----------
    method : str
        ``"elbow"``, ``"silhouette"`` or ``"gap"``.
    ks : tuple of int
        The candidate numbers of clusters, in the order scored.
    scores : tuple of float
        One per k: ``W_k`` (elbow), mean silhouette (silhouette) or ``Gap(k)`` (gap).
    best_k : int
        The k the criterion picks.
    gap_sd : tuple of float or None
        Gap only: ``s_k = sd_k · sqrt(1 + 1/B)``, the simulation error used in the rule.
    algorithm : str
        ``"kmeans"``, ``"gmm"``, ``"spectral"``, or ``"linkage"`` for cuts of a given tree.
    """

    method: str
    ks: tuple[int, ...]
    scores: tuple[float, ...]
    best_k: int
    gap_sd: tuple[float, ...] | None = None
    algorithm: str = "kmeans"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists, ints, floats; a non-finite score becomes ``None``)."""
        return {
            "method": self.method,
            "algorithm": self.algorithm,
            "ks": [int(k) for k in self.ks],
            "scores": [_json_float(s) for s in self.scores],
            "best_k": int(self.best_k),
            "gap_sd": None if self.gap_sd is None else [_json_float(s) for s in self.gap_sd],
        }

    def plot(self, ax=None) -> Figure:
        """The score curve with the chosen k marked; draws on ``ax`` if given, else on a new Figure.

        Uses the object API (``matplotlib.figure.Figure``), so no pyplot state is touched;
        save with ``figure.savefig(path)``.
        """
        from matplotlib.figure import Figure

        if ax is None:
            figure = Figure(figsize=(5, 3.5), layout="constrained")
            ax = figure.add_subplot()
        else:
            figure = ax.figure
            while not isinstance(figure, Figure):  # a SubFigure's root
                figure = figure.figure
        ks = np.asarray(self.ks)
        scores = np.asarray(self.scores, dtype=float)
        if self.gap_sd is not None:
            ax.errorbar(ks, scores, yerr=np.asarray(self.gap_sd), fmt="o-", capsize=3, label=self.method)
        else:
            ax.plot(ks, scores, "o-", label=self.method)
        if self.method == "elbow" and np.all(scores > 0):
            ax.set_yscale("log")
        best = scores[list(self.ks).index(self.best_k)]
        ax.axvline(self.best_k, color="0.6", linestyle="--", linewidth=1)
        ax.plot([self.best_k], [best], "s", color="C3", markersize=9, label=f"chosen k = {self.best_k}")
        ax.set_xlabel("number of clusters k")
        ax.set_ylabel(_Y_LABELS.get(self.method, "score"))
        ax.set_title(f"{self.method} ({self.algorithm})")
        ax.legend(loc="best", fontsize="small")
        return figure


def mean_silhouette(
    values: np.ndarray, labels: np.ndarray, *, sample_size: int | None = None, random_state: int | None = None
) -> float:
    """Mean silhouette of ``labels`` (Rousseeuw 1987) over a random sample of ``sample_size`` rows, drawn as
    scikit-learn's ``silhouette_score`` draws it, or over every row when there are no more (or ``sample_size`` is
    None) or the sample holds a single label.

    Why not ``silhouette_score(sample_size=...)`` itself: it raises when its sample holds one label, which a
    cluster of a few rows among thousands makes likely (a 5-image child of a 16,000-image node, or one outlier
    that Ward keeps apart); the silhouette over every row is then the answer, at ``O(n^2)`` cost.

    >>> values = np.r_[np.zeros((6, 2)), np.ones((2, 2))]
    >>> mean_silhouette(values, np.r_[np.zeros(6, int), np.ones(2, int)], sample_size=4, random_state=0)
    1.0
    """
    from sklearn.utils import check_random_state

    if sample_size is not None and len(values) > sample_size:
        rows = check_random_state(random_state).permutation(len(values))[:sample_size]
        if len(np.unique(labels[rows])) > 1:
            return float(silhouette_score(values[rows], labels[rows]))
    return float(silhouette_score(values, labels))


def estimate_n_clusters(
    X,
    method: str = "elbow",
    k_range: Iterable[int] = range(2, 11),
    *,
    algorithm: Any = "kmeans",
    n_references: int = 10,
    random_state: int | None = 0,
    sample_size: int | None = None,
    progress: Callable[[int], Any] | None = None,
    **parameters: Any,
) -> NClustersEstimate:
    """Score each number of clusters in ``k_range`` by ``method`` and pick the best.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite features, at least 3 rows.
    method : {"elbow", "silhouette", "gap"}, default="elbow"
        Criterion, see the module docstring and Notes.
    k_range : iterable of int, default=range(2, 11)
        Candidate numbers of clusters, each ``≤ n_samples - 1``; ``≥ 2`` for
        silhouette (a silhouette needs two clusters), ``≥ 1`` otherwise (gap
        with ``k = 1`` can answer "no cluster structure"). Duplicates are
        dropped and the ks sorted. Elbow needs at least 3 of them.
    algorithm : str or array of shape (n_samples - 1, 4), default="kmeans"
        ``"kmeans"``, ``"gmm"`` or ``"spectral"`` (see
        :func:`~semcurate.clustering.flat.make_flat_estimator`), refitted for
        every k; a linkage method (``"ward"``, ``"single"``, ...) or
        ``"density-peaks"``, whose one merge tree per data set is cut at every k;
        or a SciPy linkage matrix over the rows of ``X``, whose partitions are
        cuts of that one tree (:class:`~semcurate.clustering.hierarchy.Cutter`)
        with no reclustering. ``"hdbscan"`` and ``"louvain"`` are refused: they are not told a k.
        The gap statistic needs a clusterer it can rerun on reference data, so
        it takes a method name, not a linkage matrix.
    n_references : int, default=10
        Gap only: ``B``, the number of uniform reference data sets.
    random_state : int or None, default=0
        Seed of the clusterer and of the reference data.
    sample_size : int or None, default=None
        Silhouette only: score a random subset of this many rows, drawn as
        ``sklearn.metrics.silhouette_score(sample_size=...)`` draws it (every
        row when the subset holds one cluster only: :func:`mean_silhouette`);
        the silhouette costs ``O(n²)`` distance evaluations otherwise.
    progress : callable(int) or None
        Called with 1 after every clustering (``len(ks)`` of them, times
        ``1 + n_references`` for gap).
    **parameters
        Passed to the flat clusterer (``n_init=10``, ``covariance_type="diag"``, …).

    Returns
    -------
    NClustersEstimate

    Notes
    -----
    ``W_k = Σ_r Σ_{i ∈ C_r} ||x_i − mean(C_r)||²`` is computed from the labels
    for every algorithm (for k-means it is the ``inertia_``); Tibshirani's
    ``Σ_r D_r / 2n_r`` is the same number.

    *Elbow.* HyperSpy takes ``log W_k`` and, in ``estimate_elbow_position``,
    the point farthest from the chord joining the curve's first and last
    points (the "kneedle" of Satopää et al.). The argmax of that
    perpendicular distance is unchanged by rescaling either axis, so the
    curve need not be normalised first. Two deviations: the x-axis is the
    value of k (HyperSpy uses the position, the same for consecutive ks) and
    every k is used (HyperSpy stops at 20 points). HyperSpy's ``W_k`` sums
    unsquared within-cluster distances; this is the k-means inertia.

    *Silhouette.* HyperSpy lists every local maximum; here the global maximum
    is ``best_k`` (the smallest k on ties) and the whole curve is kept in ``scores``.

    *Gap.* ``Gap(k) = mean_b log W*_kb − log W_k`` over ``B = n_references``
    reference sets of ``n`` points drawn uniformly in the box aligned with
    the principal components of ``X`` (Tibshirani's reference (b), which
    follows the shape of the data; HyperSpy instead spaces its reference
    points evenly over each raw feature's range). Each reference is clustered in the principal-component
    coordinates, which changes no distance. ``sd_k`` is the standard deviation
    (``ddof = 0``) of ``log W*_kb`` and ``s_k = sd_k sqrt(1 + 1/B)``. The rule
    compares neighbours in the sorted ``ks`` ("k + 1" is the next candidate);
    if no k satisfies it the largest k is returned. The same ``B`` reference
    sets serve every k; only one is held in memory at a time. Cost:
    ``(1 + B) · len(ks)`` clusterings plus one SVD of ``X`` (``O(n d min(n, d))``).

    References
    ----------
    .. [1] R. Tibshirani, G. Walther and T. Hastie, "Estimating the number of
       clusters in a data set via the gap statistic", J. R. Stat. Soc. B 63
       (2001) 411-423.
    .. [2] P. J. Rousseeuw, "Silhouettes: a graphical aid to the interpretation
       and validation of cluster analysis", J. Comput. Appl. Math. 20 (1987) 53-65.
    .. [3] V. Satopää, J. Albrecht, D. Irwin and B. Raghavan, "Finding a
       'Kneedle' in a haystack: detecting knee points in system behavior",
       ICDCS Workshops (2011) 166-171.
    .. [4] HyperSpy, ``MVA.estimate_number_of_clusters`` and ``estimate_elbow_position``.
    """
    if method not in N_CLUSTERS_METHODS:
        raise ValueError(
            f"unknown method {method!r} for the number of clusters; choose one of {', '.join(N_CLUSTERS_METHODS)}"
        )
    values = check_observations(X, min_samples=3)
    n = len(values)
    ks = _check_k_range(k_range, method, n)

    if isinstance(algorithm, str) and algorithm in TREE_ALGORITHMS:
        algorithm_name = algorithm

        def partitions(data: np.ndarray) -> dict[int, np.ndarray]:
            result = dict(Cutter(merge_tree(data, algorithm)).iter_labels(ks))
            if progress is not None:
                progress(1)
            return result
    elif isinstance(algorithm, str):
        if algorithm not in K_METHODS:
            own = {"hdbscan": "HDBSCAN", "louvain": "Louvain"}
            hint = f" ({own[algorithm]} chooses its own k)" if algorithm in own else ""
            raise ValueError(
                f"algorithm {algorithm!r} cannot be given a number of clusters{hint}; use one of "
                f"{', '.join(K_METHODS + TREE_ALGORITHMS)} or a linkage matrix"
            )
        algorithm_name = algorithm

        def partitions(data: np.ndarray) -> dict[int, np.ndarray]:
            return cluster_labels_per_k(data, algorithm, ks, random_state=random_state, progress=progress, **parameters)
    else:
        if method == "gap":
            raise ValueError(
                "the gap statistic reclusters uniform reference data, which a fixed tree cannot do; "
                "pass algorithm='kmeans' (or 'gmm', 'spectral') instead of a linkage matrix"
            )
        cutter = Cutter(algorithm)
        if cutter.n_points != n:
            raise ValueError(
                f"the linkage matrix is a tree over {cutter.n_points} points but X has {n} rows; "
                "pass the features the tree was built from"
            )
        algorithm_name = "linkage"

        def partitions(data: np.ndarray) -> dict[int, np.ndarray]:
            result = {}
            for k, labels in cutter.iter_labels(ks):
                result[k] = labels
                if progress is not None:
                    progress(1)
            return result

    if method == "elbow":
        labels = partitions(values)
        scores = [within_cluster_sum_of_squares(values, labels[k]) for k in ks]
        return NClustersEstimate(
            "elbow", tuple(ks), tuple(scores), elbow_k(ks, scores, log=True), algorithm=algorithm_name
        )

    if method == "silhouette":
        labels = partitions(values)
        scores = []
        for k in ks:
            if len(np.unique(labels[k])) < 2:  # a clusterer left all points in one cluster
                scores.append(math.nan)
            else:
                scores.append(mean_silhouette(values, labels[k], sample_size=sample_size, random_state=random_state))
        if np.all(np.isnan(scores)):
            raise ValueError(
                "every partition put all points in one cluster, so no silhouette is defined; "
                "try another algorithm or k_range"
            )
        best_k = ks[int(np.nanargmax(scores))]
        return NClustersEstimate("silhouette", tuple(ks), tuple(scores), best_k, algorithm=algorithm_name)

    if isinstance(n_references, bool) or not isinstance(n_references, (int, np.integer)) or n_references < 1:
        raise ValueError(f"n_references must be a positive integer (10 is usual); got {n_references!r}")
    labels = partitions(values)
    log_w = np.log([max(within_cluster_sum_of_squares(values, labels[k]), np.finfo(float).tiny) for k in ks])
    low, high = _principal_box(values)
    seeds = np.random.default_rng(random_state).integers(0, 2**32, size=n_references)
    log_w_reference = np.empty((n_references, len(ks)))
    for b, seed in enumerate(seeds):
        reference = np.random.default_rng(seed).uniform(low, high, size=(n, len(low)))
        reference_labels = partitions(reference)
        for j, k in enumerate(ks):
            w = within_cluster_sum_of_squares(reference, reference_labels[k])
            log_w_reference[b, j] = np.log(max(w, np.finfo(float).tiny))
    gap = log_w_reference.mean(axis=0) - log_w
    s = log_w_reference.std(axis=0) * math.sqrt(1.0 + 1.0 / n_references)
    return NClustersEstimate(
        "gap",
        tuple(ks),
        tuple(float(g) for g in gap),
        gap_k(ks, gap, s),
        gap_sd=tuple(float(v) for v in s),
        algorithm=algorithm_name,
    )


def elbow_k(ks: Iterable[int], curve: Iterable[float], *, log: bool = True) -> int:
    """The k whose point of ``curve`` lies farthest from the chord through the first and last points.

    The rule of HyperSpy's ``estimate_elbow_position``: with ``log`` the
    curve is compared in log space (values clipped at ``1e-30``). Points are
    ``(k, curve[k])``; ties go to the smallest k. The argmax does not depend
    on the scale of either axis, so the curve needs no normalisation.

    Examples
    --------
    A falling within-cluster sum of squares: in log space the point farthest
    below the chord is ``k = 3`` (0.97 against 0.54 and 0.53 in log units);
    on the raw values the big first drop wins, ``k = 2`` (46.8 against 43.5):

    >>> elbow_k([1, 2, 3, 4, 5], [100, 30, 10, 8, 7])
    3
    >>> elbow_k([1, 2, 3, 4, 5], [100, 30, 10, 8, 7], log=False)
    2
    """
    ks = np.asarray(list(ks), dtype=float)
    y = np.asarray(list(curve), dtype=float)
    if len(ks) != len(y) or len(ks) < 3:
        raise ValueError(f"an elbow needs at least 3 points and one value per k; got {len(ks)} ks, {len(y)} values")
    if log:
        y = np.log(np.clip(y, 1e-30, None))
    x1, x2, y1, y2 = ks[0], ks[-1], y[0], y[-1]
    distance = np.abs((x2 - x1) * (y1 - y) - (x1 - ks) * (y2 - y1)) / math.hypot(x2 - x1, y2 - y1)
    return int(ks[int(np.argmax(np.nan_to_num(distance)))])


def gap_k(ks: Iterable[int], gap: Iterable[float], gap_sd: Iterable[float]) -> int:
    """Tibshirani's choice: the smallest k with ``Gap(k) ≥ Gap(k') − s_{k'}``, ``k'`` the next k; else the last k.

    Examples
    --------
    ``Gap(1) = 0.1 < 0.5 - 0.05``, but ``Gap(2) = 0.5 ≥ 0.55 - 0.1``:

    >>> gap_k([1, 2, 3, 4], [0.1, 0.5, 0.55, 0.6], [0.05, 0.05, 0.1, 0.05])
    2
    """
    ks, gap, gap_sd = list(ks), np.asarray(list(gap), dtype=float), np.asarray(list(gap_sd), dtype=float)
    for j in range(len(ks) - 1):
        if gap[j] >= gap[j + 1] - gap_sd[j + 1]:
            return int(ks[j])
    return int(ks[-1])


def within_cluster_sum_of_squares(X, labels) -> float:
    """``Σ_r Σ_{i ∈ C_r} ||x_i − mean(C_r)||²`` for integer ``labels`` (any values, noise included as a cluster).

    Examples
    --------
    ``{0, 1}`` around 0.5 gives 0.25 + 0.25, ``{5, 7}`` around 6 gives 1 + 1:

    >>> within_cluster_sum_of_squares([[0.0], [1.0], [5.0], [7.0]], [0, 0, 1, 1])
    2.5
    """
    return float(np.sum(_residuals_from_centroids(X, labels) ** 2))


def column_within_sums_of_squares(X, labels) -> np.ndarray:
    """Each column's share of :func:`within_cluster_sum_of_squares`: ``Σ_r Σ_{i ∈ C_r} (x_ij − mean_j(C_r))²``.

    Examples
    --------
    The first column varies within the clusters, the second only between them:

    >>> column_within_sums_of_squares([[0.0, 0.0], [1.0, 0.0], [5.0, 3.0], [7.0, 3.0]], [0, 0, 1, 1]).tolist()
    [2.5, 0.0]
    """
    return (_residuals_from_centroids(X, labels) ** 2).sum(axis=0)


def _residuals_from_centroids(X, labels) -> np.ndarray:
    """Each row of ``X`` less the mean of its cluster in ``labels``, as float64."""
    values = np.asarray(X, dtype=np.float64)
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse)
    sums = np.zeros((len(counts), values.shape[1]))
    np.add.at(sums, inverse, values)
    centroids = sums / counts[:, None]
    return values - centroids[inverse]


def largest_dendrogram_gap(linkage_matrix, k_range: Iterable[int]) -> int:
    """The k in ``k_range`` whose partition survives the widest interval of merge heights.

    Parameters
    ----------
    linkage_matrix : array of shape (n - 1, 4)
        SciPy-format merge tree of ``n`` points.
    k_range : iterable of int
        Candidates, each ``2 .. n``.

    Returns
    -------
    int
        The k with the largest ``Z[n-k, 2] − Z[n-k-1, 2]``; ties go to the smallest k.

    Notes
    -----
    Row ``i`` of the matrix is merge ``i + 1``, so the partition into ``k``
    clusters exists from the height of merge ``n − k`` (row ``n − k − 1``)
    until the next merge (row ``n − k``). For ``k = n`` (every point alone)
    the interval starts at height 0. ``k = 1`` is refused: the root is never
    merged away, so its interval has no end. With inversions (centroid
    linkage) an interval can be negative; it then never wins over a positive one.

    Examples
    --------
    Merge heights 1, 2 and 7.8: two clusters live from 2 to 7.8, three from 1
    to 2, four from 0 to 1.

    >>> largest_dendrogram_gap([[0, 1, 1.0, 2], [2, 3, 2.0, 2], [4, 5, 7.8, 4]], range(2, 5))
    2
    """
    matrix = check_linkage(linkage_matrix)
    n = matrix.shape[0] + 1
    ks = sorted({_as_int_k(k) for k in k_range})
    if not ks:
        raise ValueError("k_range is empty; pass candidate numbers of clusters, e.g. range(2, 11)")
    if ks[0] < 2 or ks[-1] > n:
        raise ValueError(
            f"largest_dendrogram_gap takes k in 2 .. {n} for a tree over {n} points; got {ks[0]} .. {ks[-1]}"
        )
    heights = matrix[:, 2]
    widths = [heights[n - k] - (heights[n - k - 1] if k < n else 0.0) for k in ks]
    return ks[int(np.argmax(widths))]


def _check_k_range(k_range: Iterable[int], method: str, n_samples: int) -> list[int]:
    """Sorted distinct ks, or a ValueError naming the allowed range."""
    try:
        ks = sorted({_as_int_k(k) for k in k_range})
    except TypeError:
        raise ValueError(f"k_range must be an iterable of integers such as range(2, 11); got {k_range!r}") from None
    if not ks:
        raise ValueError("k_range is empty; pass candidate numbers of clusters, e.g. range(2, 11)")
    lowest = 2 if method == "silhouette" else 1
    if ks[0] < lowest:
        why = " (a silhouette needs at least 2 clusters)" if method == "silhouette" else ""
        raise ValueError(f"k_range for {method} must start at {lowest} or more{why}; got k = {ks[0]}")
    if ks[-1] > n_samples - 1:
        raise ValueError(f"k_range reaches k = {ks[-1]} but {n_samples} samples allow at most k = {n_samples - 1}")
    if method == "elbow" and len(ks) < 3:
        raise ValueError(f"the elbow needs at least 3 values of k; got {ks}")
    return ks


def _as_int_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"numbers of clusters must be integers; got {k!r}")
    return int(k)


def _principal_box(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the data in its principal-component coordinates (Tibshirani et al.'s reference (b))."""
    centred = values - values.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt.T
    return projected.min(axis=0), projected.max(axis=0)


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
