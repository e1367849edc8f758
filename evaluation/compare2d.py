"""The five clustering algorithms of the thesis on 2-D toy datasets (thesis Fig. 4.1).

Single, complete, centroid and Ward linkage (thesis section 4.1) and Density
Peaks (section 4.2) cluster the six synthetic datasets of scikit-learn's
"Comparing different clustering algorithms on toy datasets" example, 3,000
points each, with the number of clusters fixed per dataset: 2 for the noisy
circles and moons, 3 for the others.  Each panel shows the partition and the
wall time of the clustering, so the shapes every criterion can and cannot
find are seen side by side before the algorithms meet SEM features, where no
picture can be drawn.

What the thesis reads from the figure, and what :func:`compare_2d` measures
as adjusted Rand index against the generating labels:

* single linkage is the only linkage that finds the non-convex clusters
  (circles, moons): it merges along chains of near neighbours, whatever the
  cluster's shape;
* on noisy clusters of different spreads (``varied``) single linkage chains
  through the noise and leaves tiny clusters of outliers; Ward, biased
  toward compact, balanced clusters, does best;
* every algorithm finds separated globular clusters (``blobs``); where the
  clusters are close (``aniso``, stretched blobs) the four linkages fail,
  while Density Peaks, which follows the density down to the gaps between
  them, separates them (adjusted Rand index 0.99 at 3,000 points);
* on uniform data (``no_structure``) single linkage shows its "rich get
  richer" behaviour, one huge cluster and a few outliers, while Ward splits
  the square into balanced parts;
* Density Peaks fails on the circles: the inner ring holds as many points on
  half the circumference, so it is denser and its density maxima win the
  centres (both of them, at every seed tried); the outer ring is shared
  out between the two halves of the inner one rather than found as a
  cluster.  On the moons it depends on the noise draw.

:func:`compare_2d` is the core (arrays in, arrays out); :func:`figure_2d`
draws the thesis' figure with matplotlib's object API, and :func:`as_records`
gives a JSON-able summary for benchmark files.

References
----------
scikit-learn developers, "Comparing different clustering algorithms on toy
datasets", scikit-learn example gallery, ``plot_cluster_comparison.py``.

A. Rodriguez and A. Laio, "Clustering by fast search and find of density
peaks", Science 344, 1492-1496 (2014).

D. Müllner, "fastcluster: Fast hierarchical, agglomerative clustering
routines for R and Python", Journal of Statistical Software 53(9) (2013).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.datasets import make_blobs, make_circles, make_moons
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from semcurate.clustering.agglomerative import linkage
from semcurate.clustering.density_peaks import DensityPeaks
from semcurate.clustering.hierarchy import Cutter

if TYPE_CHECKING:  # matplotlib is imported by figure_2d only, so the comparison runs without it
    from matplotlib.figure import Figure

#: The datasets, in the row order of the thesis' figure (and of scikit-learn's example).
DATASETS = ("noisy_circles", "noisy_moons", "varied", "aniso", "blobs", "no_structure")
#: The algorithms, in the column order of the thesis' figure.
ALGORITHMS = ("single", "complete", "centroid", "ward", "density-peaks")
#: Number of clusters each algorithm is asked for, per dataset (thesis: 2 for the first two rows, 3 for the rest).
N_CLUSTERS = {"noisy_circles": 2, "noisy_moons": 2, "varied": 3, "aniso": 3, "blobs": 3, "no_structure": 3}
#: Seed of the blobs with varied variances and of the anisotropic blobs in scikit-learn's example; it places
#: the blob centres, so it stays fixed whatever ``random_state`` is.
BLOBS_170 = 170
#: Seed of the well-separated blobs (the example's ``random_state=8``): three distant centres.
BLOBS_8 = 8
#: Linear map that stretches the blobs of seed 170 into the anisotropic dataset.
ANISOTROPY = np.array([[0.6, -0.6], [-0.4, 0.8]])
#: Column titles of the figure.
TITLES = {
    "single": "Single",
    "complete": "Complete",
    "centroid": "Centroid",
    "ward": "Ward",
    "density-peaks": "Density Peaks",
}
#: Cluster colours of the figure (colour-blind safe, from scikit-learn's example); black is kept for the centres.
COLOURS = ("#377eb8", "#ff7f00", "#4daf4a", "#f781bf", "#a65628", "#984ea3", "#999999", "#e41a1c", "#dede00")


def make_datasets(n_samples: int = 3000, random_state: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray | None, int]]:
    """The six 2-D datasets of the thesis' Fig. 4.1, standardised, with their generating labels and ``k``.

    Parameters
    ----------
    n_samples : int, default=3000
        Points per dataset (the thesis uses 3,000).
    random_state : int, default=0
        Seed of the noise of the circles and moons and of the uniform square.
        The three blob datasets keep the seeds of scikit-learn's example (170
        and 8), which place their centres: their geometry is the point of
        those rows, so they do not change with ``random_state``.

    Returns
    -------
    dict
        ``{name: (X, y, k)}`` in the order of :data:`DATASETS`: ``X`` of shape
        ``(n_samples, 2)``, each column scaled to mean 0 and variance 1
        (``StandardScaler``, as in the example); ``y`` of shape
        ``(n_samples,)``, the generating labels, or None for
        ``no_structure``; ``k`` the number of clusters asked for.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 6:
        raise ValueError(f"n_samples must be an integer of at least 6 (3000 in the thesis); got {n_samples!r}")
    circles = make_circles(n_samples=n_samples, factor=0.5, noise=0.05, random_state=random_state)
    moons = make_moons(n_samples=n_samples, noise=0.05, random_state=random_state)
    varied = make_blobs(n_samples=n_samples, cluster_std=[1.0, 2.5, 0.5], random_state=BLOBS_170)
    X_aniso, y_aniso = make_blobs(n_samples=n_samples, random_state=BLOBS_170)
    blobs = make_blobs(n_samples=n_samples, random_state=BLOBS_8)
    no_structure = np.random.RandomState(random_state).rand(n_samples, 2), None
    raw = {
        "noisy_circles": circles,
        "noisy_moons": moons,
        "varied": varied,
        "aniso": (X_aniso @ ANISOTROPY, y_aniso),
        "blobs": blobs,
        "no_structure": no_structure,
    }
    return {name: (StandardScaler().fit_transform(X), y, N_CLUSTERS[name]) for name, (X, y) in raw.items()}


