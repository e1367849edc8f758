"""Scores of clusterings and trees against a partial ground truth (thesis sections 4.3-4.4).

The ground truth labels only some items (7,557 of the 52,682 images of 1u-2u
carry one of the 10 categories of SEM_Dataset): every score here is computed
over the labelled items only, with the clustering restricted to them.
``labels_true`` marks an item unlabelled with ``None`` or ``""`` (object or
string arrays) or with a negative value (numeric arrays).

* :func:`nmi` -- normalised mutual information, geometric normalisation;
* :func:`nmi_curve` -- NMI for many numbers of clusters ``k``, in one pass over
  the merges of a linkage matrix;
* :func:`reference_curves` -- the ideal-refinement, uniform and orthogonal
  references of figures 4.3-4.4 that an NMI curve is read against;
* :func:`dendrogram_purity`, :func:`hierarchy_purity` -- how well a whole tree
  keeps each class together (Heller & Ghahramani 2005);
* :func:`leaf_nmi` -- NMI of the leaves of a stored tree.

Entropies are kept in the form ``H = log N - S / N`` with ``S = sum c log c``
over integer counts ``c``, so that merging two clusters changes ``S`` by a few
terms and a whole NMI curve costs one walk over the tree.  Natural logarithms
throughout; the base cancels in every normalised score.

References
----------
A. Strehl and J. Ghosh, "Cluster ensembles -- a knowledge reuse framework for
combining multiple partitions", J. Mach. Learn. Res. 3, 583-617 (2002).

K. A. Heller and Z. Ghahramani, "Bayesian hierarchical clustering", Proc. 22nd
Int. Conf. on Machine Learning, 297-304 (2005).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
from scipy.special import xlogy

from semcurate.clustering.hierarchy import check_linkage


def nmi(labels_true, labels_pred) -> float:
    """Normalised mutual information of two partitions, over the items ``labels_true`` labels.

    Parameters
    ----------
    labels_true : array-like of shape (n_items,)
        Ground-truth classes; ``None``, ``""`` or a negative number marks an
        unlabelled item, which is dropped from both partitions.
    labels_pred : array-like of shape (n_items,)
        Cluster of every item (any sortable values; ``-1`` is an ordinary cluster here).

    Returns
    -------
    float
        ``I(T, C) / sqrt(H(T) H(C))`` in ``[0, 1]``.  As in scikit-learn's
        ``normalized_mutual_info_score(average_method="geometric")``: 1 when both
        partitions are a single cluster, 0 when exactly one of them is.

    Raises
    ------
    ValueError
        If the lengths differ or no item is labelled.

    Notes
    -----
    ``O(n_items log n_items)`` time (sorting the labels) and ``O(n_items)``
    memory: the contingency table is dense only while it has at most
    ``4 n_items`` cells.  Sums of ``c log c`` are exactly rounded, so
    identical partitions score exactly 1.

    References
    ----------
    A. Strehl and J. Ghosh, J. Mach. Learn. Res. 3, 583-617 (2002); thesis section 4.3.1.

    Examples
    --------
    >>> nmi(["a", "a", "b", "b"], [7, 7, 3, 3])  # the same partition, whatever the cluster names
    1.0
    >>> nmi(["a", "a", "b", "b"], [0, 1, 0, 1])  # each cluster holds one item of each class
    0.0
    >>> nmi(["a", "a", "b", None], [0, 0, 1, 1])  # the unlabelled item is left out
    1.0

    Three items of class ``a`` and one of ``b`` in two clusters of two:
    ``H(T) = 0.5623``, ``H(C) = log 2 = 0.6931``, ``I = 0.2158`` nats, so
    ``0.2158 / sqrt(0.5623 × 0.6931) = 0.3456``:

    >>> round(nmi(["a", "a", "a", "b"], [0, 0, 1, 1]), 4)
    0.3456
    """
    labelled, truth, n_classes = _labelled(labels_true)
    pred = np.asarray(labels_pred)
    if pred.shape != labelled.shape:
        raise ValueError(f"labels_pred has shape {pred.shape}; labels_true has {labelled.shape}")
    clusters, pred_codes = np.unique(pred[labelled], return_inverse=True)
    return _nmi_codes(truth, n_classes, pred_codes.ravel(), len(clusters))


def nmi_curve(source, labels_true, ks: Iterable[int]) -> np.ndarray:
    """NMI against ``labels_true`` of the partitions into ``k`` clusters, for every ``k`` of ``ks``.

    Parameters
    ----------
    source : linkage matrix of shape (n_items - 1, 4), mapping ``{k: labels}``, or array of shape (len(ks), n_items)
        The partitions: a SciPy-format linkage matrix (agglomerative trees,
        :attr:`DensityPeaks.linkage_ <semcurate.clustering.DensityPeaks>`), cut
        by merge count as :class:`~semcurate.clustering.hierarchy.Cutter` does;
        or the labels of each ``k``, by key or one row per ``k`` of ``ks``.  An
        array of shape ``(n_items - 1, 4)`` is read as a linkage matrix (the two
        shapes coincide only for 4 items and three ``ks``; pass a mapping there).
    labels_true : array-like of shape (n_items,)
        Ground-truth classes; unlabelled items as in :func:`nmi`.
    ks : iterable of int
        Numbers of clusters, in any order and with repeats; ``1 <= k <= n_items`` for a linkage matrix.

    Returns
    -------
    ndarray of shape (len(ks),)
        ``nmi(labels_true, partition_k)`` for each ``k``, in the order of ``ks``.

    Notes
    -----
    A linkage matrix is not cut once per ``k``: its merges are walked once, from
    ``n_items`` singletons down to the smallest ``k``, keeping a class-count
    vector only for the clusters that hold labelled items and the running sums
    ``S(C)`` and ``S(C, T)``.  A merge that involves a cluster without labelled
    items changes neither, so the walk costs ``O(n_items + n_labelled ×
    n_classes)`` time and ``O(n_items + n_labelled × n_classes)`` memory,
    whatever the number of ``ks``.  The NMI at ``k`` is over the labelled items,
    with the ``k`` clusters restricted to them: a cluster without a labelled
    item counts for nothing.

    Examples
    --------
    A tree over four items that merges ``{0, 1}``, then ``{2, 3}``, then both:

    >>> tree = [[0, 1, 1.0, 2], [2, 3, 2.0, 2], [4, 5, 7.8, 4]]
    >>> nmi_curve(tree, ["a", "a", "b", "b"], [1, 2, 4]).round(4).tolist()
    [0.0, 1.0, 0.7071]

    At ``k = 4`` the singletons refine the truth: ``sqrt(H(T) / H(C)) =
    sqrt(log 2 / log 4) = 0.7071``.
    """
    ks = _check_ks(ks)
    if isinstance(source, Mapping):
        missing = sorted({int(k) for k in ks} - {int(k) for k in source})
        if missing:
            raise ValueError(f"the mapping of partitions has no labels for k = {missing}")
        return np.array([nmi(labels_true, source[k]) for k in ks])
    labelled, truth, n_classes = _labelled(labels_true)
    n_items = len(labelled)
    array = np.asarray(source)
    if array.shape == (n_items - 1, 4):
        _check_range(ks, n_items, "items in the tree")
        return _linkage_nmi_curve(check_linkage(array), labelled, truth, n_classes, ks)
    if array.shape == (len(ks), n_items):
        return np.array([nmi(labels_true, row) for row in array])
    raise ValueError(
        f"source of shape {array.shape} is neither a linkage matrix ({n_items - 1}, 4) over the {n_items} items "
        f"nor one row of labels per k ({len(ks)}, {n_items}); a mapping {{k: labels}} is also accepted"
    )


def reference_curves(labels_true, ks: Iterable[int], *, n_draws: int = 20, random_state: int = 0) -> dict:
    """The reference NMI curves of figures 4.3-4.4 for the labelled items of ``labels_true``.

    Parameters
    ----------
    labels_true : array-like of shape (n_items,)
        Ground-truth classes; unlabelled items as in :func:`nmi` are left out.
    ks : iterable of int
        Numbers of clusters, ``1 <= k <= n_labelled``, in any order.
    n_draws : int, default=20
        Random assignments per ``k`` behind the uniform curve.
    random_state : int, default=0
        Non-negative seed; the draws of each ``k`` come from the seed ``(random_state, k)``,
        so a value does not depend on which other ``ks`` are asked.

    Returns
    -------
    dict of str to ndarray of shape (len(ks),)
        ``"ks"``: the ``ks`` as given.

        ``"ideal"``: NMI of an artificial partition close to the truth.  For
        ``k >= n_classes``, the refinement of the truth made by splitting the
        currently largest cluster evenly in two until there are ``k`` clusters
        (thesis figure 4.4); a refinement scores ``sqrt(H(T) / H(C))``.  For
        ``k < n_classes``, a coarsening, which scores ``sqrt(H(C) / H(T))``, so
        the best one has the most even group sizes: the classes are dealt,
        largest first, each to the currently smallest of ``k`` groups (the LPT
        rule of number partitioning).  That is the best coarsening when the
        classes are of equal size, and close to it otherwise, but not always
        the best (finding it is NP-hard), so like the rest of the curve it is a
        reference, not a bound.  It reaches 1 at ``k = n_classes``.

        ``"uniform_mean"``, ``"uniform_std"``: mean and standard deviation
        (``ddof=0``) over ``n_draws`` random partitions that deal the ``k``
        labels evenly (each used ``floor`` or ``ceil`` of ``n_labelled / k``
        times) to randomly permuted items, so that at ``k = n_labelled`` it
        degenerates, like the ideal curve, into singletons (thesis section 4.3.2).

        ``"orthogonal"``: NMI of dealing the ``k`` labels round-robin within
        each class, starting again from label 0 in every class, in the order
        the items appear ("row-wise" in figure 4.2: it says as little as
        possible about the class).

    Notes
    -----
    The ideal and orthogonal curves cost ``O(n_classes² log n_classes + max(ks)
    log max(ks))`` and ``O(len(ks) × n_labelled)``; the uniform curve
    ``O(len(ks) × n_draws × n_labelled)``: about three seconds on two cores for
    the 7,557 labelled images of 1u-2u with ``k = 2 .. 500``.

    Examples
    --------
    Two classes of two items, cut into one cluster, two, and four singletons:

    >>> curves = reference_curves(["a", "a", "b", "b"], [1, 2, 4])
    >>> curves["ideal"].round(4).tolist()  # one cluster, the truth itself, sqrt(log 2 / log 4)
    [0.0, 1.0, 0.7071]
    >>> curves["orthogonal"].round(4).tolist()  # labels 0, 1 dealt within each class: no information
    [0.0, 0.0, 0.0]
    >>> curves["uniform_mean"][[0, 2]].round(4).tolist()  # k = 1 and k = n: every draw is the same partition
    [0.0, 0.7071]
    """
    ks = _check_ks(ks)
    _, truth, n_classes = _labelled(labels_true)
    n_labelled = len(truth)
    _check_range(ks, n_labelled, "labelled items")
    class_sizes = np.bincount(truth, minlength=n_classes)
    s_true = _sum_xlogx(class_sizes)
    ideal_sums = _ideal_cluster_sums(class_sizes, ks)
    ideal = []
    for k in ks:
        s_pred = ideal_sums[int(k)]
        # Below the class count each class lies whole in one cluster, above it each cluster in one class.
        s_joint = s_true if k < n_classes else s_pred
        ideal.append(_nmi_sums(n_labelled, s_true, s_pred, s_joint, n_classes == 1, k == 1))
    uniform = np.empty((len(ks), n_draws))
    for row, k in enumerate(ks):
        rng = np.random.default_rng([random_state, int(k)])
        for draw in range(n_draws):
            uniform[row, draw] = _nmi_codes(truth, n_classes, rng.permutation(n_labelled) % k, int(k))
    rank_in_class = np.empty(n_labelled, dtype=np.int64)
    order = np.argsort(truth, kind="stable")
    starts = np.concatenate(([0], np.cumsum(class_sizes)[:-1]))
    rank_in_class[order] = np.arange(n_labelled) - np.repeat(starts, class_sizes)
    orthogonal = [_nmi_codes(truth, n_classes, rank_in_class % k, int(k)) for k in ks]
    return {
        "ks": ks,
        "ideal": np.array(ideal),
        "uniform_mean": uniform.mean(axis=1),
        "uniform_std": uniform.std(axis=1),
        "orthogonal": np.array(orthogonal),
    }


def best_k_over_chance(ks, nmi_values, reference_ks, uniform_mean) -> tuple[int, float, float]:
    """The number of clusters at which an NMI curve most exceeds the uniform-random reference.

    NMI against a few classes keeps rising with k (a partition into many
    small clusters shares more information with any labelling), so the k of
    the largest NMI flatters the finest cut.  The excess over the uniform
    random partition of the same k (:func:`reference_curves`' ``uniform_mean``)
    removes that trend: a clustering is only as good as it beats chance at its
    own k.

    Parameters
    ----------
    ks, nmi_values : sequences of the same length
        The curve: NMI at each number of clusters.
    reference_ks, uniform_mean : sequences of the same length
        The reference curve's ks and its mean NMI of uniform random
        partitions.  Only ks present in both are compared.

    Returns
    -------
    k : int
        The k of the largest excess (the smallest such k on ties).
    nmi : float
        The curve's NMI at that k.
    excess : float
        NMI minus the uniform-random mean at that k.

    Examples
    --------
    >>> best_k_over_chance([2, 5, 50], [0.3, 0.6, 0.7], [2, 5, 50], [0.01, 0.05, 0.4])
    (5, 0.6, 0.55)
    """
    chance = dict(zip((int(k) for k in reference_ks), (float(value) for value in uniform_mean), strict=True))
    excess = [
        (float(value) - chance[int(k)], -int(k), float(value))
        for k, value in zip(ks, nmi_values, strict=True)
        if int(k) in chance
    ]
    if not excess:
        raise ValueError("the curve and the reference share no k")
    best_excess, negative_k, value = max(excess)
    return -negative_k, value, round(best_excess, 12)


def dendrogram_purity(linkage_matrix, labels_true) -> float:
    """Dendrogram purity of a binary tree (Heller & Ghahramani 2005) over its labelled leaves.

    Parameters
    ----------
    linkage_matrix : array of shape (n_items - 1, 4)
        SciPy-format merge tree over the items.
    labels_true : array-like of shape (n_items,)
        Ground-truth classes; unlabelled items as in :func:`nmi` sit in the tree but are not counted.

    Returns
    -------
    float
        The mean, over the unordered pairs of distinct labelled leaves of one
        class, of the share of labelled leaves under the pair's lowest common
        ancestor that are of that class.  1 when every class is a subtree (up to
        unlabelled leaves).

    Raises
    ------
    ValueError
        If no two labelled leaves share a class.

    Notes
    -----
    One pass over the merges: the pairs of class ``c`` whose lowest common
    ancestor is the merge of clusters with class counts ``a`` and ``b`` number
    ``a_c b_c``, and the node's purity for them is ``(a_c + b_c) / sum(a + b)``.
    ``O(n_items + n_labelled × n_classes)`` time and memory.

    References
    ----------
    K. A. Heller and Z. Ghahramani, "Bayesian hierarchical clustering", ICML 2005.

    Examples
    --------
    >>> tree = [[0, 1, 1.0, 2], [2, 3, 2.0, 2], [4, 5, 7.8, 4]]  # {0, 1}, {2, 3}, then the root
    >>> dendrogram_purity(tree, ["a", "a", "b", "b"])  # each class is a subtree
    1.0
    >>> dendrogram_purity(tree, ["a", "b", "a", "b"])  # both pairs meet only at the root, half of one class
    0.5
    """
    matrix = check_linkage(linkage_matrix)
    labelled, truth, n_classes = _labelled(labels_true)
    if len(labelled) != matrix.shape[0] + 1:
        raise ValueError(f"labels_true has {len(labelled)} items; the tree has {matrix.shape[0] + 1}")
    total = 0.0
    for _, a, b in _labelled_merges(matrix, _leaf_codes(labelled, truth), n_classes):
        merged = a + b
        total += float((a * b * merged).sum()) / float(merged.sum())
    return total / _same_class_pairs(truth)


def hierarchy_purity(node_paths: Sequence[tuple], labels_true) -> float:
    """Dendrogram purity of a general tree given by the path of each item's node.

    Parameters
    ----------
    node_paths : sequence of tuple, length n_items
        The node each item sits in, as the path from the root, like
        ``("Nanowires", 2, 1)``; a node holds every item whose path starts with
        its own.  The lowest common ancestor of two items is the node of their
        longest common prefix (the root ``()`` for items of different top-level
        categories).
    labels_true : array-like of shape (n_items,)
        Ground-truth classes; unlabelled items as in :func:`nmi` are not counted.

    Returns
    -------
    float
        As :func:`dendrogram_purity`; equal to it for a binary tree written as paths of child numbers.

    Raises
    ------
    ValueError
        If the lengths differ, a path is a string, or no two labelled items share a class.

    Notes
    -----
    With ``m_v(c)`` the labelled items of class ``c`` under node ``v`` and
    ``m_v`` all of them, the pairs of class ``c`` whose lowest common ancestor is
    ``v`` number ``C(m_v(c), 2) - sum over children w of C(m_w(c), 2)``.
    ``O(n_items × depth²)`` time (prefix tuples), memory for one count per
    (node, class) present.

    Examples
    --------
    The ``a`` pair shares node ``("x", 0)``, which holds only ``a`` (purity 1);
    the ``b`` pair meets at the root, half ``b`` (purity 0.5):

    >>> paths = [("x", 0), ("x", 0), ("x", 1), ("y",)]
    >>> hierarchy_purity(paths, ["a", "a", "b", "b"])
    0.75
    """
    paths = _check_paths(node_paths)
    labelled, truth, _ = _labelled(labels_true)
    if len(paths) != len(labelled):
        raise ValueError(f"{len(paths)} node paths for {len(labelled)} labels")
    under: Counter = Counter()  # (node, class) -> labelled items of the class under the node
    size: Counter = Counter()  # node -> labelled items under the node
    for index, cls in zip(np.flatnonzero(labelled).tolist(), truth.tolist(), strict=True):
        path = paths[index]
        for depth in range(len(path) + 1):
            under[path[:depth], cls] += 1
            size[path[:depth]] += 1
    total = 0.0
    for (node, cls), count in under.items():
        pairs = count * (count - 1) / 2
        total += pairs * count / size[node]
        if node:  # these pairs were counted at the parent too, where they do not have their ancestor
            parent = node[:-1]
            total -= pairs * under[parent, cls] / size[parent]
    return total / _same_class_pairs(truth)


def leaf_nmi(node_paths: Sequence[tuple], labels_true) -> float:
    """NMI between the nodes the items sit in (whole path as the cluster) and ``labels_true``.

    Parameters
    ----------
    node_paths : sequence of tuple, length n_items
        The node of each item, as in :func:`hierarchy_purity`.
    labels_true : array-like of shape (n_items,)
        Ground-truth classes; unlabelled items as in :func:`nmi` are left out.

    Returns
    -------
    float
        :func:`nmi` of the truth against the partition into leaves.

    Examples
    --------
    Three pure leaves of sizes 2, 1, 1 over two classes of two refine the
    truth: ``sqrt(H(T) / H(C)) = sqrt(0.6931 / 1.0397) = 0.8165``.

    >>> round(leaf_nmi([("x", 0), ("x", 0), ("x", 1), ("y",)], ["a", "a", "b", "b"]), 4)
    0.8165
    """
    paths = _check_paths(node_paths)
    ids: dict[tuple, int] = {}
    return nmi(labels_true, np.array([ids.setdefault(path, len(ids)) for path in paths]))


def _labelled(labels_true) -> tuple[np.ndarray, np.ndarray, int]:
    """Mask of the labelled items, their class codes ``0 .. n_classes - 1`` (int64), and ``n_classes``."""
    labels = np.asarray(labels_true)
    if labels.ndim != 1:
        raise ValueError(f"labels_true must be one-dimensional; got shape {labels.shape}")
    if labels.dtype.kind in "biuf":
        labelled = labels >= 0  # False for NaN too
    else:
        labelled = np.array([label is not None and label != "" for label in labels.tolist()], dtype=bool)
    if not labelled.any():
        raise ValueError("no item of labels_true is labelled (None, '' and negative values mark unlabelled items)")
    classes, truth = np.unique(labels[labelled], return_inverse=True)
    return labelled, truth.ravel().astype(np.int64), len(classes)


def _check_ks(ks) -> np.ndarray:
    """``ks`` as a non-empty one-dimensional int64 array."""
    array = np.asarray(list(ks))
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
        raise ValueError(f"ks must be a non-empty sequence of integers; got {array!r}")
    return array.astype(np.int64)


def _check_range(ks: np.ndarray, n: int, what: str) -> None:
    """Refuse a ``k`` outside ``1 .. n``."""
    bad = ks[(ks < 1) | (ks > n)]
    if bad.size:
        raise ValueError(f"k must be 1 .. {n} (the number of {what}); got k = {bad.tolist()}")


def _check_paths(node_paths) -> list[tuple]:
    """Node paths as tuples, refusing strings (which would read as one node per character)."""
    paths = []
    for path in node_paths:
        if isinstance(path, str):
            raise ValueError(f"node paths are tuples like ('Nanowires', 2, 1); got the string {path!r}")
        paths.append(tuple(path))
    return paths


def _sum_xlogx(counts: np.ndarray) -> float:
    """``S = sum c log c`` over integer counts, exactly rounded: equal multisets of counts give equal sums."""
    counts = counts[counts > 1]  # 0 log 0 = 1 log 1 = 0
    return math.fsum((counts * np.log(counts)).tolist())


def _nmi_sums(n: int, s_true: float, s_pred: float, s_joint: float, single_true: bool, single_pred: bool) -> float:
    """NMI from ``S`` of the classes, clusters and their intersections over ``n`` items, with sklearn's conventions."""
    if single_true or single_pred:
        return float(single_true and single_pred)
    log_n = math.log(n)
    mutual = log_n + (s_joint - s_true - s_pred) / n
    normaliser = math.sqrt((log_n - s_true / n) * (log_n - s_pred / n))
    return min(max(mutual / normaliser, 0.0), 1.0)  # rounding only can leave [0, 1]


def _nmi_codes(truth: np.ndarray, n_classes: int, pred: np.ndarray, n_pred: int) -> float:
    """NMI of class codes ``0 .. n_classes - 1`` and cluster codes ``0 .. n_pred - 1`` (some may be unused)."""
    joint = truth * n_pred + pred
    if n_classes * n_pred <= 4 * len(joint):  # a dense table is cheaper than sorting
        joint_sizes = np.bincount(joint)
    else:
        joint_sizes = np.unique(joint, return_counts=True)[1]
    class_sizes = np.bincount(truth, minlength=n_classes)
    cluster_sizes = np.bincount(pred, minlength=n_pred)
    return _nmi_sums(
        len(truth),
        _sum_xlogx(class_sizes),
        _sum_xlogx(cluster_sizes),
        _sum_xlogx(joint_sizes),
        np.count_nonzero(class_sizes) == 1,
        np.count_nonzero(cluster_sizes) == 1,
    )


def _leaf_codes(labelled: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Class code of every item, ``-1`` for the unlabelled."""
    codes = np.full(len(labelled), -1, dtype=np.int64)
    codes[labelled] = truth
    return codes


def _same_class_pairs(truth: np.ndarray) -> int:
    """Unordered pairs of distinct labelled items of one class, the denominator of purity."""
    sizes = np.bincount(truth)
    pairs = int((sizes * (sizes - 1) // 2).sum())
    if pairs == 0:
        raise ValueError("no two labelled items share a class, so purity is undefined")
    return pairs


def _labelled_merges(matrix: np.ndarray, leaf_codes: np.ndarray, n_classes: int) -> Iterator:
    """``(step, counts_a, counts_b)`` for each merge (row ``step``) of two clusters that both hold labelled items.

    ``counts_a`` and ``counts_b`` are the class counts of the two clusters
    before the merge, as views that the walk adds together in place when it
    resumes: use them before asking for the next merge.  Merges that involve a
    cluster without labelled items only pass the other cluster's counts on.
    """
    n = len(leaf_codes)
    leaves = np.flatnonzero(leaf_codes >= 0)
    counts = np.zeros((len(leaves), n_classes), dtype=np.int64)
    counts[np.arange(len(leaves)), leaf_codes[leaves]] = 1
    rows = np.full(2 * n - 1, -1, dtype=np.int64)  # node -> its row of counts, -1 without labelled items
    rows[leaves] = np.arange(len(leaves))
    row: list[int] = rows.tolist()
    for step, (a, b) in enumerate(matrix[:, :2].astype(np.int64).tolist()):
        row_a, row_b = row[a], row[b]
        if row_a < 0 or row_b < 0:
            row[n + step] = max(row_a, row_b)
            continue
        yield step, counts[row_a], counts[row_b]
        counts[row_a] += counts[row_b]
        row[n + step] = row_a


def _linkage_nmi_curve(
    matrix: np.ndarray, labelled: np.ndarray, truth: np.ndarray, n_classes: int, ks: np.ndarray
) -> np.ndarray:
    """:func:`nmi_curve` of a checked linkage matrix, in one walk over its merges."""
    n_items, n_labelled = len(labelled), len(truth)
    xlogx = xlogy(np.arange(n_labelled + 1), np.arange(n_labelled + 1))
    s_true = float(xlogx[np.bincount(truth)].sum())
    s_pred = s_joint = 0.0  # labelled singletons
    clusters = n_labelled  # clusters holding labelled items
    order = np.argsort(-ks, kind="stable")  # by the number of merges n_items - k, ascending
    merges_wanted = (n_items - ks[order]).tolist()
    values = np.empty(len(ks))
    done = 0
    for step, a, b in _labelled_merges(matrix, _leaf_codes(labelled, truth), n_classes):
        # The sums after `step` merges hold since the previous labelled merge.
        while done < len(order) and merges_wanted[done] <= step:
            values[order[done]] = _nmi_sums(n_labelled, s_true, s_pred, s_joint, n_classes == 1, clusters == 1)
            done += 1
        if done == len(order):
            break
        merged = a + b
        s_joint += float(xlogx[merged].sum() - xlogx[a].sum() - xlogx[b].sum())
        size_a, size_b = int(a.sum()), int(b.sum())
        s_pred += float(xlogx[size_a + size_b] - xlogx[size_a] - xlogx[size_b])
        clusters -= 1
    values[order[done:]] = _nmi_sums(n_labelled, s_true, s_pred, s_joint, n_classes == 1, clusters == 1)
    return values


def _ideal_cluster_sums(class_sizes: np.ndarray, ks: np.ndarray) -> dict[int, float]:
    """``S`` of the cluster sizes of the ideal partition (see :func:`reference_curves`) for each ``k`` of ``ks``."""
    sizes = sorted((int(size) for size in class_sizes), reverse=True)
    sums = {}
    for k in {int(k) for k in ks if k < len(sizes)}:  # deal the classes, largest first, to the smallest group
        groups = [0] * k
        for size in sizes:
            heapq.heappush(groups, heapq.heappop(groups) + size)
        sums[k] = _sum_xlogx(np.array(groups))
    heap, total = [-size for size in sizes], _sum_xlogx(class_sizes)
    heapq.heapify(heap)
    sums[len(sizes)] = total
    for count in range(len(sizes) + 1, int(ks.max()) + 1):  # split the largest cluster evenly in two
        largest = -heapq.heappop(heap)
        half, rest = largest // 2, largest - largest // 2
        total += _xlogx(half) + _xlogx(rest) - _xlogx(largest)
        heapq.heappush(heap, -half)
        heapq.heappush(heap, -rest)
        sums[count] = total
    return sums


def _xlogx(count: int) -> float:
    """``count log count`` of one integer count."""
    return count * math.log(count) if count else 0.0
