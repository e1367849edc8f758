"""Intrinsic dimension of a feature set with the 2-NN estimator (thesis section 3.3).

:class:`TwoNN` follows thesis section 3.3.1 exactly: for every point the
distances ``r1``, ``r2`` to its first and second nearest neighbours,
``mu = r2 / r1``; the ``mu`` sorted ascending get the empirical CDF
``F(mu_(i)) = i / N`` (``i = 0 .. N-1``, as in the thesis' code); the dimension
is the slope of the least-squares line through the origin fitted to
``(log mu, -log(1 - F))`` over the first ``fraction`` of the sorted points
(Facco et al. keep 90 %: the largest ``mu`` are outliers that flatten the fit).

Around it:

* :func:`estimates_at` — the estimate for several kept fractions from one
  neighbour search (the three fits of Fig. 3.6);
* :func:`id_scan` — estimates of random subsamples of growing size
  (Figs. 3.5 and 3.7): noise and curvature make the estimate depend on the
  scale the points resolve, so the dimension to trust is a plateau;
* :func:`plateau_value` and :func:`suggest_code_size` — that plateau, and the
  plateau rounded up: the autoencoder's code size (table 3.3);
* :func:`plot_fit` and :func:`plot_scan` — Figs. 3.6 and 3.7 as
  :class:`matplotlib.figure.Figure` objects (no pyplot state; the caller saves).

References
----------
E. Facco, M. d'Errico, A. Rodriguez and A. Laio, "Estimating the intrinsic
dimension of datasets by a minimal neighborhood information", Sci. Rep. 7,
12140 (2017). https://doi.org/10.1038/s41598-017-11873-y
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree
from sklearn.base import BaseEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

if TYPE_CHECKING:  # matplotlib is imported by the plotting functions only, so the estimator loads without it
    from matplotlib.figure import Figure

#: The estimator needs a first and a second neighbour besides the point itself.
MIN_POINTS = 3
#: Up to this many columns the neighbour search uses a k-d tree, above it brute force (scikit-learn's own rule;
#: measured on 20,000 points: a 12-D cloud in 12 columns 0.7 s by tree and 1.1 s brute, in 16 columns 2.3 s and 1.5 s).
KD_TREE_MAX_COLUMNS = 15
#: Relative spread within which consecutive scan sizes form a plateau.
PLATEAU_TOLERANCE = 0.1


class TwoNN(BaseEstimator):
    """2-NN intrinsic dimension (Facco et al. 2017; thesis section 3.3.1).

    On a locally uniform ``d``-dimensional manifold the ratio ``mu = r2 / r1``
    of second to first nearest-neighbour distance is Pareto distributed,
    ``F(mu) = 1 - mu**(-d)``, so ``-log(1 - F(mu)) = d log(mu)``: the dimension
    is the slope of a line through the origin.

    Parameters
    ----------
    fraction : float, default=0.9
        Share of the sorted ratios, smallest first, used in the fit; in (0, 1].

    Attributes
    ----------
    dimension_ : float
        The estimated intrinsic dimension.
    mu_ : ndarray of shape (n_unique,)
        ``r2 / r1`` of every unique point, sorted ascending (dimensionless, ``>= 1``).
    log_mu_ : ndarray of shape (n_unique,)
        Abscissae of the fit, ``log(mu_)``.
    neg_log_survival_ : ndarray of shape (n_unique,)
        Ordinates of the fit, ``-log(1 - i / n_unique)`` for ``i = 0 .. n_unique - 1``.
    n_fitted_ : int
        The first ``n_fitted_ = floor(fraction * n_unique)`` points of
        ``log_mu_`` and ``neg_log_survival_`` were fitted.
    n_duplicates_ : int
        Rows of ``X`` dropped as exact copies of another row.
    n_features_in_ : int
        Number of columns seen during ``fit``.

    Notes
    -----
    The empirical CDF is the thesis' ``i / N`` for ``i = 0 .. N-1``.  Facco et
    al. and scikit-dimension use ``(i + 1) / N``, which moves every ordinate
    one rank up; with the 10 % discard the slopes differ by well under 0.5 %
    for ``N`` of a few thousand (the first ranks, where the shift matters
    most, have the smallest ``log mu`` and hardly weigh in the fit).  The
    thesis' choice keeps the last point finite, so ``fraction=1`` works.

    Duplicates: a point with an exact copy has ``r1 = 0`` and an infinite
    ``mu``, which the method cannot use.  When the search meets one, ``X`` is
    collapsed to its distinct rows (counted in ``n_duplicates_``) and searched
    again, so a feature set with repeated images gives the estimate of its
    distinct images; fewer than 3 distinct rows is a :class:`ValueError`.
    (scikit-dimension instead drops every point that has a copy.)

    Complexity: the neighbour search dominates; sorting is ``O(N log N)`` and
    the fit ``O(N)``.  Up to 15 columns a k-d tree (scipy's ``cKDTree``,
    all cores), ``O(N log N)`` on average as the thesis states, degrading when
    the intrinsic dimension passes about 10.  Above 15 columns, where trees
    degrade, a brute-force search (scikit-learn's blocked, multithreaded
    ``ArgKmin``), ``O(N² D)`` time through BLAS and ``O(N)`` extra memory,
    with the two distances per point recomputed exactly: 20,000 × 50 in about
    1.5 s on two cores against 9-40 s by tree.  Memory ``O(N D)`` for the
    validated copy of ``X``.

    References
    ----------
    E. Facco, M. d'Errico, A. Rodriguez and A. Laio, "Estimating the intrinsic
    dimension of datasets by a minimal neighborhood information", Sci. Rep. 7,
    12140 (2017).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> plane = rng.uniform(size=(2000, 2)) @ rng.normal(size=(2, 10))
    >>> round(TwoNN().fit(plane).dimension_)
    2
    """

    def __init__(self, *, fraction=0.9):
        self.fraction = fraction

    def fit(self, X, y=None) -> TwoNN:
        """Estimate the intrinsic dimension of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite points, at least 3 of them distinct.
        y : None
            Ignored; present for the scikit-learn API.

        Returns
        -------
        self : TwoNN
            The fitted estimator.

        Raises
        ------
        ValueError
            On NaN or infinite values, fewer than 3 points or 3 distinct
            points, ``fraction`` outside (0, 1] or keeping fewer than 2 ratios,
            or kept ratios all exactly 1 (a regular lattice: no slope).
        TypeError
            If ``fraction`` is not a real number.
        """
        _check_fraction(self.fraction)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
        mu, self.n_duplicates_ = sorted_ratios(X)
        self.mu_ = mu
        self.log_mu_ = np.log(mu)
        self.neg_log_survival_ = -np.log1p(-np.arange(mu.size) / mu.size)
        self.n_fitted_ = _n_kept(mu.size, self.fraction)
        self.dimension_ = _slope(self.log_mu_[: self.n_fitted_], self.neg_log_survival_[: self.n_fitted_])
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _check_fraction(fraction: object) -> None:
    """Raise unless ``fraction`` is a real number in (0, 1], the share of sorted ratios a fit keeps."""
    if isinstance(fraction, bool) or not isinstance(fraction, Real):
        raise TypeError(f"fraction must be a real number in (0, 1], got {fraction!r} ({type(fraction).__name__})")
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], the share of sorted ratios kept in the fit; got {fraction!r}")


def sorted_ratios(X: np.ndarray) -> tuple[np.ndarray, int]:
    """Ratios ``r2 / r1`` of every distinct row of ``X``, sorted ascending, and the number of duplicate rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite points (validated by the caller).

    Returns
    -------
    mu : ndarray of shape (n_unique,)
        Sorted ratios of second to first nearest-neighbour distance.
    n_duplicates : int
        ``n_samples - n_unique``; 0 unless some row has an exact copy.

    Raises
    ------
    ValueError
        If fewer than 3 rows, or fewer than 3 distinct rows, are given.
    """
    n_samples = X.shape[0]
    if n_samples < MIN_POINTS:
        raise ValueError(f"need at least {MIN_POINTS} points, got {n_samples} sample(s)")
    r1, r2 = _two_nearest(X)
    n_duplicates = 0
    if np.any(r1 == 0.0):
        # `+ 0.0` turns -0.0 into 0.0, so rows at distance zero are also equal bytes for np.unique.
        distinct = np.unique(X + 0.0, axis=0)
        n_duplicates = n_samples - distinct.shape[0]
        if distinct.shape[0] < MIN_POINTS:
            raise ValueError(
                f"all points identical but {distinct.shape[0] - 1}: {distinct.shape[0]} distinct among "
                f"{n_samples}; the 2-NN estimator needs at least {MIN_POINTS} distinct points"
            )
        r1, r2 = _two_nearest(distinct)
    return np.sort(r2 / r1), n_duplicates


def _two_nearest(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances of every row to its first and second nearest other rows, each of shape (n_samples,)."""
    if X.shape[1] <= KD_TREE_MAX_COLUMNS:
        # Without duplicates each point is its own unique nearest (distance 0), so columns 1 and 2 are
        # r1 and r2; with duplicates column 1 is 0 either way, which is all the caller checks.
        distances, _ = cKDTree(X).query(X, k=3, workers=-1)
        return distances[:, 1], distances[:, 2]
    # kneighbors() without X excludes each point itself.  Its distances come from the expansion
    # |x|² - 2 x·y + |y|², which loses digits for close pairs (centring helps) and is not exactly zero
    # for duplicates, so recompute the two distances exactly from the neighbour indices.
    centred = X - X.mean(axis=0)
    indices = (
        NearestNeighbors(n_neighbors=2, algorithm="brute", n_jobs=-1).fit(centred).kneighbors(return_distance=False)
    )
    offsets = X[indices] - X[:, None, :]
    distances = np.sort(np.sqrt(np.einsum("ijk,ijk->ij", offsets, offsets)), axis=1)
    return distances[:, 0], distances[:, 1]


