"""semcurate: curate a repository of SEM images into a tree of sub-categories.

The stages are installed as sub-packages, each exporting its public names:
:mod:`semcurate.ingest`, :mod:`semcurate.datasets`, :mod:`semcurate.features`,
:mod:`semcurate.clustering`, :mod:`semcurate.evaluation` and
:mod:`semcurate.db`.  The command line is ``semcurate``
(:mod:`semcurate.cli`); :class:`semcurate.Tree` browses a stored sub-category
tree from Python.  Everything is loaded on first use.
"""

import lazy_loader

_stage_getattr, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["clustering", "datasets", "db", "evaluation", "features", "ingest"],
    submod_attrs={"clustering.browse": ["Tree"]},
)


def __getattr__(name: str):
    """The stages and ``Tree`` on first use; ``__version__`` read from the installed metadata on first use (reading
    it costs 30 ms that ``semcurate --help`` should not pay)."""
    if name == "__version__":
        from importlib.metadata import version

        return version("semcurate")
    return _stage_getattr(name)
