"""Core of the sub-category tree (thesis ch. 5): cluster a category on its own, split where the data say so, recurse.

The thesis closes by proposing to "repeat the procedure (feature learning and
subsequent clustering) restricted to images belonging to the same category".
:func:`split` does that for one category's feature rows: at every node it
decides, by a stated rule, whether to split and into how many children
(``2 .. max_children``), and recurses into every child, at most ``depth``
levels down. Every node says why it has the children it has, or none
(:attr:`Branch.note`, :attr:`Branch.stop`).

Rules (``rule``):

``gap`` (default)
    Tibshirani's gap statistic decides both whether to split and into how many
    children, so the depth of the tree is found, not set. On a random sample of
    at most ``sample_size`` of the node's rows (fixed seed), the node's method
    clusters the sample for ``k = 1 .. K``; ``Gap(k) = mean_b log W*_kb − log W_k``
    compares the within-cluster sum of squares ``W_k`` with that of ``B = 10``
    reference sets drawn uniformly in the box aligned with the sample's
    principal components and clustered the same way; ``s_k`` is their standard
    error. The answer is the smallest k with ``Gap(k) ≥ Gap(k+1) − s_{k+1}``
    (the standard-error rule of Tibshirani, Walther & Hastie 2001), and ``k = 1``
    is a possible answer: then the node is a leaf with "no evidence of
    structure", unless a later ``Gap(k) − s(k)`` rises clear of ``Gap(1) +
    s(1)`` (equidistant groups have no good 2-partition), when the rule is
    read again from ``k = 2`` and its k kept if its gap clears ``Gap(1) +
    s(1)`` too (:func:`k_past_a_flat_start`). Of the k
    clusters, any two whose union the same test would leave whole
    (``Gap(1) ≥ Gap(2) − s(2)`` on their rows alone) are merged
    back, nearest pairs first (:func:`merge_inseparable_pairs`): the k of
    the whole node alone cut single sub-categories in two. The children must
    separate: any two whose own mean silhouette (Rousseeuw 1987; on the
    pair's rows, a sample of at most ``sample_size``) is under
    ``min_silhouette`` (default 0.15) are merged the same way, and the mean
    silhouette of all the children must reach it too, else the node is a
    leaf with "weak structure". Last, each child must be found again when
    20 random subsamples of 80 % of the node are clustered again into as
    many clusters (Hennig's clusterwise Jaccard stability, at least
    ``min_stability``, default 0.7); the least stable joins its nearest
    sibling until all pass or two are left (:func:`merge_unstable_clusters`).
    Before any of the merging, the gap's k must also beat a Gaussian: Ward's k clusters of the node must
    leave less of its variance within them than Ward's k clusters of Gaussian rows with the node's
    (Ledoit-Wolf) covariance, by at least ``min_null_z`` (default 2.5) null standard deviations, else the node
    is a leaf, "gaussian-like" (:func:`gaussian_null_z`, SigClust's null).
    The tree is split again wherever a child answers ``k > 1``. Images far
    from every other (no ``min_size − 1`` others within 6 times the typical
    such distance, :func:`isolated_rows`) take no part in any of this and
    join the nearest child at the end: one near-blank frame had made a
    3,776-image category of the 52,682-image demo store one leaf.

    Why the stability test: pieces of one sub-category that a draw of images
    happens to show pass the gap test and the floor, and they grow with the
    repository: on the 52,682-image demo store (a quarter of the pixels) the
    test took the tree from 92 to 54 leaves for 36 sub-categories and its
    leaf NMI from 0.861 to 0.874 (``bench/tree_truth.py``).

    Why the Gaussian null: a sub-category whose images vary in a parameter drawn from a range (a zoom, a
    phase's share, a crossing angle) spreads unevenly, and the gap's uniform box reference reads that as
    groups. On ``bench/categorisation.py``'s 18 corpus draws, split over the true categories, the gap split 22
    nodes that held one sub-category (36 images each), and 21 of them had z of 1.4-2.8 against a Gaussian
    null. With the test (2.5) the 18 (corpus seed, labelled draw) pairs of both generators met the leaf-NMI
    target on 18 instead of 16 and the leaf count on 16 instead of 15
    (``bench/results/categorisation_blobs.json``); the gap alone also splits 9 of 540 Gaussian clouds of
    40-100 rows, all of which the test stops (``tests/test_splitting.py``). Its costs: its threshold is a
    test's, so it is met more easily by more rows (nodes of more than 300 rows are judged on 300, the same
    question at every size; in the 52,682-image store's tree it stopped 2 of the 36 nodes it judged, 62 → 61
    leaves); a cloud flatter than a Gaussian along one axis (a uniform slab) is clusterable beside its
    Gaussian null and may still split; and it takes power from small nodes: two groups 7.1 standard
    deviations apart in 18 dimensions score z 5.6-6.0 at 66 rows each and 4.2-4.7 at 33.

    Why the silhouette floor: the gap is a test, and a test's power grows
    with the rows it sees.  A category of thousands of images (up to 16,245
    in the 52,682-image run) shows the gap real but slight structure inside
    each sub-category (a generator's parameter drawn from a range, a few
    shapes of one kind), which 30-400 images do not: that run's tree had 490
    leaves for 36 sub-categories (42 at 1,000 images, 89 at 5,000), and
    sampling 300 instead of 2,000 rows per node still left 403.  The
    silhouette is an effect size and does not grow with the rows.  Over the
    52,682 images a floor of 0, 0.1, 0.15, 0.2 and 0.25 gave 490, 327, 125,
    24 and 10 leaves and a leaf NMI against Hierarchical of 0.72, 0.77, 0.79,
    0.75 and 0.64; on the acquisition-invariant projections of
    ``bench/categorisation.py``'s corpora (36-400 images per category) 0.1
    and 0.15 changed no figure, 0.2 and 0.25 merged some (Kaufman and
    Rousseeuw read 0.25 as the edge of "no substantial structure").  The
    floor's known cost: in many dimensions the same separation gives a
    smaller silhouette, so on the descriptor's 160 standardised columns it
    merged sub-categories the gap had split (one demo draw of three: leaf NMI
    0.829 to 0.749), and two groups 3 standard deviations apart along one of
    30 axes are one leaf (``tests/test_splitting.py``).

    Why this null and not another: the gap is the one criterion here that can
    answer "one cluster" (the silhouette and the dendrogram gap need two), and
    its null is explicit: uniform is the least favourable unimodal reference
    in one dimension (Tibshirani et al., on the choice of reference
    distribution), so a unimodal node (Gaussian, Student t, log-normal,
    correlated; see ``tests/test_splitting.py``) is not split. ``W_k`` ratios
    do not change when the rows are scaled, and the principal-component box
    follows each node's own shape and spread, so the decision does not depend
    on whether the caller standardised the features (it does depend on the
    geometry the clustering sees). Stability tests (Ben-Hur, Elisseeff &
    Guyon 2002; Lange, Roth, Braun & Buhmann 2004) were the alternative: they
    recluster many subsamples for every k and need the same on null data to
    mean anything at ``k = 1`` (Ben-Hur's score alone cannot say "no
    structure"), for several times the cost; the gap met every test without
    them, and stability serves here only after it, to merge children it
    found (above), never to decide that a node splits. Tibshirani's first-k
    rule is kept rather than a global test in the
    manner of Dudoit & Fridlyand (2002), "split if any ``Gap(k) − s_k``
    exceeds ``Gap(1)``": on skewed clouds (log-normal features) the global
    test split 11 of 72 trials at the heavy tail, the first-k rule none of
    432 unimodal trials (Gaussian, uniform, Student t, log-normal, correlated;
    60-3,000 rows, 8-40 dimensions, Ward). The first-k rule's own failure, a
    2-partition no better than none where more clusters fit far better, is
    what :func:`k_past_a_flat_start` reads past while the floor is on: it
    happens to equidistant groups (4 at a tetrahedron's vertices, 4-6
    standard deviations apart, the independent textures' particles on one
    corpus draw in three) and to spectral clustering on a disconnected
    neighbour graph. Other
    known limits: the standard-error rule is conservative, so sub-groups
    closer than about 4 standard deviations, or a few images beside a large
    group, stay in one leaf; a sample of ``sample_size`` rows cannot see a
    sub-group of a few images in a node of many thousands; and the gap counts
    clusters, not levels, so well-separated nested groups may become siblings
    under one node rather than a deeper tree (the leaves are the same).
``silhouette``
    Largest mean silhouette coefficient (Rousseeuw 1987) over ``k = 2 ..
    max_children``. Bounded in [-1, 1], so it compares partitions with
    different k on one scale, needs no reference data and works for every
    method; but it cannot answer "do not split", so every node is split down
    to ``depth`` unless its children would be too small.
``dendrogram-gap``
    The cut that survives the widest range of merge heights; free once the
    tree exists, but only for the merge trees of Ward, complete, average and
    single linkage (centroid heights invert and Density Peaks has no heights).
    Like the silhouette, it always splits.

HDBSCAN chooses its own number of clusters at every node, whatever the rule.
So does Louvain (``method="louvain"``; :func:`community_decision`): a node's
children are the Louvain communities of its 10-nearest-neighbour graph at
resolution 0.4 (:class:`~semcurate.clustering.communities.LouvainCommunities`),
those under ``min_size`` images joined to the nearest of the others, and the
node splits only where Ward's clusters of its rows, as many as the
communities, pass the Gaussian null above (``min_null_z``); then any two
communities whose own mean silhouette is under the floor (``min_silhouette``)
are merged, and the nearest of those left merged until their mean silhouette
reaches it (:func:`coarsen_until_separated`), or the node is a leaf; a node
of fewer than 30 images is a leaf (too few for a graph of 10 neighbours to
hold communities). The gap and the stability test do not take part:
modularity already asks for groups denser inside than between, and the null
asks whether such groups are more than a Gaussian's.

    Why: the gap's k with Ward's partition cannot reach the sub-categories
    that Ward cuts badly. Over ``bench/subcategory_separability.py``'s six
    corpora (two generators, three corpus seeds), the best NMI Ward reaches in
    the worst category at any k is 0.66-0.78, so no stopping rule could meet
    issue 13's floor of 0.80 with it; Louvain reaches 0.83-0.91 on five of the
    six. Split this way, ``bench/categorisation.py``'s 18 (corpus seed,
    labelled draw) pairs (``bench/results/categorisation_louvain.json``) met
    the textures' every-category floor on 8 of 9 pairs (0 with Ward and the
    gap rule), with leaf NMI 0.924 and 0.974 on average; the demo's Particles
    stays under 0.80 (its best of five clusterers at any k is 0.77-0.85).
    Why the merges: Louvain's resolution cuts a large node into more
    communities than it holds sub-categories, and their mean silhouette is
    then lower than a coarser partition's. Judged as found, the floor kept
    the demo's Patterned_surface one leaf on its own 1,300-image store (384
    images, 11 sub-categories, 6 communities of mean silhouette 0.132) and
    whole categories one leaf at 52,682 images; without the floor Louvain
    over-splits large stores (``bench/tree_truth.py``). With the merges, on
    the particle descriptor with scattering split over the 52,682-image
    store's true categories, no category stays one leaf (leaf NMI 0.906, 89
    leaves for 36, against 0.814 and 31 leaves, four categories whole).
No child has fewer than ``min_size`` images: a sub-category of one or two
images is of no use to a researcher browsing the tree (single linkage often
offers nothing else, see §4.1). The silhouette and dendrogram-gap rules pass
over partitions with such children; the gap rule, whose k counts the clusters
in the data, moves the rows of such clusters to the nearest of the others, as
the minimum cluster size of dynamic tree cutting does (Langfelder, Zhang &
Horvath 2008). On the demo corpus's ``classic`` rows (1,000 images, 36
sub-categories) this is what lets the gap rule find 3 of 3, 5 of 5 and 11 of
11 sub-categories where Ward leaves 3 to 8 stray images as a cluster.

References
----------
.. [1] R. Tibshirani, G. Walther and T. Hastie, "Estimating the number of
   clusters in a data set via the gap statistic", J. R. Stat. Soc. B 63
   (2001) 411-423.
.. [2] P. J. Rousseeuw, "Silhouettes: a graphical aid to the interpretation
   and validation of cluster analysis", J. Comput. Appl. Math. 20 (1987) 53-65.
.. [3] A. Ben-Hur, A. Elisseeff and I. Guyon, "A stability based method for
   discovering structure in clustered data", Pac. Symp. Biocomput. 7 (2002) 6-17.
.. [4] T. Lange, V. Roth, M. L. Braun and J. M. Buhmann, "Stability-based
   validation of clustering solutions", Neural Comput. 16 (2004) 1299-1323.
.. [5] S. Dudoit and J. Fridlyand, "A prediction-based resampling method for
   estimating the number of clusters in a dataset", Genome Biol. 3 (2002)
   research0036.
.. [6] P. Langfelder, B. Zhang and S. Horvath, "Defining clusters from a
   hierarchical cluster tree: the Dynamic Tree Cut package for R",
   Bioinformatics 24 (2008) 719-720.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from semcurate.clustering.agglomerative import check_observations
from semcurate.clustering.hierarchy import Cutter
from semcurate.clustering.methods import (
    AGREEING_SHARE,
    CATEGORY_BLOCK_WEIGHT,
    MIN_AGREEING_LABELS,
    MIN_NULL_Z,
    MIN_SILHOUETTE,
    MIN_STABILITY,
    MONOTONE_LINKAGES,
    OWN_COUNT_METHODS,
    SAMPLE_ROWS,
    SPLIT_RULES,
    TREE_ALGORITHMS,
)
from semcurate.clustering.n_clusters import (
    NClustersEstimate,
    column_within_sums_of_squares,
    gap_k,
    mean_silhouette,
    within_cluster_sum_of_squares,
)

#: ``B``, the uniform reference sets of the gap rule at every node (Tibshirani et al. used 10 to 20).
GAP_REFERENCES = 10
#: Random subsamples of a node clustered again to measure each child's stability (Hennig 2007 used 100 bootstrap
#: samples; 20 keep the test's cost near the gap statistic's, which clusters 11 sets per k).
STABILITY_SUBSAMPLES = 20
#: Share of a node's rows in each subsample (Ben-Hur et al. 2002 used 0.8), at most ``sample_size`` rows.
STABILITY_SHARE = 0.8
#: A row whose distance to its ``min_size − 1``-th nearest neighbour is more than this many times the median of
#: that distance is isolated, left out of the gap rule's decision (:func:`isolated_rows`). At 6 times the median, a
#: row's neighbourhood is 6^d times emptier than the typical row's in d dimensions; in the 10 categories of the
#: 52,682-image demo store (39 columns) two rows stood above it, at 12.7 and 19 times on 2,000-row samples, the
#: next at 5.9, and no row of ``bench/categorisation.py``'s 36 categories rose above 4.
ISOLATION_RATIO = 6.0
#: Sets of Gaussian rows with a node's covariance that :func:`gaussian_null_z` clusters for its null (SigClust drew
#: 1,000 for a p-value; a z-score needs only the null's mean and spread, which 30 sets give to about 15 %).
GAUSSIAN_NULL_DRAWS = 30
#: Rows of a node that :func:`gaussian_null_z` sees, at most (a random sample of larger nodes). A fixed share of the
#: variance explained gives a z that grows as the square root of the rows, so the test asks the same question of
#: every large node: would the structure show in this many images?
GAUSSIAN_NULL_ROWS = 300
#: Fewest images of a node that the Louvain rule (:func:`community_decision`) splits: three times the graph's
#: neighbours, so that a community can be more than one image's neighbourhood.
COMMUNITY_MIN_ROWS = 30
#: Least within-community share of a column's variance that :func:`community_weighted` divides by: a column its
#: communities split perfectly weighs at most 1,000 times one they leave whole.
MIN_WITHIN_SHARE = 1e-3
#: Why a leaf has no children (:attr:`Branch.stop`): the depth limit, too few images for two children of
#: ``min_size`` (Louvain: under :data:`COMMUNITY_MIN_ROWS`), identical feature rows, no evidence of structure (gap
#: rule), no partition whose children all have ``min_size`` images, children that the gap finds but that barely
#: separate (mean silhouette under ``min_silhouette``), a node whose k clusters by Ward explain no more of its
#: variance than Ward's k clusters of Gaussian rows with its covariance (z under ``min_null_z``; Louvain: k as
#: many as its communities).
STOPS = (
    "max-depth",
    "too-few-images",
    "identical-rows",
    "no-structure",
    "small-children",
    "weak-structure",
    "gaussian-like",
    "labels-agree",
)


@dataclass
class Branch:
    """One node of a sub-category tree over the rows of a feature matrix.

    ``members`` are row indices into the matrix the tree was built from;
    ``representative`` is the row of the medoid (the member with the least
    summed distance to the others). ``split_rule`` is the rule that decided
    the node's children (``None`` when no rule was asked: too few images, or
    the depth limit) and ``split_scores`` its score per candidate k (for the
    gap rule ``Gap(k)`` from k = 1). ``note`` is one sentence on why the node
    has the children it has, or none, with the numbers that decided it;
    ``stop`` is empty for a node with children and one of :data:`STOPS` for a leaf.
    """

    members: np.ndarray
    representative: int
    children: list[Branch] = field(default_factory=list)
    split_rule: str | None = None
    split_scores: dict[int, float] = field(default_factory=dict)
    note: str = ""
    stop: str = ""

    def walk(self, path: tuple[int, ...] = ()):
        """``(path, branch)`` for this node and every descendant, depth first; children are numbered from 1."""
        yield path, self
        for number, child in enumerate(self.children, start=1):
            yield from child.walk((*path, number))


class Decision(NamedTuple):
    """A rule's answer at one node: the children's labels (``None``: a leaf), scores per k, why, and the leaf's stop."""

    labels: np.ndarray | None
    scores: dict[int, float]
    note: str
    stop: str = ""