def dimension_from_ratios(sorted_mu: np.ndarray, fraction: float) -> float:
    """The 2-NN estimate from ascending ratios ``mu = r2 / r1``: slope through the origin over the first ``fraction``.

    For callers that already hold each point's two nearest distances (Density
    Peaks' kNN search), so the neighbours need not be searched again.
    """
    n_kept = _n_kept(sorted_mu.size, fraction)
    return _slope(np.log(sorted_mu[:n_kept]), -np.log1p(-np.arange(n_kept) / sorted_mu.size))


def _n_kept(n_points: int, fraction: float) -> int:
    """``floor(n_points * fraction)``; the 1e-9 absorbs binary rounding (0.29 * 100 keeps 29, not 28)."""
    n_kept = math.floor(n_points * fraction + 1e-9)
    if n_kept < 2:
        raise ValueError(
            f"fraction={fraction} keeps {n_kept} of {n_points} ratios; the fit needs at least 2: "
            "raise fraction or give more points"
        )
    return n_kept


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y = slope * x`` (no intercept), as ``LinearRegression(fit_intercept=False)``."""
    sum_xx = float(x @ x)
    if sum_xx == 0.0:
        raise ValueError(
            "every fitted ratio r2/r1 is exactly 1 (each point's two nearest neighbours are equidistant, "
            "as on a regular lattice), so the 2-NN slope is undefined: raise fraction or add points"
        )
    return float(x @ y) / sum_xx


def estimates_at(X, fractions=(1.0, 0.9, 0.7, 0.5)) -> dict[float, float]:
    """The 2-NN estimate of ``X`` for several kept fractions, from one neighbour search.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Points, as for :meth:`TwoNN.fit`.
    fractions : sequence of float, default=(1.0, 0.9, 0.7, 0.5)
        Kept shares of the sorted ratios, each in (0, 1].

    Returns
    -------
    dict of float to float
        ``TwoNN(fraction=f).fit(X).dimension_`` keyed by ``f``.

    Notes
    -----
    One neighbour search, then ``O(N)`` per fraction.
    """
    fitted = TwoNN(fraction=1.0).fit(X)
    estimates = {}
    for fraction in fractions:
        _check_fraction(fraction)
        n_kept = _n_kept(fitted.mu_.size, fraction)
        estimates[fraction] = _slope(fitted.log_mu_[:n_kept], fitted.neg_log_survival_[:n_kept])
    return estimates


@dataclass(frozen=True)
class IdScan:
    """2-NN estimates of random subsamples by size (Fig. 3.7).

    Attributes
    ----------
    sizes : ndarray of shape (n_sizes,)
        Subsample sizes (points), strictly increasing.
    estimates : ndarray of shape (n_sizes, repeats)
        ``estimates[i]`` holds the repeats at ``sizes[i]``.
    fraction : float
        Kept share of the ratios in every fit.
    """

    sizes: np.ndarray
    estimates: np.ndarray
    fraction: float = 0.9

    @property
    def means(self) -> np.ndarray:
        """Mean estimate per size, shape (n_sizes,)."""
        return self.estimates.mean(axis=1)

    @property
    def stds(self) -> np.ndarray:
        """Standard deviation (``ddof=0``) of the estimates per size, shape (n_sizes,)."""
        return self.estimates.std(axis=1)


def id_scan(X, sizes=None, repeats=5, fraction=0.9, random_state=None) -> IdScan:
    """2-NN estimates of ``repeats`` random subsamples (without replacement) per size (Figs. 3.5, 3.7).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Points, as for :meth:`TwoNN.fit`.
    sizes : sequence of int, optional
        Subsample sizes, each in [3, n_samples]; sorted and deduplicated.
        Default: a geometric ladder of 10 sizes from ``min(50, n_samples)``
        up to ``n_samples``.
    repeats : int, default=5
        Subsamples per size.  At ``n_samples`` every subsample is ``X``
        itself, so it is fitted once and the estimate repeated.
    fraction : float, default=0.9
        Kept share of the ratios, see :class:`TwoNN`.
    random_state : int, numpy.random.RandomState or None, default=None
        Seeds the subsampling.

    Returns
    -------
    IdScan
        Sizes and the estimates per size and repeat.

    Notes
    -----
    Cost: ``repeats`` fits per size, dominated by the largest sizes.
    """
    X = validate_data(TwoNN(), X, dtype=[np.float64, np.float32], ensure_min_samples=1)
    n_samples = X.shape[0]
    if n_samples < MIN_POINTS:
        raise ValueError(f"need at least {MIN_POINTS} points, got {n_samples} sample(s)")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats!r}")
    if sizes is None:
        sizes = np.geomspace(min(50, n_samples), n_samples, num=10)
    sizes = np.unique(np.rint(np.asarray(sizes, dtype=float)).astype(int))
    if sizes[0] < MIN_POINTS or sizes[-1] > n_samples:
        raise ValueError(f"sizes must lie in [{MIN_POINTS}, {n_samples}], got {sizes[0]} .. {sizes[-1]}")
    rng = check_random_state(random_state)
    estimator = TwoNN(fraction=fraction)
    estimates = np.empty((sizes.size, repeats))
    for row, size in enumerate(sizes):
        if size == n_samples:
            estimates[row] = estimator.fit(X).dimension_
            continue
        for column in range(repeats):
            estimates[row, column] = estimator.fit(X[rng.choice(n_samples, size=size, replace=False)]).dimension_
    return IdScan(sizes=sizes, estimates=estimates, fraction=fraction)


def _plateau(means: np.ndarray, rtol: float) -> slice:
    """The longest run of consecutive means all within ``rtol`` of the run's median; ties go to larger sizes."""
    best = slice(means.size - 1, means.size)
    for start in range(means.size):
        for stop in range(start + 2, means.size + 1):
            run = means[start:stop]
            median = np.median(run)
            if np.any(np.abs(run - median) > rtol * abs(median)):
                break
            if stop - start >= best.stop - best.start:
                best = slice(start, stop)
    return best


