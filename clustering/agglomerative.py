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
  pairwise distance, held in one condensed array and worked in without a
  second copy. Average linkage averages distances, so it keeps them in float64
  and runs in fastcluster: ``8 · n(n-1)/2`` bytes, 10.3 GiB for the 1u-2u
  subset. Complete linkage only ever takes the larger of two distances, which
  never rounds, so it keeps them in float32 (:func:`complete_linkage_in_place`,
  a nearest-neighbour chain in NumPy): the exact complete linkage of the
  distances rounded to 7 significant digits, in ``4 · n(n-1)/2`` bytes (5.2 GiB
  for the 1u-2u subset, where fastcluster, double precision only, needs twice
  that). Either peak is estimated before starting (:func:`matrix_bytes`) and
  the run is refused with :class:`LinkageMemoryError` when it would not fit,
  rather than be killed by the operating system half way.

All methods use Euclidean distances between rows of ``X``.
"""

from __future__ import annotations

import numpy as np

from semcurate.clustering.methods import LINKAGE_METHODS

#: Methods that run from the observations in O(n d) memory.
VECTOR_METHODS = ("single", "centroid", "ward")
#: Methods that need the condensed distance matrix, O(n²) memory.
MATRIX_METHODS = ("complete", "average")

#: Bytes per stored distance of each matrix method: complete linkage only takes maxima, which float32 holds exactly.
DISTANCE_BYTES = {"complete": 4, "average": 8}
#: Share of the available memory a matrix linkage may plan to use; the rest is left for the process and the OS.
MEMORY_SHARE = 0.8
#: fastcluster's own working memory per point for a matrix linkage (bytes), an upper bound: its merge list (24),
#: cluster sizes (8), nearest-neighbour chain (8), active-node list (16), union-find (16), sort buffer (24) and the
#: returned tree (32), with 8-byte indices (``int_fast32_t`` on 64-bit Linux).
FASTCLUSTER_BYTES_PER_POINT = 128
#: Working memory per point of :func:`complete_linkage_in_place` (bytes), an upper bound: row offsets, active
#: clusters, sizes and union-find parents (8 each), merges (24) and the returned tree (32), and the temporaries of
#: one step: two cached rows with their cluster indices (24 each), a gathered row's offsets (16) and the merged row
#: with its targets and masks (30).
NN_CHAIN_BYTES_PER_POINT = 192
#: Float64 distances computed at once while the float32 matrix is filled (bytes, at least one row).
DISTANCE_BLOCK_BYTES = 16 * 2**20


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


def matrix_bytes(n_points: int, n_features: int, method: str = "average") -> int:
    """Peak bytes of a distance-matrix linkage of ``n_points × n_features`` observations.

    The condensed matrix (float32 for ``complete``, float64 for ``average``,
    :data:`DISTANCE_BYTES`), the float64 observations, and the linkage's
    ``O(n)`` working memory; for ``complete`` also the block of float64
    distances the matrix is filled from (:func:`condensed_distances`).

    Examples
    --------
    The 1u-2u subset: complete linkage needs half of what average needs.

    >>> round(matrix_bytes(52_682, 18, "complete") / 2**30, 2), round(matrix_bytes(52_682, 18, "average") / 2**30, 2)
    (5.2, 10.35)
    """
    if method not in DISTANCE_BYTES:
        raise ValueError(f"{method!r} is not a distance-matrix method; choose one of {', '.join(MATRIX_METHODS)}")
    condensed = DISTANCE_BYTES[method] * (n_points * (n_points - 1) // 2)
    observations = 8 * n_points * n_features
    if method == "average":
        return condensed + observations + FASTCLUSTER_BYTES_PER_POINT * n_points
    block = 8 * block_rows(n_points) * n_points
    return condensed + observations + block + NN_CHAIN_BYTES_PER_POINT * n_points


def block_rows(n_points: int) -> int:
    """Rows of float64 distances :func:`condensed_distances` computes at once: ``DISTANCE_BLOCK_BYTES``, at least 1."""
    return max(1, min(n_points, DISTANCE_BLOCK_BYTES // (8 * max(n_points, 1))))


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
        Bytes a distance-matrix method (complete, average) may use
        (:func:`matrix_bytes`). Default: ``MEMORY_SHARE`` of the memory
        available now.

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
    Time is ``O(n²)`` for every method (``O(n² d)`` for the vector methods and
    the distances); memory is ``O(n d)`` for single, centroid and ward, and the
    condensed distance matrix plus ``O(n d)`` for complete (float32, 5.2 GiB
    for 52,682 × 18) and average (float64, 10.4 GiB), as :func:`matrix_bytes`
    counts. Complete linkage's heights are its distances rounded to float32
    (relative error below 6e-8); its merges are SciPy's on those distances.

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
    n_points, n_features = values.shape
    needed = matrix_bytes(n_points, n_features, method)
    limit = int(MEMORY_SHARE * available_memory()) if memory_limit is None else int(memory_limit)
    if needed > limit:
        raise LinkageMemoryError(
            f"{method} linkage of {len(values):,} points needs the full distance matrix, {needed / 2**30:.1f} GiB, "
            f"over the limit of {limit / 2**30:.1f} GiB; use a subset, or ward, centroid or single linkage "
            "(memory-lean)"
        )
    if method == "complete":
        return complete_linkage_in_place(condensed_distances(values), len(values))
    from scipy.spatial.distance import pdist

    return linkage_in_place(pdist(values), len(values), method)


def row_offsets(n_points: int) -> np.ndarray:
    """Offsets into a condensed matrix: the distance of points ``j < i`` is at ``offsets[j] + i``.

    SciPy's condensed order stores row ``j``'s distances to ``j + 1 .. n - 1``
    one after the other, so row ``j`` starts at ``n j - j (j + 1) / 2`` and
    point ``i`` is ``i - j - 1`` further on.

    Examples
    --------
    >>> from scipy.spatial.distance import squareform
    >>> square = squareform(np.arange(1.0, 7.0))  # 4 points, 6 distances
    >>> offsets = row_offsets(4)
    >>> [int(offsets[j] + i) for j, i in [(0, 1), (0, 3), (1, 2), (2, 3)]]
    [0, 2, 3, 5]
    >>> float(square[1, 2]), float(np.arange(1.0, 7.0)[offsets[1] + 2])
    (4.0, 4.0)
    """
    rows = np.arange(n_points, dtype=np.int64)
    return n_points * rows - rows * (rows + 1) // 2 - rows - 1


def condensed_distances(values: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Euclidean distances between the rows of ``values`` in SciPy's condensed order, as ``dtype``.

    Computed in float64 by ``scipy.spatial.distance.cdist`` a block of rows
    at a time (:func:`block_rows`) into one reused buffer, and written into
    one preallocated array, so the float64 distances are never all held at
    once.

    Parameters
    ----------
    values : ndarray of shape (n_points, n_features)
        Float64 observations.
    dtype : numpy dtype
        Type of the stored distances.

    Returns
    -------
    ndarray of shape (n_points * (n_points - 1) // 2,)
        What ``pdist(values).astype(dtype)`` returns.
    """
    from scipy.spatial.distance import cdist

    n_points = len(values)
    condensed = np.empty(n_points * (n_points - 1) // 2, dtype=dtype)
    offsets = row_offsets(n_points)
    step = block_rows(n_points)
    buffer = np.empty(step * n_points)  # one block's float64 distances, reused
    for first in range(0, n_points - 1, step):
        last = min(first + step, n_points - 1)
        shape = (last - first, n_points - first - 1)
        block = cdist(values[first:last], values[first + 1 :], out=buffer[: shape[0] * shape[1]].reshape(shape))
        for row in range(first, last):
            condensed[offsets[row] + row + 1 : offsets[row] + n_points] = block[row - first, row - first :]
    return condensed


def complete_linkage_in_place(condensed: np.ndarray, n_points: int) -> np.ndarray:
    """Complete linkage of a condensed distance matrix by a nearest-neighbour chain, working in ``condensed``.

    The chain (Müllner 2011, §4.2; SciPy's ``nn_chain``) follows nearest
    neighbours until two clusters are each other's nearest, merges them, and
    writes the merged cluster's distances (the larger of the two, elementwise)
    over the row of the one with the larger index. A chain keeps the
    cluster before it on a tie, so it never cycles. Each step is a few NumPy
    operations over the active clusters, so any float dtype works: taking a
    maximum never rounds, which is what lets :func:`linkage` keep complete
    linkage's distances in float32.

    Parameters
    ----------
    condensed : ndarray of shape (n_points * (n_points - 1) // 2,)
        Distances in SciPy's condensed order (:func:`condensed_distances`);
        overwritten with unspecified values.
    n_points : int
        Number of observations, at least 2.

    Returns
    -------
    ndarray of shape (n_points - 1, 4)
        The tree in SciPy's linkage format, heights in float64 (the stored
        distances, exactly).
    """
    if condensed.ndim != 1 or condensed.shape[0] != n_points * (n_points - 1) // 2 or n_points < 2:
        raise ValueError(f"a condensed matrix of {n_points} points has {n_points * (n_points - 1) // 2} entries")
    offsets = row_offsets(n_points)
    active = np.arange(n_points, dtype=np.int64)

    def row(cluster: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances from ``cluster`` to every other active cluster, and those clusters."""
        position = int(np.searchsorted(active, cluster))
        before, after = active[:position], active[position + 1 :]
        distances = np.empty(len(active) - 1, dtype=condensed.dtype)
        distances[:position] = condensed[offsets[before] + cluster]
        distances[position:] = condensed[offsets[cluster] + after]
        return distances, np.concatenate([before, after])

    merges = np.empty((n_points - 1, 3))
    chain: list[int] = []
    rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for step in range(n_points - 1):
        if not chain:
            chain.append(int(active[0]))
        while True:
            top = chain[-1]
            rows[top] = distances, others = row(top)
            nearest = int(np.argmin(distances))
            neighbour, height = int(others[nearest]), distances[nearest]
            if len(chain) > 1:
                previous = chain[-2]
                held = condensed[offsets[min(top, previous)] + max(top, previous)]
                if not distances[nearest] < held:
                    neighbour, height = previous, held
                if neighbour == previous:
                    break
            chain.append(neighbour)
        chain.pop()
        chain.pop()
        low, high = min(top, neighbour), max(top, neighbour)
        merges[step] = low, high, height
        low_distances, low_others = rows.pop(low) if low in rows else row(low)
        high_distances, high_others = rows.pop(high) if high in rows else row(high)
        rows.clear()  # every other cached row holds a distance to one of the two merged clusters
        keep_low, keep_high = low_others != high, high_others != low
        merged = np.maximum(low_distances[keep_low], high_distances[keep_high])
        targets = low_others[keep_low]
        below = targets < high
        condensed[offsets[targets[below]] + high] = merged[below]
        condensed[offsets[high] + targets[~below]] = merged[~below]
        active = np.delete(active, np.searchsorted(active, low))
    return scipy_linkage_order(merges, n_points)


def scipy_linkage_order(merges: np.ndarray, n_points: int) -> np.ndarray:
    """Merges of observation pairs, in any order, as SciPy's linkage matrix.

    Sorts the merges by height, stably (as SciPy's ``nn_chain`` does), and
    names each merge's clusters by union-find: a merged cluster is node
    ``n_points + step``, its size the sum of its parts.

    Parameters
    ----------
    merges : ndarray of shape (n_points - 1, 3)
        One row per merge: an observation in each of the two clusters, and the height.
    n_points : int
        Number of observations.

    Examples
    --------
    Points 2 and 3 merge at 1, then 0 with 3's cluster at 2, then 1 with all:

    >>> scipy_linkage_order(np.array([[0, 3, 2.0], [2, 3, 1.0], [1, 2, 5.0]]), 4).tolist()
    [[2.0, 3.0, 1.0, 2.0], [0.0, 4.0, 2.0, 3.0], [1.0, 5.0, 5.0, 4.0]]
    """
    parent = np.arange(2 * n_points - 1)
    sizes = np.ones(2 * n_points - 1)

    def root(node: int) -> int:
        top = node
        while parent[top] != top:
            top = parent[top]
        while parent[node] != top:
            parent[node], node = top, parent[node]
        return top

    tree = np.empty((n_points - 1, 4))
    for step, index in enumerate(np.argsort(merges[:, 2], kind="stable")):
        first, second = sorted((root(int(merges[index, 0])), root(int(merges[index, 1]))))
        node = n_points + step
        parent[first] = parent[second] = node
        sizes[node] = sizes[first] + sizes[second]
        tree[step] = first, second, merges[index, 2], sizes[node]
    return tree


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