def stop_where_labels_agree(
    category: Branch,
    known: np.ndarray,
    *,
    min_labels: int = MIN_AGREEING_LABELS,
    share: float = AGREEING_SHARE,
) -> int:
    """Make a leaf of every node below ``category`` whose labelled images agree on one sub-category; how many.

    A node under the category (never the category itself) that has children, at least ``min_labels`` members
    with a label in ``known``, and at least ``share`` of those labels equal, loses its children: its stop becomes
    ``labels-agree`` and its note says so. A node is visited before its children, so those of a stopped node are
    never visited.

    Why: a split is judged by how separate its children are, and with more images a test resolves finer
    structure, so at 20,000 images the tree cut true sub-categories of about 490 images into 2 to 5 pieces
    (77 leaves for 36). A repository's own sub-category labels, where it has some (the thesis' Hierarchical
    set), say where its curators stop: this only ever stops a split, never makes one, and uses no new label.

    Parameters
    ----------
    category : Branch
        A category's tree from :func:`split`; changed in place.
    known : ndarray of object, shape (n_rows,)
        Sub-category label of each row of the matrix the tree's ``members`` index (``None``: unlabelled).
    min_labels : int
        Fewest labelled members a node needs before its labels may stop it.
    share : float
        Least share of a node's labelled members that must carry its most common label, in (0.5, 1].

    Returns
    -------
    int
        Nodes made leaves.

    Examples
    --------
    >>> piece = lambda rows: Branch(members=np.array(rows), representative=rows[0])
    >>> top = Branch(members=np.arange(12), representative=0, children=[piece(range(6)), piece(range(6, 12))])
    >>> top.children[0].children = [piece(range(3)), piece(range(3, 6))]
    >>> known = np.array(["a/x"] * 5 + [None] + ["a/y"] * 6, dtype=object)
    >>> stop_where_labels_agree(top, known)
    1
    >>> len(top.children), top.children[0].children, top.children[0].stop
    (2, [], 'labels-agree')
    """
    check_agreeing_share(share)
    stopped = 0
    pending = list(category.children)
    while pending:
        node = pending.pop()
        if not node.children:
            continue
        agreement = agreeing_label(node, known, min_labels=min_labels, share=share)
        if agreement:
            node.note += f"; not split further: {agreement}"
            node.children, node.stop = [], "labels-agree"
            stopped += 1
        else:
            pending.extend(node.children)
    return stopped


