"""Point clouds with a known number of groups, to test a stopping rule: one group of several shapes, or four.

A rule that decides how many clusters a node holds has to answer 1 on a
cloud without sub-groups whatever its shape (skewed, heavy-tailed,
correlated, flat) and find groups that are there even when no 2-partition
separates them.  :func:`make_unimodal_cloud` draws the first kind and
:func:`make_equidistant_groups` the second.  ``tests/test_splitting.py``
and ``bench/gap_null.py`` draw from both.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TETRAHEDRON", "UNIMODAL_SHAPES", "make_equidistant_groups", "make_unimodal_cloud"]

#: Shapes :func:`make_unimodal_cloud` draws.
UNIMODAL_SHAPES = ("gaussian", "uniform", "log-normal", "student-t", "correlated")

#: Vertices of a regular tetrahedron, 1 apart: four points at equal distances from each other.
TETRAHEDRON = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / (2 * np.sqrt(2))


def make_unimodal_cloud(shape: str, n_samples: int, n_features: int, random_state: int) -> np.ndarray:
    """One cloud without sub-groups.

    Parameters
    ----------
    shape : {"gaussian", "uniform", "log-normal", "student-t", "correlated"}
        A Gaussian with axes of unequal spread (standard deviations 0.3-3),
        uniform noise on the unit cube, log-normal (``exp`` of a Gaussian of
        standard deviation 0.5: skewed, with a long tail), Student's t with 3
        degrees of freedom (heavy tails), or a Gaussian mixed by a random
        matrix (correlated columns).
    n_samples, n_features : int
        Rows and columns.
    random_state : int
        Seed of the draw.

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> make_unimodal_cloud("log-normal", 5, 3, random_state=0).min() > 0
    np.True_
    """
    rng = np.random.default_rng(random_state)
    size = (n_samples, n_features)
    if shape == "gaussian":
        return rng.normal(size=size) * rng.uniform(0.3, 3.0, n_features)
    if shape == "uniform":
        return rng.uniform(size=size)
    if shape == "log-normal":
        return np.exp(0.5 * rng.normal(size=size))
    if shape == "student-t":
        return rng.standard_t(3, size=size)
    if shape == "correlated":
        return rng.normal(size=size) @ rng.normal(size=(n_features, n_features))
    raise ValueError(f"unknown shape {shape!r}: choose one of {', '.join(UNIMODAL_SHAPES)}")


def make_equidistant_groups(separation_sd: float, per_group: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Four Gaussian groups of unit spread in 3 dimensions at the vertices of a regular tetrahedron.

    Every two groups are ``separation_sd`` standard deviations apart, so no
    2-partition separates them better than another: Tibshirani's first-k
    rule, which stops when ``Gap(1) ≥ Gap(2) − s(2)``, can answer 1 however
    far apart they lie.

    Parameters
    ----------
    separation_sd : float
        Distance between the centres of any two groups, in units of the
        groups' standard deviation.
    per_group : int
        Points per group.
    random_state : int
        Seed of the draw.

    Returns
    -------
    values : ndarray of shape (4 * per_group, 3)
    groups : ndarray of shape (4 * per_group,)
        Each point's group, 0-3, in blocks of ``per_group``.

    Examples
    --------
    >>> values, groups = make_equidistant_groups(5.0, 40, random_state=3)
    >>> values.shape, np.bincount(groups).tolist()
    ((160, 3), [40, 40, 40, 40])
    """
    groups = np.repeat(np.arange(len(TETRAHEDRON)), per_group)
    noise = np.random.default_rng(random_state).standard_normal((len(groups), TETRAHEDRON.shape[1]))
    return noise + separation_sd * TETRAHEDRON[groups], groups
