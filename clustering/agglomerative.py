"""Agglomerative clustering (thesis §4.1) at repository scale, in SciPy's linkage format.

``linkage(X, method)`` returns the ``(n - 1) × 4`` matrix that
``scipy.cluster.hierarchy.linkage(X, method)`` would return, so SciPy's
``fcluster``, ``dendrogram`` and :class:`~semcurate.clustering.hierarchy.Cutter`
work on it. The work is done by fastcluster (Müllner 2013), which matches
SciPy's merge heights and partitions but needs far less memory:

* ``single``, ``centroid`` and ``ward`` use ``fastcluster.linkage_vector``,
  which works from the observations directly: ``O(n d)`` memory. Ward on the
  thesis' 1u-2u subset (52,682 points × 18 dimensions) takes about a minute and
  under 100 MB, where SciPy would need the 11 GB condensed distance matrix
  (plus its working copy).
* ``complete`` and ``average`` have no memory-lean algorithm: they need every
  pairwise distance. SciPy's ``pdist`` writes the condensed float64 distance
  matrix into one array, which fastcluster then uses as its working memory (no
  second copy): ``8 · n(n-1)/2`` bytes plus ``O(n)``, 10.3 GiB for the 1u-2u
  subset. That peak is estimated before
  starting and the run is refused with :class:`LinkageMemoryError` when it
  would not fit, rather than be killed by the operating system half way.

All methods use Euclidean distances between rows of ``X``.
"""

from __future__ import annotations

import numpy as np

from semcurate.clustering.methods import LINKAGE_METHODS

#: Methods that run from the observations in O(n d) memory.
VECTOR_METHODS = ("single", "centroid", "ward")
#: Methods that need the condensed distance matrix, O(n²) memory.
MATRIX_METHODS = ("complete", "average")

#: Share of the available memory a matrix linkage may plan to use; the rest is left for the process and the OS.
MEMORY_SHARE = 0.8
#: fastcluster's own working memory per point for a matrix linkage (bytes), an upper bound: its merge list (24),
#: cluster sizes (8), nearest-neighbour chain (8), active-node list (16), union-find (16), sort buffer (24) and the
#: returned tree (32), with 8-byte indices (``int_fast32_t`` on 64-bit Linux).
FASTCLUSTER_BYTES_PER_POINT = 128


class LinkageMemoryError(MemoryError):
    """A distance-matrix linkage that would need more memory than this machine can give it."""


def check_observations(X, min_samples: int = 2) -> np.ndarray:
    """``X`` as a finite float64 ``(n, d)`` array with at least ``min_samples`` rows, or one clear ``ValueError``."""
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"features must be a 2-D array (points × dimensions); got shape {values.shape}")
    if values.shape[0] < min_samples:
        raise ValueError(f"clustering needs at least {min_samples} points; got {values.shape[0]}")
    if values.shape[1] == 0:
        raise ValueError("features have no columns")
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} of {len(values)} feature rows contain NaN or infinity "
            f"(first at row {int(np.argmax(bad))}); re-extract or drop those images"
        )
    return values


