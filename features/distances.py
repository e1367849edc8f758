"""Distances between labelled images against the discrete label distance (thesis section 3.4).

For a category-balanced sample of labelled images sorted by category, the
discrete distance is ``d_disc(i, j) = 0`` when images ``i`` and ``j`` share a
label and 1 otherwise (Fig. 3.8: black blocks on the diagonal).  A feature
space is judged by how well its Euclidean distances follow ``d_disc``: the
*correlation index* is the Pearson correlation of the two distances over all
pairs ``i < j`` (Figs 3.9-3.10 caption it; it rose after the autoencoder).

Pure numpy/scipy plus matplotlib figures (``matplotlib.figure.Figure``, no
pyplot state); the shell that loads feature sets is in the CLI.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.distance import pdist, squareform

if TYPE_CHECKING:  # matplotlib is imported by heatmaps only, so the distance functions load without it
    from matplotlib.figure import Figure

#: Samples per category of the thesis' Table 3.4 (431 images of 1u-2u).
THESIS_SAMPLE = {
    "Porous_Sponge": 20,
    "Patterned_surface": 70,
    "Particles": 46,
    "Films_Coated_Surface": 20,
    "Powder": 20,
    "Tips": 35,
    "Nanowires": 94,
    "Biological": 29,
    "MEMS_devices_and_electrodes": 78,
    "Fibres": 19,
}


def balanced_sample(
    labels: dict[str, str], per_category: dict[str, int] | int | None = None, random_state: int | None = 0
) -> list[tuple[str, str]]:
    """``(md5, category)`` pairs: up to ``per_category`` random images of each category, sorted by category.

    ``per_category`` is a count for every category, a dict of counts (missing
    categories get none), or None for :data:`THESIS_SAMPLE`.  A category with
    fewer images contributes all it has.
    """
    by_category: defaultdict[str, list[str]] = defaultdict(list)
    for md5, category in sorted(labels.items()):
        by_category[category].append(md5)
    wanted = THESIS_SAMPLE if per_category is None else per_category
    rng = np.random.default_rng(random_state)
    sample: list[tuple[str, str]] = []
    for category in sorted(by_category):
        count = wanted if isinstance(wanted, int) else wanted.get(category, 0)
        members = by_category[category]
        chosen = rng.choice(len(members), size=min(count, len(members)), replace=False)
        sample.extend((members[index], category) for index in sorted(chosen))
    return sample


def discrete_distance(categories: list[str]) -> np.ndarray:
    """``(n, n)`` matrix: 0 for pairs with the same category, 1 otherwise.

    Examples
    --------
    >>> discrete_distance(["a", "b", "a"]).tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    codes = np.unique(np.asarray(categories), return_inverse=True)[1]
    return (codes[:, None] != codes[None, :]).astype(np.float64)


def correlation_index(features: np.ndarray, categories: list[str]) -> float:
    """Pearson correlation between Euclidean feature distances and ``d_disc`` over all pairs ``i < j``.

    Raises ValueError when it is undefined: fewer than 3 images, a single
    category, or all feature distances equal.

    Examples
    --------
    Two categories far apart on a line: the six distances ``1, 10, 11, 9, 10,
    1`` against ``d_disc`` ``0, 1, 1, 1, 1, 0`` correlate at ``12 / sqrt(110 ×
    4/3) = 0.9909``.

    >>> round(correlation_index(np.array([[0.0], [1.0], [10.0], [11.0]]), ["a", "a", "b", "b"]), 4)
    0.9909
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] != len(categories) or features.shape[0] < 3:
        raise ValueError("need a (n, d) feature array with n >= 3 matching the categories")
    disc = squareform(discrete_distance(categories), checks=False)
    dist = pdist(features)
    if disc.std() == 0 or dist.std() == 0:
        raise ValueError("correlation undefined: one category only, or all images at the same distance")
    return float(np.corrcoef(dist, disc)[0, 1])


def heatmaps(panels: list[tuple[str, np.ndarray]], categories: list[str]) -> Figure:
    """One heatmap per ``(title, features)`` panel after the ``d_disc`` panel, category blocks marked."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4 * (len(panels) + 1), 4.8), layout="constrained")
    axes = figure.subplots(1, len(panels) + 1, squeeze=False)[0]
    boundaries = [index for index in range(1, len(categories)) if categories[index] != categories[index - 1]]
    matrices = [("d_disc", discrete_distance(categories))]
    matrices += [
        (
            f"{title}\ncorrelation with d_disc {correlation_index(values, categories):.2f}",
            squareform(pdist(np.asarray(values, dtype=np.float64))),
        )
        for title, values in panels
    ]
    for axis, (title, matrix) in zip(axes, matrices, strict=True):
        axis.imshow(matrix, cmap="gray", interpolation="nearest")
        for boundary in boundaries:
            axis.axhline(boundary - 0.5, color="tab:red", linewidth=0.4)
            axis.axvline(boundary - 0.5, color="tab:red", linewidth=0.4)
        axis.set_title(title, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    return figure