def plateau_value(scan: IdScan, *, rtol: float = PLATEAU_TOLERANCE) -> float:
    """The dimension at which an :class:`IdScan` levels off.

    Parameters
    ----------
    scan : IdScan
        Output of :func:`id_scan`.
    rtol : float, default=0.1
        Relative tolerance of a plateau.

    Returns
    -------
    float
        The mean of the mean estimates over the plateau: the longest run of
        consecutive sizes whose means all lie within ``rtol`` of the run's
        median, the run at larger sizes winning a tie.  The longest run, not
        simply the largest sizes, because noise makes the estimate climb again
        once a sample is dense enough to resolve it (Figs. 3.4 and 3.5).
        Without a plateau (no two consecutive sizes agree) the largest mean,
        an upper bound as used in thesis section 3.3.2.

    Examples
    --------
    Means 3.0, 4.1, 4.3, 4.2: the last three lie within 10 % of their median
    4.2, the first does not, so the plateau is their mean:

    >>> scan = IdScan(sizes=np.array([50, 100, 200, 400]), estimates=np.array([[3.0], [4.1], [4.3], [4.2]]))
    >>> round(plateau_value(scan), 6)
    4.2
    >>> suggest_code_size(scan)
    5
    """
    run = _plateau(scan.means, rtol)
    if run.stop - run.start < 2:
        return float(scan.means.max())
    return float(scan.means[run].mean())


