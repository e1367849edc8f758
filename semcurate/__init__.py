"""semcurate: curate a repository of SEM images into a tree of sub-categories.

The stages are installed as sub-packages: :mod:`semcurate.ingest`,
:mod:`semcurate.features`, :mod:`semcurate.clustering`,
:mod:`semcurate.evaluation` and :mod:`semcurate.db`.  The command line is
``semcurate`` (:mod:`semcurate.cli`); :class:`semcurate.Tree` browses a stored
sub-category tree from Python.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Tree":
        from semcurate.clustering.browse import Tree

        return Tree
    raise AttributeError(f"module 'semcurate' has no attribute {name!r}")