def merge_agreeing_siblings(
    category: Branch,
    known: np.ndarray,
    values: np.ndarray,
    *,
    min_labels: int = MIN_AGREEING_LABELS,
    share: float = AGREEING_SHARE,
    sample_size: int = SAMPLE_ROWS,
    random_state: int = 0,
) -> int:
    """Merge the sibling leaves of ``category``'s tree whose labelled images agree on the same sub-category; how
    many leaves were merged away.

    Leaves with one parent whose labels agree (at least ``min_labels`` labelled members, ``share`` of them one
    sub-category, as in :func:`stop_where_labels_agree`) on the same sub-category become one leaf: the union of
    their members, its medoid recomputed on ``values``, stop ``labels-agree``. A node left with one child becomes
    that leaf itself (a category whose every child agrees on one sub-category becomes a leaf). Nodes are visited
    children first, so a node that becomes a leaf may then merge with its own siblings.

    Why: :func:`stop_where_labels_agree` only removes splits below a node, never a category's first split, and
    at 20,000 images the first level alone over-split four categories (Films 6 leaves for 3 sub-categories,
    Tips 4 for 3, Powder 3 for 2, Porous_Sponge 2 for 1). Like the stop, this only undoes splits the labels
    contradict; it makes none and uses no new label. Leaves whose labels do not agree, or that have too few,
    stay as the split left them. There, with the Hierarchical set (6.5 % of the images), it took the stopped
    tree from 56 leaves for 36 to 53 (Films 7 → 6, Tips 4 → 3, Powder 3 → 2; Porous_Sponge has no such label),
    leaf NMI 0.913 → 0.919 and the worst category 0.740 → 0.797 (``bench/results/tree_truth_20000_demo.json``).

    Parameters
    ----------
    category : Branch
        A category's tree from :func:`split` (after :func:`stop_where_labels_agree`); changed in place.
    known : ndarray of object, shape (n_rows,)
        Sub-category label of each row of ``values`` (``None``: unlabelled).
    values : ndarray of shape (n_rows, n_features)
        The rows the tree's ``members`` index, preprocessed as for the split: the merged leaves' medoids.
    min_labels, share
        As :func:`stop_where_labels_agree`.
    sample_size, random_state
        As :func:`split`: the sample on which the medoid of a larger merged leaf is found.

    Returns
    -------
    int
        Leaves merged away: the number of leaves before less the number after.

    Examples
    --------
    >>> piece = lambda rows: Branch(members=np.array(rows), representative=rows[0], stop="gaussian-like")
    >>> top = Branch(members=np.arange(18), representative=0, children=[piece(range(6)), piece(range(6, 12)),
    ...     piece(range(12, 18))])
    >>> known = np.array(["a/x"] * 12 + ["a/y"] * 6, dtype=object)
    >>> merge_agreeing_siblings(top, known, np.arange(18.0)[:, None])
    1
    >>> [(child.members.tolist()[:3], child.stop) for child in top.children]
    [([0, 1, 2], 'labels-agree'), ([12, 13, 14], 'gaussian-like')]
    """
    check_agreeing_share(share)
    merged_away = 0
    for _, node in reversed(list(category.walk())):
        groups: dict[str, list[Branch]] = {}
        for child in node.children:
            agreement = None if child.children else agreeing_label(child, known, min_labels=min_labels, share=share)
            if agreement:
                groups.setdefault(agreement.label, []).append(child)
        joined = {id(child) for group in groups.values() if len(group) > 1 for child in group}
        if not joined:
            continue
        children = [child for child in node.children if id(child) not in joined]
        for group in (group for group in groups.values() if len(group) > 1):
            rows = np.sort(np.concatenate([child.members for child in group]))
            leaf = Branch(
                members=rows,
                representative=int(rows[medoid(values[rows], sample_size=sample_size, random_state=random_state)]),
                stop="labels-agree",
            )
            agreement = agreeing_label(leaf, known, min_labels=1, share=share)
            leaf.note = f"{len(group)} sibling leaves merged: {agreement}"
            children.append(leaf)
            merged_away += len(group) - 1
        if len(children) == 1:
            node.note += f"; its {len(node.children)} children merged back: {agreement}"
            node.children, node.stop, node.split_rule, node.split_scores = [], "labels-agree", None, {}
        else:
            node.children = sorted(children, key=lambda child: -len(child.members))
    return merged_away


class Agreement(NamedTuple):
    """The sub-category most of a node's labelled images carry: ``agreeing`` of its ``labelled`` are ``label``."""

    label: str
    agreeing: int
    labelled: int

    def __str__(self) -> str:
        return (
            f"{self.agreeing} of its {self.labelled} images with a sub-category label "
            f"({self.agreeing / self.labelled:.0%}) are {self.label}"
        )


def agreeing_label(node: Branch, known: np.ndarray, *, min_labels: int, share: float) -> Agreement | None:
    """The sub-category on which ``node``'s labelled members agree (``None``: under ``min_labels`` or ``share``)."""
    labels = [str(label) for label in known[node.members] if label is not None]
    if len(labels) < max(min_labels, 1):
        return None
    label, count = Counter(labels).most_common(1)[0]
    return Agreement(label, count, len(labels)) if count >= share * len(labels) else None


def check_agreeing_share(share: float) -> None:
    """Refuse a share at which two sub-categories could both hold most of a node's labels."""
    if not 0.5 < share <= 1:
        raise ValueError(f"share must be in (0.5, 1]; got {share}")


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


def candidate_partitions(values: np.ndarray, method: str, ks: Iterable[int], *, random_state: int = 0):
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


def admissible(labels: np.ndarray, min_size: int) -> bool:
    """Whether ``labels`` make at least two children of at least ``min_size`` images each (HDBSCAN noise, -1, aside)."""
    clustered = labels[labels >= 0]
    return len(np.unique(clustered)) > 1 and int(np.bincount(clustered).min()) >= min_size


