"""Evaluation (thesis §4.3-4.4): NMI curves with reference curves, tree scores, Fig. 4.1, the HTML report.

Cores: :mod:`~semcurate.evaluation.scores` (``nmi``, ``nmi_curve``,
``reference_curves``, ``dendrogram_purity``, ``hierarchy_purity``,
``leaf_nmi``) and :mod:`~semcurate.evaluation.compare2d` (the five algorithms
on synthetic 2-D data).  Shells: :mod:`~semcurate.evaluation.evaluate`
(``semcurate evaluate``) and :mod:`~semcurate.evaluation.report`
(``semcurate report``).

Every public name is importable from here and loaded on first use.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "compare2d": ["compare_2d"],
        "evaluate": ["EvaluationError", "tree_scores"],
        "report": ["ReportError", "write_report"],
        "scores": [
            "best_k_over_chance",
            "dendrogram_purity",
            "hierarchy_purity",
            "leaf_nmi",
            "nmi",
            "nmi_curve",
            "reference_curves",
        ],
    },
)
