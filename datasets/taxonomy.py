"""The category tree of the published Hierarchical SEM dataset.

The tree (10 categories, 36 leaves; names as published, misspellings
included) ships with the package as ``data/hierarchical_tree.json``.  A
category path is the ``/``-joined list of names from the top, for example
``Nanowires/Forest/crust``; a leaf is a path with no children.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def hierarchical_tree() -> dict:
    """The nested ``{name: {child: ...}}`` category tree, without its ``_about`` note."""
    text = resources.files("semcurate.datasets").joinpath("data/hierarchical_tree.json").read_text()
    return {key: value for key, value in json.loads(text).items() if not key.startswith("_")}


def _leaves(tree: dict, prefix: str) -> list[str]:
    paths = []
    for name, children in tree.items():
        path = f"{prefix}{name}"
        paths.extend(_leaves(children, f"{path}/") if children else [path])
    return paths


@cache
def leaf_paths() -> tuple[str, ...]:
    """The 36 leaf category paths, in the tree's order.

    Examples
    --------
    >>> len(leaf_paths())
    36
    >>> "Nanowires/Forest/crust" in leaf_paths()
    True
    """
    return tuple(_leaves(hierarchical_tree(), ""))


def top_categories() -> tuple[str, ...]:
    """The 10 top-level categories, in the tree's order.

    Examples
    --------
    >>> len(top_categories())
    10
    >>> sorted({path.split("/")[0] for path in leaf_paths()}) == sorted(top_categories())
    True
    """
    return tuple(hierarchical_tree())
