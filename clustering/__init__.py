"""Clustering (thesis chapters 4 and 5): dendrograms, Density Peaks, other algorithms, the sub-category tree.

Cores (pure numpy/scikit-learn): :mod:`~semcurate.clustering.agglomerative`
(``linkage``, SciPy format, memory-lean), :mod:`~semcurate.clustering.hierarchy`
(``Cutter``: any tree into exactly k clusters), :mod:`~semcurate.clustering.density_peaks`
(``DensityPeaks``), :mod:`~semcurate.clustering.flat` (k-means++, Gaussian
mixtures, HDBSCAN, spectral, Louvain), :mod:`~semcurate.clustering.communities`
(``LouvainCommunities``: the modularity communities of a neighbour graph), :mod:`~semcurate.clustering.n_clusters`
(``estimate_n_clusters``), :mod:`~semcurate.clustering.splitting` (``split``:
one category into sub-categories, recursively), :mod:`~semcurate.clustering.placement`
(``place_unlabelled``: unlabelled images into the labelled categories) and
:mod:`~semcurate.clustering.placement_tables` (``placement_summary``: the stored
placement report as the rows the pages show).  Shells:
:mod:`~semcurate.clustering.runs` (``semcurate cluster``),
:mod:`~semcurate.clustering.store` (HDF5 trees and partitions),
:mod:`~semcurate.clustering.tree_building` (``semcurate tree build``),
:mod:`~semcurate.clustering.browse` (``Tree``: a stored tree from Python).

Every public name is importable from here and loaded on first use.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "agglomerative": ["LinkageMemoryError", "linkage"],
        "browse": ["Tree", "TreeError"],
        "communities": ["LouvainCommunities"],
        "density_peaks": ["DensityPeaks"],
        "flat": ["GaussianMixtureClustering", "make_flat_estimator"],
        "hierarchy": ["Cutter", "cut"],
        "n_clusters": ["estimate_n_clusters"],
        "placement": ["CategoryPlacer", "place_unlabelled"],
        "placement_tables": ["placement_summary"],
        "runs": ["ClusteringError", "cluster_feature_set"],
        "splitting": ["community_weighted", "split", "with_category_block"],
        "store": ["ClusterStore"],
        "tree_building": ["build_tree"],
    },
)
