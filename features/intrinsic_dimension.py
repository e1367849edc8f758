"""The 2-NN intrinsic-dimension estimator and the sample-size scan (thesis section 3.3).

:class:`TwoNN` follows section 3.3.1 exactly: for every point the distances
``r1``, ``r2`` to its first and second nearest neighbours, ``mu = r2 / r1``;
the ``mu`` sorted ascending get the empirical CDF ``F(mu_(i)) = i / N``
(``i = 0 .. N-1``, as in the thesis' code); the dimension is the slope of the
least-squares line through the origin fitted to ``(log mu, -log(1 - F))``
over the first ``fraction`` of the sorted points (Facco et al. suggest 90 %:
the largest ``mu`` are outliers that dominate the fit).

:func:`id_scan` repeats the estimate on random subsamples of growing size
(Fig. 3.7): noise and curvature make small samples look low-dimensional, and
the estimate settles on a plateau; :func:`suggest_code_size` rounds that
plateau up to give the autoencoder's code size.

References: E. Facco, M. d'Errico, A. Rodriguez, A. Laio, "Estimating the
intrinsic dimension of datasets by a minimal neighborhood information",
Scientific Reports 7, 12140 (2017).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from scipy.spatial import cKDTree
from sklearn.base import BaseEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import validate_data

#: Up to this many columns the neighbour search uses a k-d tree, above it brute force.
KD_TREE_MAX_DIMENSION = 10
#: Relative spread under which the largest scan sizes count as a plateau.
PLATEAU_TOLERANCE = 0.05


def _two_nearest(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances of every row to its first and second nearest other rows.

    A k-d tree in low dimension; above :data:`KD_TREE_MAX_DIMENSION` a
    chunked brute-force search (BLAS matrix products), which the tree cannot
    beat there: 20,000 × 50 takes about 1 s against 8-14 s with a tree.
    """
    if X.shape[1] <= KD_TREE_MAX_DIMENSION:
        distances, _ = cKDTree(X).query(X, k=3, workers=-1)
        return distances[:, 1], distances[:, 2]
    distances, _ = NearestNeighbors(n_neighbors=2, algorithm="brute", n_jobs=-1).fit(X).kneighbors()
    return distances[:, 0], distances[:, 1]


class TwoNN(BaseEstimator):
    """2-NN intrinsic dimension (Facco et al. 2017; thesis §3.3.1).

    Parameters
    ----------
    fraction : float, default 0.9
        Share of the points, smallest ``mu`` first, used in the linear fit.

    Attributes
    ----------
    dimension_ : float
        The estimated intrinsic dimension.
    mu_ : ndarray of shape (n_unique,)
        ``r2 / r1`` of every unique point, sorted ascending.
    log_mu_, neg_log_survival_ : ndarray of shape (n_unique,)
        The points of the fit, ``log mu`` and ``-log(1 - F)``; the first
        ``n_fitted_`` of them were used.
    n_fitted_ : int
    n_duplicates_ : int
        Exact duplicate rows removed before the neighbour search.

    Notes
    -----
    Duplicates: a point with an exact copy has ``r1 = 0`` and an infinite
    ``mu``, which the method cannot use; exact duplicate rows are therefore
    collapsed to one before the search (counted in ``n_duplicates_``), so a
    feature set with repeated images gives the estimate of its distinct images.

    Complexity: the neighbour search dominates.  Up to 10 columns a k-d tree,
    ``O(N log N)`` on average; above, where trees degrade, a brute-force
    search in chunks, ``O(N² d)`` time through BLAS and ``O(N)`` memory
    (20,000 × 50 in about a second on two cores).  The fit itself is linear.
    """

    def __init__(self, *, fraction: float = 0.9):
        self.fraction = fraction

    def fit(self, X, y=None) -> TwoNN:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction!r}")
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=1)
        unique = np.unique(X, axis=0)
        self.n_duplicates_ = int(X.shape[0] - unique.shape[0])
        if unique.shape[0] < 3:
            raise ValueError(
                f"need at least 3 distinct points, got {unique.shape[0]}"
                + (" (all points identical)" if unique.shape[0] == 1 and X.shape[0] > 1 else "")
            )
        r1, r2 = _two_nearest(unique)
        mu = np.sort(r2 / r1)
        n_points = mu.size
        cdf = np.arange(n_points) / n_points
        self.mu_ = mu
        self.log_mu_ = np.log(mu)
        self.neg_log_survival_ = -np.log(1.0 - cdf)
        self.n_fitted_ = max(2, int(math.floor(self.fraction * n_points)))
        x, y_fit = self.log_mu_[: self.n_fitted_], self.neg_log_survival_[: self.n_fitted_]
        self.dimension_ = float(np.dot(x, y_fit) / np.dot(x, x))
        return self


