"""Clustering (thesis chapter 4 and 5): dendrograms, Density Peaks, other algorithms, the sub-category tree.

Cores (pure numpy/scikit-learn): :mod:`~semcurate.clustering.agglomerative`
(``linkage``, SciPy format, memory-lean), :mod:`~semcurate.clustering.hierarchy`
(cut any tree into exactly k clusters), :mod:`~semcurate.clustering.density_peaks`
(``DensityPeaks``), :mod:`~semcurate.clustering.flat` (k-means++, Gaussian
mixtures, HDBSCAN, spectral), :mod:`~semcurate.clustering.n_clusters`
(``estimate_n_clusters``), :mod:`~semcurate.clustering.splitting` (recursive
sub-category splitting). Shells: :mod:`~semcurate.clustering.runs`
(``semcurate cluster``), :mod:`~semcurate.clustering.tree_building`
(``semcurate tree build``), :mod:`~semcurate.clustering.browse`
(``semcurate.Tree``).
"""

_PUBLIC = {
    "linkage": "semcurate.clustering.agglomerative",
    "DensityPeaks": "semcurate.clustering.density_peaks",
    "estimate_n_clusters": "semcurate.clustering.n_clusters",
    "Cutter": "semcurate.clustering.hierarchy",
}


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'semcurate.clustering' has no attribute {name!r}")
