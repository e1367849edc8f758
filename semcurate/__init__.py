"""semcurate: curate a repository of SEM images into a tree of sub-categories.

The stages are installed as sub-packages: :mod:`semcurate.ingest`,
:mod:`semcurate.features`, :mod:`semcurate.clustering`,
:mod:`semcurate.evaluation` and :mod:`semcurate.db`.  The command line is
``semcurate`` (:mod:`semcurate.cli`).
"""

__version__ = "0.1.0"
