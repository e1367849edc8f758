"""Data we draw ourselves, with its truth (like :mod:`sklearn.datasets` and :mod:`skimage.data`).

:func:`make_sem_corpus` writes a messy SEM repository like the thesis'
``new_dati_SEM/``: 36 procedurally drawn specimen classes
(:mod:`~semcurate.datasets.specimens`) with burned-in data bars
(:mod:`~semcurate.datasets.databar`), labelled-dataset folders laid out by the
Hierarchical tree (:mod:`~semcurate.datasets.taxonomy`) and a
``ground_truth.csv`` for every file.  :func:`make_textures`
(:mod:`~semcurate.datasets.textures`) draws a second, independent set of
SEM-like textures with their categories, to test what is learnt from the
first on data it was not built for.  :mod:`~semcurate.datasets.clouds` draws point
clouds with one group or four, to test a rule that decides how many clusters
there are.  Nothing here reads real data: the
readers live in :mod:`semcurate.ingest`.

Every public name is importable from here and loaded on first use.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "clouds": ["TETRAHEDRON", "UNIMODAL_SHAPES", "make_equidistant_groups", "make_unimodal_cloud"],
        "databar": ["DataBarSpec", "DataBarTruth", "burn_data_bar", "random_data_bar_spec"],
        "demo_corpus": ["CorpusSummary", "make_sem_corpus"],
        "specimens": ["draw_specimen"],
        "taxonomy": ["hierarchical_tree", "leaf_paths", "top_categories"],
        "textures": ["make_textures"],
    },
)