def suggest_code_size(scan: IdScan, *, rtol: float = PLATEAU_TOLERANCE) -> int:
    """The autoencoder's code size: :func:`plateau_value` rounded up (at least 1).

    Parameters
    ----------
    scan : IdScan
        Output of :func:`id_scan`.
    rtol : float, default=0.1
        See :func:`plateau_value`.

    Returns
    -------
    int
        ``ceil(plateau_value(scan))``: the code should be at least as wide as
        the intrinsic dimension (thesis section 3.3).
    """
    return max(1, math.ceil(plateau_value(scan, rtol=rtol)))


def plot_fit(estimator: TwoNN) -> Figure:
    """Fig. 3.6: ``-log(1 - F)`` against ``log mu``, the fitted points highlighted, the fitted line.

    Parameters
    ----------
    estimator : TwoNN
        A fitted estimator.

    Returns
    -------
    matplotlib.figure.Figure
        One axes: discarded points in grey, fitted points in blue, the line
        through the origin with the slope (the dimension) in the legend.
    """
    from matplotlib.figure import Figure

    check_is_fitted(estimator, "dimension_")
    kept = estimator.n_fitted_
    figure = Figure(figsize=(5.5, 4), layout="constrained")
    axis = figure.subplots()
    axis.scatter(estimator.log_mu_[kept:], estimator.neg_log_survival_[kept:], s=4, color="tab:gray", label="discarded")
    axis.scatter(
        estimator.log_mu_[:kept],
        estimator.neg_log_survival_[:kept],
        s=4,
        color="tab:blue",
        label=f"fitted (first {estimator.fraction:.0%})",
    )
    line = np.array([0.0, estimator.log_mu_[kept - 1]])
    axis.plot(line, estimator.dimension_ * line, color="tab:red", label=f"slope {estimator.dimension_:.2f}")
    axis.set_xlabel("log(μ)")
    axis.set_ylabel("−log(1 − F(μ))")
    axis.set_title(f"2-NN fit, {estimator.mu_.size} distinct points")
    axis.legend(loc="upper left")
    return figure