def cluster_2d(X: np.ndarray, algorithm: str, n_clusters: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels of ``X`` in ``n_clusters`` clusters by one of :data:`ALGORITHMS`, and the centres for Density Peaks.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    algorithm : str
        A linkage method (agglomerative tree cut by merge count into exactly
        ``n_clusters``) or ``"density-peaks"``.
    n_clusters : int

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        Cluster of every point, ``0 .. n_clusters - 1``.
    centers : ndarray of shape (n_clusters,) or None
        Indices of Density Peaks' centres (``centers_[j]`` is the centre of
        label ``j``); None for the linkages.
    """
    if algorithm == "density-peaks":
        model = DensityPeaks(n_clusters=n_clusters, n_jobs=-1).fit(X)
        return model.labels_, model.centers_
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    return Cutter(linkage(X, algorithm)).labels(n_clusters), None


def compare_2d(
    n_samples: int = 3000, random_state: int = 0, progress: Callable[[int], Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Run the five algorithms on the six datasets, timing each clustering and scoring it against the truth.

    Parameters
    ----------
    n_samples : int, default=3000
        Points per dataset.
    random_state : int, default=0
        Seed of :func:`make_datasets`.  All five algorithms are deterministic.
    progress : callable, optional
        Called with 1 after each of the 30 clusterings.

    Returns
    -------
    dict
        ``{dataset: {"X": X, "y": y, "k": k, "runs": {algorithm: run}}}`` in
        the order of :data:`DATASETS` and :data:`ALGORITHMS`, where ``run`` is
        a dict with

        - ``"seconds"``: wall time (``time.perf_counter``) of the clustering
          alone, from the points to the labels (linkage and cut; Density
          Peaks' fit), as the example times ``fit``;
        - ``"labels"``: ndarray of shape (n_samples,), ``0 .. k - 1``;
        - ``"ari"``: adjusted Rand index against ``y``, a float, or None
          where the dataset has no generating labels (``no_structure``);
        - ``"centers"``: Density Peaks' centre indices (``labels[centers[j]]
          == j``), None for the linkages.

    Notes
    -----
    Before timing, each algorithm runs once on a few points, untimed, so
    that imports and thread-pool start-up do not land on the first panel.
    Time is ``O(n^2)`` per linkage and about ``O(n log n)`` for Density
    Peaks; memory is ``O(n)`` except complete linkage, which needs the
    condensed distance matrix: 16 bytes per pair, 72 MB at 3,000 points.
    """
    datasets = make_datasets(n_samples, random_state)
    warm_up = next(iter(datasets.values()))[0][:30]
    for algorithm in ALGORITHMS:
        cluster_2d(warm_up, algorithm, 2)
    result: dict[str, dict[str, Any]] = {}
    for name, (X, y, k) in datasets.items():
        runs = {}
        for algorithm in ALGORITHMS:
            started = time.perf_counter()
            labels, centers = cluster_2d(X, algorithm, k)
            seconds = time.perf_counter() - started
            ari = None if y is None else float(adjusted_rand_score(y, labels))
            runs[algorithm] = {"seconds": seconds, "labels": labels, "ari": ari, "centers": centers}
            if progress is not None:
                progress(1)
        result[name] = {"X": X, "y": y, "k": k, "runs": runs}
    return result