def estimates_at(X, fractions=(1.0, 0.9, 0.7, 0.5)) -> dict[float, float]:
    """The 2-NN estimate for each fitted fraction (one neighbour search per fraction)."""
    return {fraction: TwoNN(fraction=fraction).fit(X).dimension_ for fraction in fractions}


@dataclass(frozen=True)
class IdScan:
    """Estimates of random subsamples by size (Fig. 3.7): ``estimates[i]`` holds the repeats of ``sizes[i]``."""

    sizes: np.ndarray
    estimates: np.ndarray

    @property
    def means(self) -> np.ndarray:
        return self.estimates.mean(axis=1)

    @property
    def stds(self) -> np.ndarray:
        return self.estimates.std(axis=1)


def id_scan(X, sizes=None, repeats: int = 5, fraction: float = 0.9, random_state=None) -> IdScan:
    """2-NN estimates of ``repeats`` random subsamples (without replacement) per size.

    ``sizes`` defaults to a geometric ladder of about 8 sizes from
    ``min(50, N)`` up to ``N``.
    """
    X = np.asarray(X, dtype=np.float64)
    n_points = X.shape[0]
    if n_points < 3:
        raise ValueError(f"need at least 3 points, got {n_points}")
    if sizes is None:
        sizes = np.unique(np.geomspace(min(50, n_points), n_points, num=8).astype(int))
    sizes = np.asarray(sizes, dtype=int)
    rng = np.random.default_rng(random_state)
    estimates = np.array([
        [TwoNN(fraction=fraction).fit(X[rng.choice(n_points, size=size, replace=False)]).dimension_
         for _ in range(repeats)]
        for size in sizes
    ])
    return IdScan(sizes, estimates)


def suggest_code_size(scan: IdScan) -> int:
    """The plateau of the scan rounded up.

    The plateau is the mean estimate over the largest sizes whose means stay
    within :data:`PLATEAU_TOLERANCE` (relative) of the largest size's mean
    (at least the largest size alone).
    """
    means = scan.means
    last = means[-1]
    start = len(means) - 1
    while start > 0 and abs(means[start - 1] - last) <= PLATEAU_TOLERANCE * abs(last):
        start -= 1
    return int(math.ceil(means[start:].mean()))


def plot_fit(estimator: TwoNN) -> Figure:
    """Fig. 3.6: ``-log(1 - F)`` against ``log mu``, the fitted points highlighted, the fitted line."""
    figure = Figure(figsize=(5.5, 4), layout="constrained")
    axis = figure.subplots()
    kept = estimator.n_fitted_
    axis.scatter(estimator.log_mu_[kept:], estimator.neg_log_survival_[kept:], s=4, color="tab:gray",
                 label="discarded")
    axis.scatter(estimator.log_mu_[:kept], estimator.neg_log_survival_[:kept], s=4, color="tab:blue",
                 label=f"fitted ({estimator.fraction:.0%})")
    line = np.linspace(0, estimator.log_mu_[:kept].max(), 50)
    axis.plot(line, estimator.dimension_ * line, color="tab:red", label=f"slope {estimator.dimension_:.2f}")
    axis.set_xlabel("log(μ)")
    axis.set_ylabel("−log(1 − F(μ))")
    axis.legend()
    return figure


def plot_scan(scan: IdScan) -> Figure:
    """Fig. 3.7: mean ± standard deviation of the estimate against sample size, plateau marked."""
    figure = Figure(figsize=(5.5, 4), layout="constrained")
    axis = figure.subplots()
    axis.errorbar(scan.sizes, scan.means, yerr=scan.stds, marker="o", capsize=3)
    axis.axhline(suggest_code_size(scan), color="tab:red", linestyle="--", label="suggested code size")
    axis.set_xscale("log")
    axis.set_xlabel("sample size")
    axis.set_ylabel("2-NN intrinsic dimension")
    axis.legend()
    return figure