def gap_decision(
    values: np.ndarray,
    method: str,
    most_children: int,
    *,
    min_size: int,
    sample_size: int,
    random_state: int,
    min_silhouette: float = MIN_SILHOUETTE,
    min_stability: float = MIN_STABILITY,
    min_null_z: float = MIN_NULL_Z,
) -> Decision:
    """The gap rule at one node: Tibshirani's k on a sample of ``sample_size`` rows, then that k on all rows.

    ``Gap(k)`` for ``k = 1 .. most_children`` by :func:`~semcurate.clustering.n_clusters.estimate_n_clusters`
    with :data:`GAP_REFERENCES` reference sets; k = 1 makes a leaf ("no-structure"), unless the floor is on and
    a later gap clears ``Gap(1)`` (:func:`k_past_a_flat_start` gives k then). If Ward's k clusters of the rows
    leave no less of the node's variance within them than ``min_null_z`` null standard deviations under what
    Ward's k clusters of Gaussian rows with the node's covariance leave (:func:`gaussian_null_z`; 0 turns the
    test off), the node is a leaf ("gaussian-like"). Otherwise all rows are partitioned into k by ``method``;
    clusters under ``min_size`` images (stray images, which Ward and complete
    linkage leave as clusters of their own) join the nearest of the others (:func:`absorb_small_clusters`), and
    when fewer than two clusters of ``min_size`` remain the node is a leaf too ("small-children").  Pairs of
    clusters that barely separate or whose union shows no structure are merged (:func:`merge_inseparable_pairs`);
    a node left with one cluster, or whose final children have a mean silhouette (on a sample of ``sample_size``
    rows) under ``min_silhouette``, is a leaf ("weak-structure", or "no-structure" when only the union test
    merged; 0 turns the floor off, and with it the reading past a flat start).  Children that subsamples of the
    node do not find again (mean Jaccard under ``min_stability``) join their nearest sibling, down to two
    (:func:`merge_unstable_clusters`; 0 turns the test off).
    Rows far from every other (:func:`isolated_rows`) are left out of all of this and then join the nearest
    child, so that one odd image can neither hide the node's structure from the gap nor take a cluster of
    Ward's.
    Cost: one nearest-neighbour query of the node, ``(1 + B) · most_children`` clusterings of the sample (one
    merge tree each for the hierarchical methods), then :data:`GAUSSIAN_NULL_DRAWS` clusterings of at most
    :data:`GAUSSIAN_NULL_ROWS` Gaussian rows, then one clustering of the node, then the pair tests of
    :func:`merge_inseparable_pairs`, then :data:`STABILITY_SUBSAMPLES` clusterings of a subsample for every child
    the stability test merges, and once more.
    """
    node_size = len(values)
    isolated = isolated_rows(values, min_size)
    rows_kept = node_size - int(isolated.sum())
    children_of_kept = min(most_children, rows_kept // max(min_size, 1), rows_kept - 1)
    if isolated.any() and children_of_kept >= 2:
        node_values, values, most_children = values, values[~isolated], children_of_kept
    else:
        node_values, isolated = values, np.zeros(node_size, dtype=bool)
    n = len(values)
    estimate, seen_rows = gap_estimate(
        values, method, most_children, sample_size=sample_size, random_state=random_state
    )
    gap = dict(zip(estimate.ks, estimate.scores, strict=True))
    bar = {k: g - s for k, g, s in zip(estimate.ks, estimate.scores, estimate.gap_sd or (), strict=True)}
    k = estimate.best_k
    seen = f"{seen_rows} of {node_size} images" if seen_rows < node_size else f"{node_size} images"
    if isolated.any():
        seen += f", {node_size - n} far from every other left out"
    flat_start = ""
    if k == 1:
        # read past a flat start only where the silhouette floor can undo a split of a skewed cloud's tail
        k = k_past_a_flat_start(estimate) if min_silhouette > 0 else None
        if k is None:
            note = f"no evidence of structure: Gap(1) = {gap[1]:.4f} ≥ Gap(2) − s(2) = {bar[2]:.4f} ({seen})"
            return Decision(None, gap, note, "no-structure")
        flat_start = (
            f"Gap(1) = {gap[1]:.4f} ≥ Gap(2) − s(2) = {bar[2]:.4f}, but a later Gap(k) − s(k) clears "
            f"Gap(1) + s(1) = {gap[1] + estimate.gap_sd[0]:.4f}; from k = 2, "
        )
    if k < most_children:
        note = (
            f"gap statistic: {flat_start}Gap({k}) = {gap[k]:.4f} ≥ Gap({k + 1}) − s({k + 1}) = {bar[k + 1]:.4f} "
            f"({seen})"
        )
    else:
        note = f"gap statistic: {flat_start}still rising at k = {k}, the most children allowed here ({seen})"
    if min_null_z > 0:
        null_z = gaussian_null_z(values, k, random_state=random_state)
        if null_z < min_null_z:
            return Decision(None, gap, note + gaussian_null_clause(k, null_z, min_null_z), "gaussian-like")
    labels = candidate_partitions(values, method, [k], random_state=random_state)[0][k]
    counts = np.bincount(labels)
    kept = np.flatnonzero(counts >= min_size)
    if len(kept) < 2:
        note += f"; but the {k} clusters of all {n} images leave fewer than two of ≥ {min_size} images"
        return Decision(None, gap, note, "small-children")
    if len(kept) < k:
        note += absorbed_clause(counts, kept, min_size, "cluster", "clusters")
    labels = absorb_small_clusters(values, labels, kept)
    labels, merges = merge_inseparable_pairs(
        values, labels, method, sample_size=sample_size, random_state=random_state, min_silhouette=min_silhouette
    )
    if merges.unstructured or merges.weak:
        left = int(labels.max()) + 1
        reasons = []
        if merges.unstructured:
            reasons.append(
                f"{merges.unstructured} pair{'s' if merges.unstructured > 1 else ''} of clusters whose union shows "
                "no structure"
            )
        if merges.weak:
            reasons.append(
                f"{merges.weak} pair{'s' if merges.weak > 1 else ''} whose silhouette is under {min_silhouette:g}"
            )
        note += f"; {' and '.join(reasons)} merged, leaving {left}"
        if left < 2:
            return Decision(None, gap, note, "weak-structure" if merges.weak else "no-structure")
    if min_silhouette > 0:
        separation = mean_silhouette(values, labels, sample_size=sample_size, random_state=random_state)
        if separation < min_silhouette:
            note += f"; but the children's mean silhouette {separation:.3f} is under {min_silhouette:g}"
            return Decision(None, gap, note, "weak-structure")
    if min_stability > 0:
        labels, unstable = merge_unstable_clusters(
            values, labels, method, min_stability=min_stability, sample_size=sample_size, random_state=random_state
        )
        if unstable:
            note += (
                f"; {unstable} cluster{'s' if unstable > 1 else ''} that subsamples do not find again (mean Jaccard "
                f"under {min_stability:g}) joined the nearest, leaving {int(labels.max()) + 1}"
            )
    if isolated.any():
        children = int(labels.max()) + 1
        with_isolated = np.full(node_size, children)
        with_isolated[~isolated] = labels
        labels = absorb_small_clusters(node_values, with_isolated, np.arange(children))
        note += f"; {'the image' if node_size - n == 1 else f'the {node_size - n} images'} far from every other "
        note += "then joined the nearest child"
    return Decision(labels, gap, note)


def absorbed_clause(counts: np.ndarray, kept: np.ndarray, min_size: int, one: str, many: str) -> str:
    """The note's clause on clusters under ``min_size`` images (sizes ``counts``; ``kept`` the others) joining
    the nearest kept one; ``one`` and ``many`` name a cluster and several."""
    small = len(counts) - len(kept)
    return (
        f"; {int(counts.sum() - counts[kept].sum())} images in {small} {one if small == 1 else many} under "
        f"{min_size} images joined the nearest of the other {len(kept)}"
    )


def gaussian_null_clause(k: int, null_z: float, min_null_z: float) -> str:
    """The note's clause on the Gaussian null (:func:`gaussian_null_z`) at ``k`` clusters: passed, or why not."""
    if null_z < min_null_z:
        return (
            f"; but Ward's {k} clusters of its rows leave no less of the variance within them than Ward's {k} "
            f"clusters of Gaussian rows with the node's covariance do (z = {null_z:.2f} < {min_null_z:g})"
        )
    return (
        f"; Ward's {k} clusters of its rows leave {null_z:.2f} null standard deviations less of the variance "
        f"within them than Ward's {k} clusters of Gaussian rows with the node's covariance (≥ {min_null_z:g})"
    )


def community_decision(
    values: np.ndarray,
    *,
    min_size: int,
    sample_size: int,
    random_state: int,
    min_silhouette: float = MIN_SILHOUETTE,
    min_null_z: float = MIN_NULL_Z,
) -> Decision:
    """The Louvain rule at one node: the communities of its nearest-neighbour graph, kept where Ward's as many
    clusters beat the Gaussian null.

    The Louvain communities of the node's rows
    (:class:`~semcurate.clustering.communities.LouvainCommunities`, its default neighbours and resolution) under
    ``min_size`` images join the nearest of the others (:func:`absorb_small_clusters`); with fewer than two left
    the node is a leaf ("no-structure" when Louvain found one community, else "small-children"). It is a leaf
    too ("gaussian-like") where Ward's as many clusters of its rows leave no less of the variance within them
    than ``min_null_z`` null standard deviations under what Ward's clusters of Gaussian rows with the node's
    covariance leave (:func:`gaussian_null_z`; 0 turns the test off). Then, with the floor on
    (``min_silhouette`` > 0), any two communities whose own mean silhouette is under it are merged, the nearest
    pairs first (:func:`merge_inseparable_pairs` without its union test), and the nearest of those left are
    merged until their mean silhouette (on a sample of ``sample_size`` rows) reaches the floor
    (:func:`coarsen_until_separated`); fewer than two left, or two still under the floor: a leaf
    ("weak-structure"). Otherwise the node splits into the groups left.
    A node of fewer than :data:`COMMUNITY_MIN_ROWS` images is a leaf ("too-few-images").
    The null's known cost: a cloud flatter than a Gaussian (a uniform box) beats it and is split, where the gap
    rule, whose reference is uniform, keeps it whole (``tests/test_communities.py``).
    Scores: ``{number of children: z}`` (``nan`` with the test off).
    Cost: one neighbour query and one Louvain run over the node, the silhouettes of at most ``k (k - 1) / 2``
    pairs and of at most k partitions (k communities, each on at most ``sample_size`` rows), then
    :data:`GAUSSIAN_NULL_DRAWS` Ward merge trees of at most :data:`GAUSSIAN_NULL_ROWS` Gaussian rows and one of
    the node's rows (at most as many).
    """
    from semcurate.clustering.communities import LouvainCommunities

    n = len(values)
    if n < COMMUNITY_MIN_ROWS:
        note = f"{n} images: fewer than {COMMUNITY_MIN_ROWS}, too few for a nearest-neighbour graph to hold communities"
        return Decision(None, {}, note, "too-few-images")
    labels = LouvainCommunities(random_state=random_state).fit(values).labels_
    found = int(labels.max()) + 1
    counts = np.bincount(labels)
    kept = np.flatnonzero(counts >= min_size)
    note = f"Louvain found {found} {'community' if found == 1 else 'communities'} in the neighbour graph of {n} images"
    if len(kept) < 2:
        if found > 1:
            note += f", fewer than two of ≥ {min_size} images"
        return Decision(None, {}, note, "small-children" if found > 1 else "no-structure")
    if len(kept) < found:
        note += absorbed_clause(counts, kept, min_size, "community", "communities")
    labels = absorb_small_clusters(values, labels, kept)
    k = len(kept)
    null_z = float("nan")
    if min_null_z > 0:
        null_z = gaussian_null_z(values, k, random_state=random_state)
        note += gaussian_null_clause(k, null_z, min_null_z)
        if null_z < min_null_z:
            return Decision(None, {k: null_z}, note, "gaussian-like")
    if min_silhouette > 0:
        labels, merges = merge_inseparable_pairs(
            values, labels, None, sample_size=sample_size, random_state=random_state, min_silhouette=min_silhouette
        )
        left = int(labels.max()) + 1
        if merges.weak:
            note += (
                f"; {merges.weak} pair{'s' if merges.weak > 1 else ''} whose silhouette is under {min_silhouette:g} "
                f"merged, leaving {left}"
            )
        if left < 2:
            return Decision(None, {k: null_z}, note, "weak-structure")
        labels, coarsened, separation = coarsen_until_separated(
            values, labels, min_silhouette=min_silhouette, sample_size=sample_size, random_state=random_state
        )
        if coarsened:
            note += (
                f"; the nearest of them merged {coarsened} time{'s' if coarsened > 1 else ''} for a mean "
                f"silhouette of {min_silhouette:g}, leaving {int(labels.max()) + 1}"
            )
        if separation < min_silhouette:
            note += f"; but the communities' mean silhouette {separation:.3f} is under {min_silhouette:g}"
            return Decision(None, {k: null_z}, note, "weak-structure")
    return Decision(labels, {k: null_z}, note)


def isolated_rows(values: np.ndarray, min_size: int, *, ratio: float = ISOLATION_RATIO) -> np.ndarray:
    """Which rows stand far from every other: their distance to their ``min_size − 1``-th nearest neighbour is
    more than ``ratio`` times the median of that distance over all rows (Euclidean; a boolean mask).

    Why: the gap's reference sets fill the box that the rows span along their principal axes, and one image far
    from the rest stretches that box along its own axis until clustering the uniform reference gains more than
    clustering the real groups does; Ward then spends a cluster on it too. On the 52,682-image demo store one
    near-blank frame (intensity kurtosis 202 where the others' median is 1.1) in the 2,000-row sample of Tips
    (3,776 images, 3 sub-categories) made Gap(1) the largest gap and the category one leaf. Fewer than
    ``min_size`` rows can never make a child, so a row with fewer than ``min_size − 1`` others near it carries no
    evidence for or against a split. A group of ``min_size`` rows far from the rest is not isolated (each has its
    neighbours), nor is any row when ``min_size`` is 1, nor when most rows are duplicates (the median distance
    is 0).

    Cost: one nearest-neighbour query of the rows (scikit-learn's ``NearestNeighbors``).

    Examples
    --------
    A row 50 standard deviations from a Gaussian cloud is isolated; five rows together there are not:

    >>> rng = np.random.default_rng(0)
    >>> cloud = rng.normal(0, 1, (200, 5))
    >>> np.flatnonzero(isolated_rows(np.vstack([cloud, np.full((1, 5), 50.0)]), 5)).tolist()
    [200]
    >>> bool(isolated_rows(np.vstack([cloud, 50 + rng.normal(0, 1, (5, 5))]), 5).any())
    False
    """
    from sklearn.neighbors import NearestNeighbors

    values = np.asarray(values, dtype=np.float64)
    none = np.zeros(len(values), dtype=bool)
    if min_size < 2 or len(values) < min_size:
        return none
    distances, _ = NearestNeighbors(n_neighbors=min_size - 1).fit(values).kneighbors()
    reach = distances[:, -1]
    typical = float(np.median(reach))
    return reach > ratio * typical if typical > 0 else none


def within_cluster_share(values: np.ndarray, labels: np.ndarray) -> float:
    """``W / T``: the share of the rows' total sum of squares about their mean that stays within the clusters of
    ``labels`` (1 for one cluster, 0 when every cluster is a point; Liu et al.'s "cluster index").

    Examples
    --------
    Two pairs 10 apart, each pair 1 apart: each pair keeps 2 × 0.5² of the total 4 × 5² + 4 × 0.5²:

    >>> values = np.array([[0.0], [1.0], [10.0], [11.0]])
    >>> round(within_cluster_share(values, np.array([0, 0, 1, 1])), 6)
    0.009901
    """
    total = within_cluster_sum_of_squares(values, np.zeros(len(values), dtype=int))
    return within_cluster_sum_of_squares(values, labels) / total if total > 0 else 1.0


def gaussian_null_z(
    values: np.ndarray,
    k: int,
    *,
    rows: int = GAUSSIAN_NULL_ROWS,
    draws: int = GAUSSIAN_NULL_DRAWS,
    random_state: int = 0,
) -> float:
    """How many null standard deviations the within-cluster share of Ward's ``k`` clusters of the rows lies under
    what Ward's ``k`` clusters reach on Gaussian rows of the rows' own covariance.

    ``z = (mean CI* − CI) / sd CI*``, with ``CI`` the :func:`within_cluster_share` of Ward's partition of the
    rows into ``k`` and ``CI*`` that of Ward's partition of each of ``draws`` sets of Gaussian rows with the
    rows' covariance (the null of SigClust, Liu, Hayes, Nobel & Marron 2008, there with 2-means, which like Ward
    seeks the least within-cluster sum of squares). Ward, whatever method splits the node: average linkage and
    Density Peaks often cut a Gaussian into one point and the rest, so their null spreads from 0.44 to 0.93
    and two groups 8 standard deviations apart scored only z = 2.3 by their own partitions (6.9 by Ward's). The
    covariance is Ledoit and Wolf's shrinkage estimate (scikit-learn's ``LedoitWolf``), not the sample
    covariance: with about as many columns as rows the sample covariance's eigenvalues spread far apart, and a
    Gaussian of that covariance fits the rows' own shape, groups included (two groups of 25 rows 6.3 standard
    deviations apart in 100 columns, scored by their own labels: z 1.8-1.95 with the sample covariance, 11.5-12
    with the shrunk one).
    Nodes of more than ``rows`` rows are judged on a random sample of ``rows`` (see :data:`GAUSSIAN_NULL_ROWS`);
    each null set has as many rows as were judged.

    Why: the gap's uniform reference cannot tell real groups from one cloud whose rows spread unevenly. In
    ``bench/categorisation.py``'s 18 corpus draws, split over the true categories with Ward on the
    acquisition-invariant projection (25-40 columns), 21 of the 22 nodes that split a single sub-category (36
    images each) had ``z`` of 1.4-2.8 (the last 3.1), against 3.2-27 for 42 of the 50 nodes that held several
    (the other 8, of 36-109 images, 1.2-2.9); at :data:`~semcurate.clustering.methods.MIN_NULL_Z` (2.5) the
    test stops 19 of the 22 and 6 of the 50. A single Gaussian's own Ward partition has ``z`` about 0 (its
    spread is the null's; ``tests/test_splitting.py``).

    Cost: one covariance estimate and eigen-decomposition (``d × d``), then ``draws`` clusterings of as many
    Gaussian rows as were judged, in ``d`` dimensions.

    Examples
    --------
    Three groups 6 standard deviations from each other lie far below the null; Ward's halves of one Gaussian
    cloud do not:

    >>> rng = np.random.default_rng(0)
    >>> groups = np.vstack([rng.normal(0, 1, (40, 5)) + 6 / np.sqrt(2) * np.eye(5)[axis] for axis in range(3)])
    >>> gaussian_null_z(groups, 3) > 10
    True
    >>> gaussian_null_z(rng.normal(0, 1, (120, 5)), 2) < MIN_NULL_Z
    True
    """
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(random_state)
    values = np.asarray(values, dtype=np.float64)
    if len(values) > rows:
        values = values[np.sort(rng.choice(len(values), rows, replace=False))]
    observed = within_cluster_share(values, candidate_partitions(values, "ward", [k])[0][k])
    spread = np.sqrt(np.clip(np.linalg.eigvalsh(LedoitWolf().fit(values).covariance_), 0.0, None))
    null = np.empty(draws)
    for draw in range(draws):
        gaussian = rng.standard_normal((len(values), len(spread))) * spread
        null[draw] = within_cluster_share(gaussian, candidate_partitions(gaussian, "ward", [k])[0][k])
    return float((null.mean() - observed) / max(float(null.std()), np.finfo(np.float64).tiny))


def gap_estimate(values: np.ndarray, method: str, most_children: int, *, sample_size: int, random_state: int):
    """``(estimate, rows seen)``: Tibshirani's gap for ``k = 1 .. most_children`` by
    :func:`~semcurate.clustering.n_clusters.estimate_n_clusters` with :data:`GAP_REFERENCES` reference sets, on a
    random sample (seeded by ``random_state``) of at most ``sample_size`` of the rows."""
    from semcurate.clustering.n_clusters import estimate_n_clusters

    if len(values) > sample_size:
        values = values[np.sort(np.random.default_rng(random_state).choice(len(values), sample_size, replace=False))]
    estimate = estimate_n_clusters(
        values,
        "gap",
        range(1, most_children + 1),
        algorithm=method,
        n_references=GAP_REFERENCES,
        random_state=random_state,
    )
    return estimate, len(values)


def k_past_a_flat_start(estimate: NClustersEstimate) -> int | None:
    """Tibshirani's k counted from k = 2, where his rule says 1 only because ``Gap(2)`` is no clear rise.

    Equidistant sub-groups (the vertices of a regular simplex) have no good
    2-partition: any cut leaves whole groups together, so ``Gap(2)`` stays
    within a standard error of ``Gap(1)`` or falls below it, and the first-k
    rule can stop at 1 however far apart the groups are (4 groups at a
    tetrahedron's vertices, 4-6 standard deviations apart; the independent
    textures' 4 kinds of particles on one corpus draw of three).  When a
    later ``Gap(k) − s(k)`` rises above ``Gap(1) + s(1)``, the rule is
    applied again from ``k = 2``, and its k is kept if it clears ``Gap(1) +
    s(1)`` the same way (a k whose gap is no better than none is what the
    first-k rule rightly refused); otherwise (and whenever the first-k rule
    did not answer 1) this is None.  This alone is Dudoit and Fridlyand's
    global test, which split skewed unimodal clouds at their tail; the
    second condition is what keeps this from it, and the children must
    still pass the pair merges and the silhouette floor of
    :func:`gap_decision` (which reads past a flat start only while the floor
    is on). ``bench/gap_null.py``: on 480 unimodal clouds (5 shapes,
    60-3,000 rows, 8-40 dimensions) it fires on none (without the second
    condition on 8, all log-normal, which the floor merged back; the one
    cloud left split, 60 correlated rows, is the first-k rule's own); 4
    equidistant groups 4, 5 and 6 standard deviations apart are found in
    18 draws of 18 instead of 8. Its cost where the gap already over-splits,
    at size: on a 5,000-image demo store it fires at 7 nodes, 6 are merged
    back, and the one left split adds 3 leaves to 72
    (``bench/results/tree_truth_5000_flat_start.json``).

    Parameters
    ----------
    estimate : NClustersEstimate
        A gap estimate for ``k = 1, 2, ...`` (:func:`gap_estimate`).

    Returns
    -------
    int or None
        The k of the standard-error rule over ``k ≥ 2``, or None.

    Examples
    --------
    >>> from semcurate.clustering.n_clusters import NClustersEstimate
    >>> flat_start = NClustersEstimate("gap", (1, 2, 3, 4, 5), (0.5, 0.52, 0.7, 1.0, 0.9), 1, (0.03,) * 5)
    >>> k_past_a_flat_start(flat_start)
    4
    >>> no_rise = NClustersEstimate("gap", (1, 2, 3), (0.5, 0.45, 0.52), 1, (0.03,) * 3)
    >>> k_past_a_flat_start(no_rise) is None
    True

    Gap(4) clears Gap(1) + s(1), but the rule read from k = 2 stops at 2, which does not:

    >>> stops_at_two = NClustersEstimate("gap", (1, 2, 3, 4), (0.5, 0.52, 0.5, 0.6), 1, (0.03,) * 4)
    >>> k_past_a_flat_start(stops_at_two) is None
    True
    """
    gap, gap_sd = np.asarray(estimate.scores, dtype=float), np.asarray(estimate.gap_sd, dtype=float)
    clears = gap - gap_sd > gap[0] + gap_sd[0]
    if estimate.best_k != 1 or len(gap) < 3 or not clears[2:].any():
        return None
    k = gap_k(estimate.ks[1:], gap[1:], gap_sd[1:])
    return k if clears[list(estimate.ks).index(k)] else None


def union_is_structured(values: np.ndarray, method: str, *, sample_size: int, random_state: int) -> bool:
    """Whether the gap rule would split ``values`` as a node of its own: ``Gap(1) < Gap(2) − s(2)``
    (:func:`gap_estimate` up to two clusters)."""
    return gap_estimate(values, method, 2, sample_size=sample_size, random_state=random_state)[0].best_k > 1


class PairMerges(NamedTuple):
    """How many pairs of sibling clusters :func:`merge_inseparable_pairs` merged, by reason."""

    #: pairs whose union the gap rule would leave whole (:func:`union_is_structured` is false)
    unstructured: int
    #: pairs whose own mean silhouette, on their rows alone, is under the floor
    weak: int


def ward_merge_costs(values: np.ndarray, labels: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Ward's cost of merging each pair of ``clusters`` of ``labels``, ``n_a n_b / (n_a + n_b) · |c_a − c_b|²``
    (sizes ``n``, centroids ``c``): how much the within-cluster sum of squares grows; a ``k × k`` array, 0 on the
    diagonal."""
    sizes = np.array([np.sum(labels == cluster) for cluster in clusters], dtype=np.float64)
    centroids = np.array([values[labels == cluster].mean(axis=0) for cluster in clusters])
    squared = ((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return sizes[:, None] * sizes[None, :] / (sizes[:, None] + sizes[None, :]) * squared


def merge_inseparable_pairs(
    values: np.ndarray,
    labels: np.ndarray,
    method: str | None,
    *,
    sample_size: int,
    random_state: int,
    min_silhouette: float = 0.0,
) -> tuple[np.ndarray, PairMerges]:
    """Merge pairs of clusters of ``labels`` that barely separate (their mean silhouette, on the pair's rows
    alone, under ``min_silhouette``) or whose union the gap rule would not split with ``method`` (``None``: no
    union test, as for Louvain's communities); return the labels renumbered ``0 ..`` and the merges by reason
    (:class:`PairMerges`).

    Why the union test: Tibshirani's k counts the clusters of the whole node
    against one reference, and on a node of a few hundred images in tens of
    dimensions it cut single sub-categories in two (the demo's specimens on
    the acquisition-invariant projection: 45 leaves for 36 sub-categories, 5
    of them halved into pieces of 10-26 images).  Each piece, tested as a
    node, stops; their union, tested as a node, stops too.  So the tree keeps
    the rule's own promise at every level: no two sibling leaves whose union
    it would have left whole.

    Why the silhouette of each pair: the node's floor (``min_silhouette`` in
    :func:`gap_decision`) judges the mean silhouette of all the children, which
    children far from the rest keep high while two of them barely separate.
    A large category shows the gap slight structure inside one sub-category
    (a generator's parameter range), and such pieces, siblings beside
    well-separated ones, passed the node's floor: on the 5,000-image demo
    store (half-size images) the pairwise floor at the node's 0.15 took the
    stored tree from 68 to 65 leaves for 36 and its leaf NMI from 0.881 to
    0.891 (``bench/tree_truth.py``); on ``bench/categorisation.py``'s
    1,300-image corpora it changed one of 18 trees by one leaf.  0 turns it
    off.

    Pairs are tested in the order of Ward's merge cost, ``n_a n_b / (n_a +
    n_b) · |c_a − c_b|²`` (centroids ``c``), the nearest first; a merged
    cluster is tested again with every other, and no pair is tested twice.
    Testing only each cluster's nearest partner missed merges (47 leaves
    instead of 43 on one draw of the demo's specimens).  A node of k clusters
    costs at most ``k (k − 1) / 2`` tests (28 at 8 children), each a
    silhouette of the pair's rows and, for a pair that separates, 11
    clusterings of them, sampled as the gap rule samples: on well-separated
    clusters, where nothing merges, that is all of them.  Measured with Ward
    on one thread, 5,000 rows × 37 columns in 8 separated clusters: the node
    took 17.7 s instead of 2.4 s without the union test.

    Examples
    --------
    Two pieces of one Gaussian cloud are merged; a cloud far from them is not:

    >>> rng = np.random.default_rng(0)
    >>> values = np.vstack([rng.normal(0, 1, (60, 2)), rng.normal(12, 1, (30, 2))])
    >>> pieces = np.r_[(values[:60, 0] > 0).astype(int), np.full(30, 2)]
    >>> merged, merges = merge_inseparable_pairs(values, pieces, "ward", sample_size=2000, random_state=0)
    >>> merges, np.bincount(merged).tolist()
    (PairMerges(unstructured=1, weak=0), [60, 30])
    """
    labels = np.unique(labels, return_inverse=True)[1]
    tested: set[frozenset[int]] = set()
    unstructured = weak = 0
    while labels.max() > 0:
        clusters = np.unique(labels)
        cost = ward_merge_costs(values, labels, clusters)
        pairs = sorted((float(cost[a, b]), a, b) for a in range(len(clusters)) for b in range(a + 1, len(clusters)))
        untested = [(a, b) for _, a, b in pairs if frozenset((clusters[a], clusters[b])) not in tested]
        if not untested:
            break
        a, b = clusters[untested[0][0]], clusters[untested[0][1]]
        union = (labels == a) | (labels == b)
        pair = values[union]
        separated = min_silhouette <= 0 or (
            mean_silhouette(pair, labels[union], sample_size=sample_size, random_state=random_state) >= min_silhouette
        )
        if not separated:
            weak += 1
        elif method is None or union_is_structured(pair, method, sample_size=sample_size, random_state=random_state):
            tested.add(frozenset((a, b)))
            continue
        else:
            unstructured += 1
        labels[labels == b] = a
        tested = {pair for pair in tested if a not in pair and b not in pair}
    return np.unique(labels, return_inverse=True)[1], PairMerges(unstructured, weak)


def coarsen_until_separated(
    values: np.ndarray, labels: np.ndarray, *, min_silhouette: float, sample_size: int, random_state: int
) -> tuple[np.ndarray, int, float]:
    """Merge the two nearest clusters of ``labels`` (Ward's merge cost, ``n_a n_b / (n_a + n_b) · |c_a − c_b|²``)
    until their mean silhouette (on a sample of ``sample_size`` rows) reaches ``min_silhouette`` or two are left;
    return the labels renumbered ``0 ..``, the merges made and the last mean silhouette.

    Why: Louvain's resolution cuts a large node into more communities than
    it holds sub-categories, and their mean silhouette then falls under the
    floor even where a coarser partition separates well.  Judged as found,
    whole categories stayed one leaf at size: on the 52,682-image demo store
    (the particle descriptor with scattering, 45,670 images split over their
    true categories, default floor) Particles, Tips and Powder, whose
    sub-categories logistic regression tells apart at 0.96-1.0, and
    Patterned_surface (0.90) (issue 13's note).

    Examples
    --------
    Three pieces of two clouds: the two pieces of one cloud barely separate, so they are merged first:

    >>> rng = np.random.default_rng(0)
    >>> values = np.vstack([rng.normal(0, 1, (80, 2)), rng.normal(10, 1, (40, 2))])
    >>> pieces = np.r_[(values[:80, 0] > 0).astype(int), np.full(40, 2)]
    >>> merged, merges, separation = coarsen_until_separated(
    ...     values, pieces, min_silhouette=0.5, sample_size=2000, random_state=0
    ... )
    >>> np.bincount(merged).tolist(), merges, separation > 0.5
    ([80, 40], 1, True)
    """
    labels = np.unique(labels, return_inverse=True)[1]
    separation = mean_silhouette(values, labels, sample_size=sample_size, random_state=random_state)
    merges = 0
    while separation < min_silhouette and labels.max() > 1:
        cost = ward_merge_costs(values, labels, np.arange(labels.max() + 1))
        cost[np.diag_indices(len(cost))] = np.inf
        a, b = np.unravel_index(np.argmin(cost), cost.shape)
        labels = np.unique(np.where(labels == b, a, labels), return_inverse=True)[1]
        merges += 1
        separation = mean_silhouette(values, labels, sample_size=sample_size, random_state=random_state)
    return labels, merges, separation


def cluster_stability(
    values: np.ndarray,
    labels: np.ndarray,
    method: str,
    *,
    sample_size: int,
    random_state: int,
    subsamples: int = STABILITY_SUBSAMPLES,
) -> np.ndarray:
    """Each cluster's stability: its mean Jaccard similarity to the most similar cluster when random subsamples of
    the rows are clustered again by ``method`` into as many clusters (Hennig's clusterwise stability).

    Each subsample holds :data:`STABILITY_SHARE` of the rows, at most ``sample_size`` and at least k, drawn
    without replacement (seeded by ``random_state``); a cluster is compared on the subsample's rows only.
    Hennig reads a mean under 0.5 as a cluster that dissolves, 0.6-0.75 as a pattern whose members are
    doubtful, and over 0.85 as highly stable.

    Parameters
    ----------
    values : array of shape (n_rows, n_features)
    labels : array of int of shape (n_rows,)
        Clusters numbered ``0 .. k - 1``.
    method : str
        The clustering method that made ``labels`` (:func:`candidate_partitions`).
    sample_size, random_state : int
    subsamples : int

    Returns
    -------
    ndarray of shape (k,)
        Mean Jaccard similarity in [0, 1], per cluster.

    References
    ----------
    C. Hennig, "Cluster-wise assessment of cluster stability", Comput. Stat. Data Anal. 52 (2007) 258-271.

    Examples
    --------
    Two clouds 20 standard deviations apart are found again in every subsample:

    >>> rng = np.random.default_rng(0)
    >>> values = np.vstack([rng.normal(0, 1, (50, 3)), rng.normal(20, 1, (50, 3))])
    >>> cluster_stability(values, np.repeat([0, 1], 50), "ward", sample_size=2000, random_state=0).tolist()
    [1.0, 1.0]
    """
    k = int(labels.max()) + 1
    rng = np.random.default_rng(random_state)
    # at least k rows, so that a node of few rows and many children can be clustered again into k
    size = max(min(int(STABILITY_SHARE * len(values)), sample_size), k)
    similarity, seen = np.zeros(k), np.zeros(k)
    for _ in range(subsamples):
        rows = np.sort(rng.choice(len(values), size, replace=False))
        again = candidate_partitions(values[rows], method, [k], random_state=random_state)[0][k]
        again = np.unique(again, return_inverse=True)[1]  # numbered 0 .., as the columns of `both`
        original = labels[rows]
        both = np.zeros((k, int(again.max()) + 1))
        np.add.at(both, (original, again), 1)
        either = both.sum(axis=1)[:, None] + both.sum(axis=0)[None, :] - both
        present = both.sum(axis=1) > 0
        similarity[present] += (both[present] / either[present]).max(axis=1)
        seen[present] += 1
    return similarity / np.maximum(seen, 1)


def merge_unstable_clusters(
    values: np.ndarray, labels: np.ndarray, method: str, *, min_stability: float, sample_size: int, random_state: int
) -> tuple[np.ndarray, int]:
    """Merge the least stable cluster of ``labels`` (:func:`cluster_stability`) into the one whose centroid is
    nearest, as long as it is under ``min_stability`` and more than two clusters are left; return the labels
    renumbered ``0 ..`` and how many merged.

    Why: the gap test and the silhouette floor judge a node's partition once,
    on its rows as they are.  A sub-category drawn from a range of a
    generator's parameters (or an instrument's) shows them pieces that pass
    both, 1-2 standard deviations apart along a few columns, yet a
    partition of 80 % of the rows cuts the sub-category elsewhere: the
    pieces are one draw's, not the data's.  On ``bench/categorisation.py``'s
    independent textures (15 sub-categories) the trees had 16-22 leaves, within
    ±20 % on 4 of 9 (corpus seed, draw) pairs; with a floor of 0.7, 15-22 and
    on 7 of 9, the demo's specimens on 8 of 9 as before, and the leaf NMI
    target met on as many pairs as before (8 and 8 of 9; mean leaf NMI 0.926
    to 0.923 and 0.914 to 0.913).  The cost: real sub-categories that barely
    separate merge too (the textures' phase on one corpus seed, 0.92 to
    0.73-0.93).  In a first scan (subsamples drawn afresh after each merge)
    a floor of 0.6 merged too little to change the counts and 0.75 cost the
    leaf NMI target on 3 pairs (sub-categories of Particles and
    Patterned_surface merged).

    Why never below two: the gap test and the silhouette floor have found
    structure, and a node holding more groups than it may have children
    (``max_children``) has children that are arbitrary groupings of them, which
    no subsample repeats.  Merged down to one, such a node became a leaf: on
    the demo's 1,300-image store, Patterned_surface's 370 images and 11
    sub-categories (split over the true categories) became one leaf, leaf
    NMI 0.699 to 0; kept at two, its children are split again below (9
    leaves, 0.701), as are 12 groups under a node of at most 4 children
    (``tests/test_splitting.py``).

    Examples
    --------
    One cloud cut in two beside a second, far away: the cut is not found again, the far cloud is.

    >>> rng = np.random.default_rng(0)
    >>> values = np.vstack([rng.normal(0, 1, (100, 8)), rng.normal(30, 1, (100, 8))])
    >>> cut = np.r_[(values[:100, 0] > 0).astype(int), np.full(100, 2)]
    >>> merged, count = merge_unstable_clusters(
    ...     values, cut, "ward", min_stability=0.7, sample_size=2000, random_state=0
    ... )
    >>> count, np.bincount(merged).tolist()
    (1, [100, 100])
    """
    labels = np.unique(labels, return_inverse=True)[1]
    merged = 0
    while labels.max() > 1:
        stability = cluster_stability(values, labels, method, sample_size=sample_size, random_state=random_state)
        weakest = int(np.argmin(stability))
        if stability[weakest] >= min_stability:
            break
        centroids = np.array([values[labels == cluster].mean(axis=0) for cluster in range(labels.max() + 1)])
        distances = ((centroids - centroids[weakest]) ** 2).sum(axis=1)
        distances[weakest] = np.inf
        labels = np.unique(np.where(labels == weakest, int(np.argmin(distances)), labels), return_inverse=True)[1]
        merged += 1
    return labels, merged


def absorb_small_clusters(values: np.ndarray, labels: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """``labels`` renumbered ``0 .. len(kept) - 1`` over the clusters ``kept``; rows of the others join the kept
    cluster with the nearest centroid (Euclidean).

    Examples
    --------
    Clusters 0 and 2 are kept; the lone point of cluster 1 at 4.0 is nearer the centroid of cluster 2 (5.5) than
    that of cluster 0 (0.5):

    >>> values = np.array([[0.0], [1.0], [4.0], [5.0], [6.0]])
    >>> absorb_small_clusters(values, np.array([0, 0, 1, 2, 2]), np.array([0, 2]))
    array([0, 0, 1, 1, 1])
    """
    renumbered = np.full(labels.max() + 1, -1)
    renumbered[kept] = np.arange(len(kept))
    result = renumbered[labels]
    stray = result < 0
    if stray.any():
        centroids = np.array([values[labels == cluster].mean(axis=0) for cluster in kept])
        distances = ((values[stray, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        result[stray] = np.argmin(distances, axis=1)
    return result


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
) -> Decision:
    """The silhouette or dendrogram-gap rule: the best-scoring admissible partition among ``partitions``.

    A partition is admissible when every child has at least ``min_size`` images (:func:`admissible`).
    """
    if rule == "dendrogram-gap":
        if tree is None:
            raise ValueError(f"the dendrogram-gap rule needs a merge tree; {method!r} builds none")
        heights, n = tree[:, 2], len(values)
        scores = {k: float(heights[n - k] - heights[n - k - 1]) for k in partitions}
        name = "widest merge-height gap"
    else:
        scores = {
            k: mean_silhouette(values, labels, sample_size=sample_size, random_state=random_state)
            for k, labels in partitions.items()
            if len(np.unique(labels)) > 1
        }
        name = "largest mean silhouette"
    candidates = {k: score for k, score in scores.items() if admissible(partitions[k], min_size)}
    if not candidates:
        note = f"no partition into {min(partitions)}..{max(partitions)} children keeps every child ≥ {min_size} images"
        return Decision(None, scores, note, "small-children")
    k = max(candidates, key=lambda k: (candidates[k], -k))
    note = f"{name} {candidates[k]:.4g} at k = {k} among admissible k in {min(partitions)}..{max(partitions)}"
    if method == "hdbscan":
        note = f"HDBSCAN found {k} clusters (silhouette {candidates[k]:.4g})"
    return Decision(partitions[k], scores, note)


def with_category_block(values: np.ndarray, block: np.ndarray, weight: float = CATEGORY_BLOCK_WEIGHT) -> np.ndarray:
    """One category's rows with the columns of another feature block beside them, scaled within the category.

    Each of the ``b`` block columns is standardised over these rows (a constant column becomes 0) and multiplied
    by ``weight × median(std of values' columns) / sqrt(b)``: the block as a whole then spreads ``weight`` times
    as far as a typical column of ``values`` does, however many columns either has.

    Why within the category: a block that tells one category's sub-categories apart (the facet block, how
    straight and how symmetric particles' edges are, for Particles' faceted and round shapes) spreads over a
    range in that category alone; standardised over all images, its spread is the range between categories and
    the weight no longer means the same in each. Appended to every category's rows after the projection, so no
    other column moves. On ``bench/categorisation.py``'s demo specimens, corpus seeds 0-5, the facet block's
    concentration column alone, standardised over all images, met the every-category target on 7 and 11 of the
    18 (corpus seed, draw) pairs at 3 and 4 times; standardised within each category, on 12 and 12 (scratch;
    without it: 8).

    Parameters
    ----------
    values : numpy.ndarray
        ``(n, d)`` rows of one category, as the tree splits them.
    block : numpy.ndarray
        ``(n, b)`` rows of the same images in the block's feature set.
    weight : float, default :data:`~semcurate.clustering.methods.CATEGORY_BLOCK_WEIGHT`
        The block's spread in units of a typical column's; 0 leaves the block out (constant columns would still
        move the Gaussian null's shrunk covariance).

    Returns
    -------
    numpy.ndarray
        ``(n, d + b)`` float64 rows (``(n, d)`` at weight 0).

    Examples
    --------
    Two columns of spread 1 and 3 (median 2) and a block of one column: the block's spread is ``2 × weight``:

    >>> values = np.column_stack([np.arange(4.0), 3 * np.arange(4.0)]) / np.arange(4.0).std()
    >>> joined = with_category_block(values, np.array([[10.0], [10.0], [20.0], [20.0]]), weight=1.5)
    >>> joined.shape, round(float(joined[:, 2].std()), 6)
    ((4, 3), 3.0)
    """
    values = np.asarray(values, dtype=np.float64)
    block = np.asarray(block, dtype=np.float64)
    if block.ndim != 2 or len(block) != len(values):
        raise ValueError(f"the block has shape {block.shape}; it needs one row per row of values ({len(values)})")
    if weight == 0:
        return values
    spread = block.std(axis=0)
    standardised = np.divide(block - block.mean(axis=0), spread, out=np.zeros_like(block), where=spread > 0)
    scale = weight * float(np.median(values.std(axis=0))) / np.sqrt(max(block.shape[1], 1))
    return np.hstack([values, standardised * scale])


def community_weighted(values: np.ndarray, *, sample_size: int = SAMPLE_ROWS, random_state: int = 0) -> np.ndarray:
    """A category's rows with each column scaled by how well the Louvain communities of the rows tell it apart.

    The Louvain communities (:class:`~semcurate.clustering.communities.LouvainCommunities`, its defaults) of the
    rows, or of a random sample of ``sample_size`` of them, give each column ``j`` its within-community share of
    variance ``r_j = W_j / T_j`` (``W_j`` the sum of squares
    about the communities' means, ``T_j`` about the overall mean; floored at :data:`MIN_WITHIN_SHARE`). Column
    ``j`` is multiplied by ``sqrt(w_j)``, ``w_j = (1 / r_j) / mean(1 / r)``, so that squared distances weigh it
    by ``w_j``: a column the communities separate counts for more, one they do not for less, and the mean weight
    is 1. A constant column gets weight 0; rows with one community, or fewer than :data:`COMMUNITY_MIN_ROWS`,
    come back unchanged.

    Why: with one sub-category's difference in a few of 60 projection columns, a neighbour graph on all of them is
    mostly noise, and a block of columns appended at one weight for every category (the facet block,
    :func:`with_category_block`) is signal in one category and noise in another. Weights from a first clustering are
    Huang, Ng, Rong & Li's (2005) weighted k-means with ``beta = 2`` (``w_j`` proportional to ``1 / D_j``), here on
    each column's share ``r_j`` instead of its dispersion ``D_j``, so the columns keep the projection's units
    (Huang's own ``D_j``, which standardises each column by its spread within the communities, lost the textures; a
    second pass, from the weighted rows' communities, met fewer targets). What it did, with the facet block at 3
    against the block alone at 4: on the trees ``semcurate demo`` stored at 1,300 images (corpus seeds 0-2) the
    worst category rose from 0.544, 0.182 and 0.502 to 0.743, 0.747 and 0.743 and the leaf NMI from 0.849-0.886 to
    0.889-0.915 (``bench/results/tree_truth_1300_community_weights.json``): a category whose communities the
    unweighted rows blur, and which the stop's tests then keep whole, is split. Not at 52,682 images
    (``bench/full_scale.py``'s store): leaf NMI 0.874 against 0.886, worst category 0.65 against 0.697, 126 leaves
    for 36 against 110 (``tree_truth_52682_community_weights.json``; 146 leaves when the weights came from all of a
    category's rows rather than a sample). On ``bench/categorisation.py``'s bare specimens, where the collapse is
    rare, it cuts some single sub-categories instead and is no better (``categorisation_community_weights.json``).
    So ``tree build`` and ``semcurate demo`` leave it off.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n, d)`` rows of one category, as the tree splits them.
    sample_size : int, default=SAMPLE_ROWS
        Rows, at most, whose communities give the weights (a random sample of a larger category): the size at
        which the tree resolves structure (:data:`SAMPLE_ROWS`), so that the weights of a category of thousands
        of images are those of its sub-categories, not of the finer communities so many rows hold.
    random_state : int
        Seed of the sample and of Louvain's visiting order.

    Returns
    -------
    numpy.ndarray
        ``(n, d)`` float64 rows.

    Examples
    --------
    Two groups apart along the first column, noise in the second: the first column's weight grows, the
    second's falls, and the mean weight stays 1:

    >>> rng = np.random.default_rng(0)
    >>> values = np.column_stack([np.repeat([0.0, 6.0], 40), np.zeros(80)]) + rng.normal(0, 1, (80, 2))
    >>> weights = (community_weighted(values) / values) ** 2
    >>> bool(weights[0, 0] > 1 > weights[0, 1]), round(float(weights[0].mean()), 6)
    (True, 1.0)
    """
    from semcurate.clustering.communities import LouvainCommunities

    values = np.asarray(values, dtype=np.float64)
    if len(values) < COMMUNITY_MIN_ROWS:
        return values
    sample = values
    if len(values) > sample_size:
        sample = values[np.sort(np.random.default_rng(random_state).choice(len(values), sample_size, replace=False))]
    labels = LouvainCommunities(random_state=random_state).fit(sample).labels_
    if labels.max() < 1:
        return values
    total = column_within_sums_of_squares(sample, np.zeros(len(sample), dtype=int))
    within = column_within_sums_of_squares(sample, labels)
    share = np.maximum(np.divide(within, total, out=np.ones_like(total), where=total > 0), MIN_WITHIN_SHARE)
    weights = np.where(total > 0, 1.0 / share, 0.0)
    return values * np.sqrt(weights / weights.mean())


def split(
    values: np.ndarray,
    method: str,
    depth: int = 4,
    *,
    rule: str = "gap",
    max_children: int = 8,
    min_size: int = 10,
    sample_size: int = SAMPLE_ROWS,
    random_state: int = 0,
    min_silhouette: float = MIN_SILHOUETTE,
    min_stability: float = MIN_STABILITY,
    min_null_z: float = MIN_NULL_Z,
    members: np.ndarray | None = None,
    on_node: Callable[[int], None] | None = None,
) -> Branch:
    """Sub-category tree of the rows of ``values``, split where ``rule`` finds structure, at most ``depth`` levels.

    Parameters
    ----------
    values : array of shape (n_images, n_features)
        Feature rows of one category's images.
    method : str
        Any clustering method of :mod:`semcurate.clustering.runs` (``ward``, ``density-peaks``, ``kmeans``, ...);
        ``hdbscan`` and ``louvain`` choose their own children whatever ``rule`` says.
    depth : int, default=4
        Most levels of children below this node (0: a leaf). The gap rule stops where it finds no structure,
        usually before; the silhouette and dendrogram-gap rules split down to it.
    rule : {"gap", "silhouette", "dendrogram-gap"}, default="gap"
        Whether to split and into how many children (module docstring says why the default).
    max_children : int
        Largest number of children considered at a node (k in ``2 .. max_children``); HDBSCAN and Louvain choose
        their own number, which this does not bound.
    min_size : int
        Fewest images a child may have; nodes with fewer than ``2 * min_size`` are leaves.
    sample_size : int, default=SAMPLE_ROWS
        Rows sampled (fixed seed) for the gap statistic, silhouette scores, stability subsamples and medoids of
        larger nodes: the size at which the tree resolves structure (:data:`SAMPLE_ROWS` says why 1,000).
    random_state : int
        Seed of the samples, the reference data and the flat clusterers.
    min_silhouette : float, default=MIN_SILHOUETTE
        Gap rule and Louvain: least mean silhouette (Rousseeuw 1987, on a sample of ``sample_size`` rows) of
        the children found (gap rule: and of any two of them on their own rows; two under it are merged); a node
        whose children are under it is a leaf ("weak-structure"). 0 turns the floor off, and with it the gap
        rule's reading past a flat start (:func:`k_past_a_flat_start`), which the floor guards.
    min_stability : float, default=MIN_STABILITY
        Gap rule only: least mean Jaccard similarity with which :data:`STABILITY_SUBSAMPLES` subsamples of the
        node find each child again (:func:`cluster_stability`); a child under it joins its nearest sibling, as
        long as more than two are left (:func:`merge_unstable_clusters`).  0 turns the test off.
    min_null_z : float, default=MIN_NULL_Z
        Gap rule and Louvain: least z-score (:func:`gaussian_null_z`) by which Ward's k clusters of the node (k
        the gap's, or the number of Louvain's communities) must hold less of its variance within them than Ward's
        k clusters of Gaussian rows with the node's covariance; under it the node is a leaf ("gaussian-like").
        0 turns the test off.
    members : array of int, optional
        Row indices that ``values`` came from (default ``arange(n)``), so that
        children can name rows of the full matrix.
    on_node : callable, optional
        Called with 1 after each node is finished (a progress bar).

    Returns
    -------
    Branch
        The root node with its descendants; every child's members are a subset of its parent's, and the
        children of a node partition it (HDBSCAN noise forms its own child). Every node has a ``note``;
        every leaf a ``stop`` (:data:`STOPS`).

    Notes
    -----
    Cost per node with the gap rule: ``(1 + GAP_REFERENCES) · max_children`` clusterings of at most
    ``sample_size`` rows (11 merge trees for a linkage), one clustering of the node and its medoid, and with the
    stability test 20 clusterings of a subsample per split. Measured with Ward on one thread, two other processes
    sharing the 2 cores: 3,000 × 18 rows in 9 sub-groups take 7.0 s at the default sample (6.8 s at 2,000 rows;
    the silhouette rule at depth 2: 0.5 s), 3,000 × 18 rows of one Gaussian 0.2 s (0.8 s at 2,000; silhouette:
    0.4 s, and 4 leaves).
    """
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown rule {rule!r} for the number of children; choose one of {', '.join(SPLIT_RULES)}")
    if rule == "dendrogram-gap" and method not in MONOTONE_LINKAGES:
        raise ValueError(
            f"the dendrogram-gap rule needs monotone merge heights ({', '.join(MONOTONE_LINKAGES)}), "
            f"not {method}; use gap or silhouette"
        )
    values = check_observations(values, min_samples=1)
    members = np.arange(len(values)) if members is None else np.asarray(members)
    node = Branch(
        members=members, representative=int(members[medoid(values, sample_size=sample_size, random_state=random_state)])
    )
    most_children = min(max_children, len(values) // max(min_size, 1), len(values) - 1)
    if depth <= 0:
        node.note, node.stop = "max depth reached", "max-depth"
    elif most_children < 2:
        node.note = f"{len(values)} images: fewer than twice the smallest child size {min_size}"
        node.stop = "too-few-images"
    elif len(np.unique(values, axis=0)) < 2:
        node.note, node.stop = "all feature rows are equal", "identical-rows"
    else:
        node.split_rule = method if method in OWN_COUNT_METHODS else rule
        if node.split_rule == "louvain":
            decision = community_decision(
                values,
                min_size=min_size,
                sample_size=sample_size,
                random_state=random_state,
                min_silhouette=min_silhouette,
                min_null_z=min_null_z,
            )
        elif node.split_rule == "gap":
            decision = gap_decision(
                values,
                method,
                most_children,
                min_size=min_size,
                sample_size=sample_size,
                random_state=random_state,
                min_silhouette=min_silhouette,
                min_stability=min_stability,
                min_null_z=min_null_z,
            )
        else:
            partitions, tree = candidate_partitions(
                values, method, range(2, most_children + 1), random_state=random_state
            )
            decision = choose_children(
                values,
                partitions,
                "silhouette" if method == "hdbscan" else rule,
                method=method,
                tree=tree,
                min_size=min_size,
                sample_size=sample_size,
                random_state=random_state,
            )
        node.split_scores, node.note, node.stop = decision.scores, decision.note, decision.stop
        if decision.labels is not None:
            labels = decision.labels
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
                        min_silhouette=min_silhouette,
                        min_stability=min_stability,
                        min_null_z=min_null_z,
                        members=members[inside],
                        on_node=on_node,
                    )
                )
            node.children.sort(key=lambda child: -len(child.members))
    if on_node is not None:
        on_node(1)
    return node