def plot_scan(scan: IdScan, *, rtol: float = PLATEAU_TOLERANCE) -> Figure:
    """Fig. 3.7: mean ± standard deviation of the estimate against sample size, plateau marked.

    Parameters
    ----------
    scan : IdScan
        Output of :func:`id_scan`.
    rtol : float, default=0.1
        See :func:`plateau_value`.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with a logarithmic size axis, error bars of one standard
        deviation, and a dashed line at the plateau value across the
        plateau's sizes (all sizes when there is none), labelled with the
        suggested code size.
    """
    from matplotlib.figure import Figure

    run = _plateau(scan.means, rtol)
    if run.stop - run.start < 2:
        run = slice(0, scan.sizes.size)
    value = plateau_value(scan, rtol=rtol)
    figure = Figure(figsize=(5.5, 4), layout="constrained")
    axis = figure.subplots()
    axis.errorbar(
        scan.sizes, scan.means, yerr=scan.stds, marker="o", capsize=3, label=f"mean ± std ({scan.fraction:.0%} fit)"
    )
    axis.hlines(
        value,
        scan.sizes[run][0],
        scan.sizes[run][-1],
        colors="tab:red",
        linestyles="dashed",
        label=f"plateau {value:.2f} → code size {suggest_code_size(scan, rtol=rtol)}",
    )
    axis.set_xscale("log")
    axis.set_xlabel("sample size (points)")
    axis.set_ylabel("2-NN intrinsic dimension")
    axis.legend()
    return figure
