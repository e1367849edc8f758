"""Evaluation (thesis §4.3-4.4): NMI curves with reference curves, tree scores, Fig. 4.1, the HTML report.

Core: :mod:`~semcurate.evaluation.scores` (``nmi``, ``nmi_curve``,
``reference_curves``, ``dendrogram_purity``, ``hierarchy_purity``,
``leaf_nmi``) and :mod:`~semcurate.evaluation.compare2d` (the five algorithms
on synthetic 2-D data). Shells: :mod:`~semcurate.evaluation.evaluate`
(``semcurate evaluate``) and :mod:`~semcurate.evaluation.report`
(``semcurate report``).
"""
