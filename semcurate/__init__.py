"""semcurate: curate a repository of SEM images into a tree of sub-categories.

The stages are installed as sub-packages, each exporting its public names:
:mod:`semcurate.ingest`, :mod:`semcurate.datasets`, :mod:`semcurate.features`,
:mod:`semcurate.clustering`, :mod:`semcurate.evaluation` and
:mod:`semcurate.db`.  The command line is ``semcurate``
(:mod:`semcurate.cli`); :class:`semcurate.Tree` browses a stored sub-category
tree from Python.  Everything is loaded on first use.
"""

from importlib.metadata import version

import lazy_loader

__version__ = version("semcurate")

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["clustering", "datasets", "db", "evaluation", "features", "ingest"],
    submod_attrs={"clustering.browse": ["Tree"]},
)
