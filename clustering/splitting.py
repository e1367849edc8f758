"""Core of the sub-category tree (thesis chapter 5): cluster a category on its own, choose k, recurse.

The thesis closes by proposing to "repeat the procedure (feature learning and
subsequent clustering) restricted to images belonging to the same category".
:func:`split` does that for one category's feature rows: it partitions them
into ``2 .. max_children`` candidate clusterings, picks the number of children
with a stated rule, and recurses into every child down to a given depth.

Rules for the number of children (``rule``):

``silhouette`` (default)
    Largest mean silhouette coefficient (Rousseeuw 1987). Chosen as the
    default because it is bounded in [-1, 1], so it compares partitions with
    different k on one scale; it needs no reference data; it works for every
    method, trees and flat ones alike; and it costs one pass over the pairwise
    distances per k (over a sample of at most ``sample_size`` points).
``gap``
    Tibshirani's gap statistic against uniform reference data; the only rule
    that may answer k = 1 ("do not split"), at the price of re-clustering each
    reference set for every k.
``dendrogram-gap``
    The cut that survives the widest range of merge heights; free once the
    tree exists, but only for the merge trees of Ward, complete, average and
    single linkage (centroid heights invert and Density Peaks has no heights).

Partitions whose smallest child has fewer than ``min_size`` images are not
candidates: a sub-category of one or two images is of no use to a researcher
browsing the tree (single linkage often offers nothing else, see §4.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from semcurate.clustering.agglomerative import check_observations
from semcurate.clustering.hierarchy import Cutter
from semcurate.clustering.methods import MONOTONE_LINKAGES, SPLIT_RULES, TREE_ALGORITHMS


@dataclass
class Branch:
    """One node of a sub-category tree over the rows of a feature matrix.

    ``members`` are row indices into the matrix the tree was built from;
    ``representative`` is the row of the medoid (the member with the least
    summed distance to the others). ``split_scores`` maps each candidate k to
    the rule's score; ``note`` says why a node has no children.
    """

    members: np.ndarray
    representative: int
    children: list[Branch] = field(default_factory=list)
    split_rule: str | None = None
    split_scores: dict[int, float] = field(default_factory=dict)
    note: str = ""

    def walk(self, path: tuple[int, ...] = ()):
        """``(path, branch)`` for this node and every descendant, depth first; children are numbered from 1."""
        yield path, self
        for number, child in enumerate(self.children, start=1):
            yield from child.walk((*path, number))


def medoid(values: np.ndarray, *, sample_size: int = 4000, random_state: int = 0) -> int:
    """Row index of the medoid of ``values`` (least summed Euclidean distance to the other rows).

    Exact up to ``sample_size`` rows: ``O(m² d)`` time in blocks of 512 rows,
    ``O(512 m)`` memory. Beyond that, candidates and the points they are
    measured against are a random sample of ``sample_size`` rows.

    Examples
    --------
    On a line ``0, 1, 2, 3, 10`` the summed distances are 16, 13, 12, 13 and
    38: the medoid is the point 2 (row 2), although the mean, 3.2, is
    nearest to the point 3.

    >>> medoid(np.array([[0.0], [1.0], [2.0], [3.0], [10.0]]))
    2
    """
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(random_state)
    candidates = np.arange(len(values))
    if len(values) > sample_size:
        candidates = np.sort(rng.choice(len(values), sample_size, replace=False))
    reference = values[candidates]
    squared_norms = np.einsum("ij,ij->i", reference, reference)
    totals = np.empty(len(candidates))
    for start in range(0, len(candidates), 512):
        block = reference[start : start + 512]
        squared = squared_norms[start : start + 512, None] + squared_norms[None, :] - 2 * block @ reference.T
        totals[start : start + 512] = np.sqrt(np.maximum(squared, 0)).sum(axis=1)
    return int(candidates[np.argmin(totals)])


def candidate_partitions(values: np.ndarray, method: str, ks: range, *, random_state: int = 0):
    """``(partitions by k, linkage matrix or None)``: hierarchies are built once and cut; flat methods fit per k."""
    from semcurate.clustering.flat import cluster_labels_per_k
    from semcurate.clustering.n_clusters import merge_tree

    if method in TREE_ALGORITHMS:
        tree = merge_tree(values, method)
        cutter = Cutter(tree)
        return {k: cutter.labels(k) for k in ks}, tree
    if method == "hdbscan":
        return cluster_labels_per_k(values, "hdbscan", None, random_state=random_state), None
    return cluster_labels_per_k(values, method, ks, random_state=random_state), None


def choose_children(
    values: np.ndarray,
    partitions: dict[int, np.ndarray],
    rule: str,
    *,
    method: str,
    tree: np.ndarray | None,
    min_size: int,
    sample_size: int,
    random_state: int,
) -> tuple[int | None, dict[int, float], str]:
    """``(k or None, score per k, note)``: the number of children by ``rule`` among admissible partitions.

    A partition is admissible when every child has at least ``min_size`` images
    (HDBSCAN noise excepted). Silhouette and dendrogram-gap take the best
    admissible score; gap takes Tibshirani's k, and k = 1 means "do not split".
    """
    from sklearn.metrics import silhouette_score

    from semcurate.clustering.n_clusters import estimate_n_clusters

    admissible = {
        k
        for k, labels in partitions.items()
        if len(np.unique(labels[labels >= 0])) > 1 and np.bincount(labels[labels >= 0]).min() >= min_size
    }
    if rule == "gap":
        estimate = estimate_n_clusters(
            values, "gap", range(1, max(partitions) + 1), algorithm=method, random_state=random_state
        )
        scores = dict(zip(estimate.ks, estimate.scores, strict=True))
        if estimate.best_k == 1:
            return None, scores, "gap statistic: one cluster (k = 1) explains these images best"
        if estimate.best_k not in admissible:
            return None, scores, f"gap statistic chose k = {estimate.best_k}, which leaves a child < {min_size} images"
        return estimate.best_k, scores, ""
    if rule == "dendrogram-gap":
        if tree is None:
            raise ValueError(f"the dendrogram-gap rule needs a merge tree; {method!r} builds none")
        heights, n = tree[:, 2], len(values)
        scores = {k: float(heights[n - k] - heights[n - k - 1]) for k in partitions}
    else:
        scores = {
            k: float(
                silhouette_score(values, labels, sample_size=min(sample_size, len(values)), random_state=random_state)
            )
            for k, labels in partitions.items()
            if len(np.unique(labels)) > 1
        }
    candidates = {k: score for k, score in scores.items() if k in admissible}
    if not candidates:
        return (
            None,
            scores,
            f"no partition into {min(partitions)}..{max(partitions)} children keeps every child ≥ {min_size} images",
        )
    return max(candidates, key=lambda k: (candidates[k], -k)), scores, ""


def split(
    values: np.ndarray,
    method: str,
    depth: int,
    *,
    rule: str = "silhouette",
    max_children: int = 8,
    min_size: int = 10,
    sample_size: int = 2000,
    random_state: int = 0,
    members: np.ndarray | None = None,
    on_node: Callable[[int], None] | None = None,
) -> Branch:
    """Sub-category tree of the rows of ``values`` down to ``depth`` levels of children.

    Parameters
    ----------
    values : array of shape (n_images, n_features)
        Feature rows of one category's images.
    method : str
        Any clustering method of :mod:`semcurate.clustering.runs` (``ward``, ``density-peaks``, ``kmeans``, ...).
    depth : int
        Levels of children below this node (0: a leaf).
    rule : {"silhouette", "gap", "dendrogram-gap"}
        How the number of children is chosen (module docstring says why the default).
    max_children : int
        Largest number of children considered at a node (k in ``2 .. max_children``).
    min_size : int
        Fewest images a child may have; nodes with fewer than ``2 * min_size`` are leaves.
    sample_size : int
        Points used for silhouette scores and medoids of larger nodes.
    members : array of int, optional
        Row indices that ``values`` came from (default ``arange(n)``), so that
        children can name rows of the full matrix.
    on_node : callable, optional
        Called with 1 after each node is finished (a progress bar).

    Returns
    -------
    Branch
        The root node with its descendants; every child's members are a subset of its parent's, and the
        children of a node partition it (HDBSCAN noise forms its own child).
    """
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown rule {rule!r} for the number of children; choose one of {', '.join(SPLIT_RULES)}")
    if rule == "dendrogram-gap" and method not in MONOTONE_LINKAGES:
        raise ValueError(
            f"the dendrogram-gap rule needs monotone merge heights ({', '.join(MONOTONE_LINKAGES)}), "
            f"not {method}; use silhouette or gap"
        )
    values = check_observations(values, min_samples=1)
    members = np.arange(len(values)) if members is None else np.asarray(members)
    node = Branch(
        members=members, representative=int(members[medoid(values, sample_size=sample_size, random_state=random_state)])
    )
    if depth <= 0:
        node.note = "depth reached"
    elif len(values) < 2 * min_size:
        node.note = f"{len(values)} images: fewer than twice the smallest child size {min_size}"
    elif len(np.unique(values, axis=0)) < 2:
        node.note = "all feature rows are equal"
    else:
        ks = range(2, min(max_children, len(values) // min_size) + 1)
        partitions, tree = candidate_partitions(values, method, ks, random_state=random_state)
        chosen, node.split_scores, node.note = choose_children(
            values,
            partitions,
            rule if method != "hdbscan" else "silhouette",
            method=method,
            tree=tree,
            min_size=min_size,
            sample_size=sample_size,
            random_state=random_state,
        )
        node.split_rule = rule if method != "hdbscan" else "hdbscan"
        if chosen is not None:
            labels = partitions[chosen]
            for label in sorted(np.unique(labels), key=lambda value: (value < 0, value)):
                inside = np.flatnonzero(labels == label)
                node.children.append(
                    split(
                        values[inside],
                        method,
                        depth - 1,
                        rule=rule,
                        max_children=max_children,
                        min_size=min_size,
                        sample_size=sample_size,
                        random_state=random_state,
                        members=members[inside],
                        on_node=on_node,
                    )
                )
            node.children.sort(key=lambda child: -len(child.members))
    if on_node is not None:
        on_node(1)
    return node