def as_records(result: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One JSON-able row per dataset and algorithm: the scores and timings of :func:`compare_2d` without arrays.

    Returns
    -------
    list of dict
        Keys ``dataset``, ``algorithm``, ``n_samples``, ``k`` (int),
        ``seconds`` (float) and ``ari`` (float or None), in the figure's
        row-major order.
    """
    return [
        {
            "dataset": name,
            "algorithm": algorithm,
            "n_samples": len(entry["X"]),
            "k": int(entry["k"]),
            "seconds": float(run["seconds"]),
            "ari": None if run["ari"] is None else float(run["ari"]),
        }
        for name, entry in result.items()
        for algorithm, run in entry["runs"].items()
    ]


def figure_2d(result: dict[str, dict[str, Any]], *, panel_size: float = 2.2, marker_size: float = 3.0) -> Figure:
    """The thesis' Fig. 4.1: one row per dataset, one column per algorithm, points coloured by cluster.

    Parameters
    ----------
    result : dict
        Output of :func:`compare_2d`.
    panel_size : float, default=2.2
        Width and height of one panel, in inches.
    marker_size : float, default=3.0
        Scatter marker area, in points squared.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(result) × 5`` axes without ticks, the algorithm as column title,
        the dataset name on the left of each row, the clustering time in the
        lower right corner (``".12s"``, as in scikit-learn's example) and
        Density Peaks' centres in black.  Drawn with the object API, so it
        needs no display and leaves pyplot's state alone; save it with
        ``figure.savefig``.
    """
    from matplotlib.figure import Figure

    algorithms = list(next(iter(result.values()))["runs"])
    figure = Figure(figsize=(panel_size * len(algorithms), panel_size * len(result)), layout="constrained")
    axes = figure.subplots(len(result), len(algorithms), squeeze=False)
    colours = np.array(COLOURS)
    for row, (name, entry) in enumerate(result.items()):
        X = entry["X"]
        for column, algorithm in enumerate(algorithms):
            ax, run = axes[row, column], entry["runs"][algorithm]
            ax.scatter(X[:, 0], X[:, 1], s=marker_size, c=colours[run["labels"] % len(colours)], linewidths=0)
            if run["centers"] is not None:
                centres = X[run["centers"]]
                ax.scatter(centres[:, 0], centres[:, 1], s=12 * marker_size, c="black", linewidths=0)
            ax.set_xlim(-2.5, 2.5)
            ax.set_ylim(-2.5, 2.5)
            ax.set_xticks(())
            ax.set_yticks(())
            ax.text(
                0.99,
                0.01,
                format_seconds(run["seconds"]),
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                size=9,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},
            )
            if row == 0:
                ax.set_title(TITLES.get(algorithm, algorithm), size=10)
            if column == 0:
                ax.set_ylabel(name.replace("_", " "), size=9)
    return figure


def format_seconds(seconds: float) -> str:
    """Seconds as scikit-learn's example prints them: two decimals without the leading zero (``".12s"``).

    Examples
    --------
    >>> format_seconds(0.1234)
    '.12s'
    >>> format_seconds(12.5)
    '12.50s'
    """
    return f"{seconds:.2f}s".lstrip("0")
