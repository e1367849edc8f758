"""Louvain communities of a nearest-neighbour graph: clusters that follow which images are neighbours.

Ward's criterion asks how much variance a cut leaves within the clusters, so it
cuts a group that is spread unevenly wherever the cut saves most variance. A
graph of each image's nearest neighbours asks only which images lie next to
one another; its communities are the sets of images with more edges among
them than a random graph of the same degrees would have (modularity, Newman &
Girvan 2004). On the sub-categories of ``bench/subcategory_separability.py``
(two generators, three corpus seeds each) Louvain communities of the
10-nearest-neighbour graph, their resolution searched to give the true
number, reach NMI 0.89-0.95 (demo) and 0.97-0.98 (textures), where Ward
reaches 0.89-0.93 and 0.88-0.96.

The resolution gamma of the modularity (Reichardt & Bornholdt 2006) sets the size
of the communities: at gamma = 1 the usual modularity, below 1 fewer, larger
communities. :data:`LOUVAIN_RESOLUTION` says why 0.4.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.neighbors import kneighbors_graph
from sklearn.utils.validation import validate_data

#: Nearest neighbours of each image in the graph (each edge kept when either image is among the other's).
LOUVAIN_NEIGHBOURS = 10
#: Resolution gamma of the modularity that Louvain maximises. On ``bench/categorisation.py``'s 18 (corpus seed,
#: labelled draw) pairs, split by a first version of :func:`~semcurate.clustering.splitting.community_decision`
#: (Gaussian null at 2.5, no silhouette floor), gamma = 0.2, 0.3, 0.4, 0.5 and 0.6 gave demo leaf counts within
#: ±20 % of the truth on 9, 9, 9, 7 and 5 of 9 pairs and the textures' worst category ≥ 0.80 on 4, 4, 9, 9 and 7
#: of 9: 0.4 was the one value at which both held on every pair.
LOUVAIN_RESOLUTION = 0.4


class LouvainCommunities(ClusterMixin, BaseEstimator):
    """Clusters as the Louvain communities (Blondel et al. 2008) of the rows' nearest-neighbour graph.

    The graph joins each row to its ``n_neighbors`` nearest rows (Euclidean),
    an edge of weight 1 wherever either row is among the other's neighbours;
    Louvain (networkx's ``louvain_communities``) then moves rows and merges
    communities while the modularity at ``resolution`` grows. The number of
    clusters is the method's own answer, as HDBSCAN's is.

    Parameters
    ----------
    n_neighbors : int, default=LOUVAIN_NEIGHBOURS
        Neighbours of each row in the graph (at most ``n_samples − 1`` are used).
    resolution : float, default=LOUVAIN_RESOLUTION
        Modularity resolution gamma > 0: below 1 fewer and larger communities, above 1 more and smaller.
    random_state : int, RandomState instance or None, default=None
        Seed of the order in which Louvain visits the rows.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Community of each row, numbered by size: 0 is the largest (ties: the one holding the lowest row).
    n_features_in_ : int
        Number of features seen during fit.

    Notes
    -----
    Cost for ``n`` rows in ``d`` dimensions: the neighbour search (a k-d or
    ball tree for small ``d``, else ``O(n² d)`` brute force in blocks), then
    Louvain in pure Python over about ``n × n_neighbors`` edges, close to
    linear per pass: measured on one thread of this project's 2-core machine while two other processes ran
    (load 3), Gaussian rows in 18 columns took 0.03 s at 300 rows, 0.8 s at 3,000 and 5.7 s at 15,000.
    networkx releases may visit the rows differently for the same seed, so the
    same rows can give slightly different communities under another release.

    References
    ----------
    .. [1] V. D. Blondel, J.-L. Guillaume, R. Lambiotte and E. Lefebvre, "Fast unfolding of communities in large
       networks", J. Stat. Mech. (2008) P10008.
    .. [2] J. Reichardt and S. Bornholdt, "Statistical mechanics of community detection", Phys. Rev. E 74 (2006)
       016110.

    Examples
    --------
    300 rows of one Gaussian in 10 dimensions are one community at the default resolution (in 5 dimensions
    they are cut into 3: hence :func:`~semcurate.clustering.splitting.split`'s Gaussian null); three clouds 10
    standard deviations apart are three:

    >>> rng = np.random.default_rng(0)
    >>> cloud = rng.normal(size=(300, 10))
    >>> int(LouvainCommunities(random_state=0).fit(cloud).labels_.max()) + 1
    1
    >>> clouds = np.vstack([cloud[:100], cloud[100:200] + 10, cloud[200:] - 10])
    >>> labels = LouvainCommunities(random_state=0).fit(clouds).labels_
    >>> [len(set(labels[start : start + 100])) for start in (0, 100, 200)], len(set(labels))
    ([1, 1, 1], 3)
    """

    labels_: np.ndarray

    def __init__(
        self, *, n_neighbors: int = LOUVAIN_NEIGHBOURS, resolution: float = LOUVAIN_RESOLUTION, random_state: Any = None
    ) -> None:
        self.n_neighbors = n_neighbors
        self.resolution = resolution
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> LouvainCommunities:
        """Find the communities of the rows of ``X`` (shape ``(n_samples, n_features)``); ``y`` is ignored."""
        import networkx as nx

        if isinstance(self.n_neighbors, bool) or not isinstance(self.n_neighbors, Integral) or self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be an integer of at least 1; got {self.n_neighbors!r}")
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, Real) or not self.resolution > 0:
            raise ValueError(f"resolution must be a number above 0; got {self.resolution!r}")
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=True)
        adjacency = kneighbors_graph(X, min(int(self.n_neighbors), len(X) - 1), include_self=False)
        graph = nx.from_scipy_sparse_array(adjacency.maximum(adjacency.T))
        communities = nx.community.louvain_communities(graph, resolution=float(self.resolution), seed=self.random_state)
        ordered = sorted((sorted(community) for community in communities), key=lambda rows: (-len(rows), rows[0]))
        labels = np.empty(len(X), dtype=np.int64)
        for number, rows in enumerate(ordered):
            labels[rows] = number
        self.labels_ = labels
        return self