def matrix_bytes(n_points: int, n_features: int) -> int:
    """Peak bytes of a distance-matrix linkage of ``n_points × n_features`` observations.

    The condensed float64 matrix (``pdist`` writes it, fastcluster then works
    in it), the float64 observations, and fastcluster's ``O(n)`` working
    memory.
    """
    condensed = 8 * (n_points * (n_points - 1) // 2)
    return condensed + 8 * n_points * n_features + FASTCLUSTER_BYTES_PER_POINT * n_points


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable`` on Linux, physical pages elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def linkage(X, method: str = "ward", *, memory_limit: int | None = None) -> np.ndarray:
    """Agglomerative merge tree of the rows of ``X`` in SciPy's linkage-matrix format.

    Parameters
    ----------
    X : array-like of shape (n_points, n_features)
        Observations; Euclidean distances between rows.
    method : {"single", "complete", "average", "centroid", "ward"}
        Linkage criterion (thesis §4.1).
    memory_limit : int, optional
        Bytes a distance-matrix method (complete, average) may use. Default:
        ``MEMORY_SHARE`` of the memory available now.

    Returns
    -------
    ndarray of shape (n_points - 1, 4)
        Row ``i`` merges nodes ``Z[i, 0]`` and ``Z[i, 1]`` at height ``Z[i, 2]``
        into node ``n + i`` of ``Z[i, 3]`` points. Centroid heights may invert
        (a merge lower than the one before); cut such trees by merge count
        (:class:`~semcurate.clustering.hierarchy.Cutter`), not by height.

    Raises
    ------
    ValueError
        Unknown method, fewer than 2 points, NaN or infinite features.
    LinkageMemoryError
        ``complete``/``average`` on more points than the memory limit allows;
        the message names the need, the limit and the memory-lean methods.

    Notes
    -----
    Time is ``O(n²)`` for every method (``O(n² d)`` for the vector methods);
    memory is ``O(n d)`` for single, centroid and ward, and for complete and
    average ``8 · n(n-1)/2`` bytes (the condensed distance matrix, worked in
    by fastcluster) plus ``O(n d)``, as :func:`matrix_bytes` counts: 10.4 GiB
    for 52,682 × 18.

    Examples
    --------
    Four points on a line: ``{0, 1}`` merge first (distance 1), then
    ``{5, 7}`` (distance 2), then the two pairs.  Single linkage joins the
    pairs at their closest points (5 - 1 = 4); Ward at
    ``sqrt(2 · 2 · 2 / 4) × (6 - 0.5) = 7.7782``, as SciPy computes it:

    >>> X = [[0.0], [1.0], [5.0], [7.0]]
    >>> linkage(X, "single").tolist()
    [[0.0, 1.0, 1.0, 2.0], [2.0, 3.0, 2.0, 2.0], [4.0, 5.0, 4.0, 4.0]]
    >>> linkage(X, "ward").round(4).tolist()
    [[0.0, 1.0, 1.0, 2.0], [2.0, 3.0, 2.0, 2.0], [4.0, 5.0, 7.7782, 4.0]]
    """
    import fastcluster

    if method not in LINKAGE_METHODS:
        raise ValueError(f"unknown linkage method {method!r}; choose one of {', '.join(LINKAGE_METHODS)}")
    values = check_observations(X)
    if method in VECTOR_METHODS:
        return fastcluster.linkage_vector(values, method=method, metric="euclidean")
    needed = matrix_bytes(*values.shape)
    limit = int(MEMORY_SHARE * available_memory()) if memory_limit is None else int(memory_limit)
    if needed > limit:
        raise LinkageMemoryError(
            f"{method} linkage of {len(values):,} points needs the full distance matrix, {needed / 2**30:.1f} GiB, "
            f"over the limit of {limit / 2**30:.1f} GiB; use a subset, or ward, centroid or single linkage "
            "(memory-lean)"
        )
    from scipy.spatial.distance import pdist

    return linkage_in_place(pdist(values), len(values), method)


def linkage_in_place(condensed: np.ndarray, n_points: int, method: str) -> np.ndarray:
    """fastcluster's linkage of a condensed distance matrix, using ``condensed`` as its working memory.

    ``fastcluster.linkage(D, method, preserve_input=False)`` is documented to
    work in ``D``, but its wrapper (fastcluster 1.3.0) first calls
    ``numpy.array(D, subok=True)``, which copies under NumPy 2 (the default
    became ``copy=True``): the matrix would be held twice. This calls the
    extension function that wrapper calls, with what the wrapper would pass.

    Parameters
    ----------
    condensed : ndarray of shape (n_points * (n_points - 1) // 2,)
        C-contiguous, writable float64 distances (as
        ``scipy.spatial.distance.pdist`` returns); overwritten with unspecified
        values.
    n_points : int
        Number of observations.
    method : {"single", "complete", "average", "centroid", "ward"}
        Linkage criterion.

    Returns
    -------
    ndarray of shape (n_points - 1, 4)
        The tree in SciPy's linkage format.
    """
    from fastcluster import linkage_wrap, mthidx

    if condensed.dtype != np.float64 or not condensed.flags.c_contiguous or not condensed.flags.writeable:
        raise ValueError("the condensed matrix must be a writable, C-contiguous float64 array")
    if condensed.shape != (n_points * (n_points - 1) // 2,):
        raise ValueError(f"a condensed matrix of {n_points} points has {n_points * (n_points - 1) // 2} entries")
    tree = np.empty((n_points - 1, 4))
    linkage_wrap(n_points, condensed, tree, mthidx[method])
    return tree
