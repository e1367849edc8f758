"""The shapes of the particles in an image: the ``particle`` block of the classic descriptor.

:class:`~semcurate.features.classic.ClassicDescriptor` appends it with
``particles=True``.  Particles are the connected components (8-connected)
of the Otsu foreground of a copy of the image with its slow shading
removed.  Each component larger
than a few pixels is measured by :func:`particle_measures`: area, perimeter,
eccentricity, extent and solidity, as scikit-image's ``regionprops`` defines
them (solidity after the digital convex hull, below), in one vectorised pass
over the labelled image and one convex hull per component.
:func:`particle_statistics` turns those measures into 12 numbers per image.
:func:`facet_statistics` adds 3 more, kept as a set of their own
(``particle_facets``): how straight and how 4- or 6-fold symmetric each
component's edges are.

Why: the blob block says how large the particles are and how they lie, not
what shape they have.  Flat polygons with straight edges, round domes,
elongated rods and branched aggregates of one size give it the same columns;
their solidity, circularity and eccentricity differ (issue 13: the demo's
Particles category, whose ``other_shape`` and ``small_clusters``
sub-categories no other column tells apart).
"""

from __future__ import annotations

import numpy as np
from scipy import fft as scipy_fft
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from skimage.filters import threshold_otsu

#: Names of the columns :func:`particle_statistics` returns, in order.
PARTICLE_FEATURE_NAMES = (
    "particle_solidity",
    "particle_circularity",
    "particle_eccentricity",
    "particle_extent",
    "particle_log_area_spread",
    "particle_log_area_median",
    "particle_count",
    "particle_nonconvex_share",
    "particle_foreground",
    "particle_solidity_q25",
    "particle_eccentricity_q75",
    "particle_circularity_median",
)
#: Names of the columns :func:`facet_statistics` returns, in order.
FACET_FEATURE_NAMES = ("facet_fourfold", "facet_sixfold", "facet_concentration")
_FACET_MIN_AREA_PX = 30  # a smaller component has too few edge pixels for its own orientation histogram
_FACET_BINS = 18  # 10 degree bins of edge orientation over [0, 180)
_FACET_STRONGEST_BINS = 3  # a straight edge, blurred and sampled on pixels, spreads over about 30 degrees
_SMOOTHING_PX = 1.0  # Gaussian against pixel noise before thresholding
_SHADING_PX = 24.0  # the Gaussian blur of this width is the shading taken away (about a tenth of a 256 px side)
_SHADING_PAD_PX = 64  # mirrored margin before the FFT, so that opposite edges do not meet (2.7 shading widths)
_MIN_DETAIL = 1e-3  # a filtered copy with less spread than this share of the level's is rounding error, not detail
_MIN_AREA_PX = 6  # smaller components are noise: too few pixels for a shape
_NONCONVEX_SOLIDITY = 0.85  # a component under this solidity counts as non-convex (branched, hollow or notched)
_MAX_CIRCULARITY = 1.5  # the perimeter estimate is too short for the smallest components; their circularity is capped
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
# scikit-image's perimeter estimate (Benkrid & Crookes): border pixels coded by the 3 x 3 kernel below, each code's
# length in pixels
_PERIMETER_KERNEL = np.array([[10, 2, 10], [2, 1, 2], [10, 2, 10]])
_PERIMETER_LENGTHS = np.zeros(50)
_PERIMETER_LENGTHS[[5, 7, 15, 17, 25, 27]] = 1.0
_PERIMETER_LENGTHS[[21, 33]] = np.sqrt(2.0)
_PERIMETER_LENGTHS[[13, 23]] = (1.0 + np.sqrt(2.0)) / 2.0


def particle_measures(mask: np.ndarray) -> dict[str, np.ndarray]:
    """Area, perimeter, eccentricity, extent and solidity of each 8-connected component of a binary image.

    Parameters
    ----------
    mask : numpy.ndarray
        2-D boolean array (any dtype; non-zero is foreground).

    Returns
    -------
    dict of str to numpy.ndarray
        One ``float64`` array of length n (the number of components, in the
        order ``scipy.ndimage.label`` numbers them) per measure:

        * ``area``: pixels;
        * ``perimeter``: pixels, scikit-image's estimate (``regionprops``'
          ``perimeter``: border pixels of the 4-neighbourhood erosion, each
          weighted by its local configuration, 1, sqrt(2) or (1 + sqrt(2)) / 2);
        * ``eccentricity``: of the ellipse with the component's second
          moments, 0 for a disc and towards 1 for a line;
        * ``extent``: area over the area of its bounding box;
        * ``solidity``: area over the number of pixels in its digital convex
          hull, the pixels whose centres lie in the convex hull of its pixel
          centres (1 for a convex component; a component in one row or
          column is convex).

    Notes
    -----
    The first four equal ``skimage.measure.regionprops``' values exactly.
    Its solidity counts the pixels within the hull of the pixels' edge
    midpoints, half a pixel wider, so on shapes with straight edges it is the
    same and on curved or notched ones lower (by up to 0.29 on the ragged
    components of a random mask, ``tests/test_particles.py``).  Here the hull's pixel count is
    exact, by Pick's theorem: a lattice polygon of area A with B lattice
    points on its boundary holds A + B / 2 + 1 lattice points, boundary
    included.

    Cost: O(pixels) for everything but the hulls, plus one Qhull call on at
    most 2 points per row per component; 4-9 ms on the masks of 256 x 256
    demo specimens (a median of 15 components), by hand.

    Examples
    --------
    A 6 x 6 square less its 3 x 3 corner holds 27 pixels; its hull takes in
    3 of the corner's 9 (those on or under the diagonal from the inner
    corner), so 30 pixels:

    >>> mask = np.ones((6, 6), dtype=bool)
    >>> mask[:3, 3:] = False
    >>> measures = particle_measures(mask)
    >>> measures["area"].tolist(), measures["extent"].tolist(), measures["solidity"].tolist()
    ([27.0], [0.75], [0.9])
    """
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=_EIGHT_CONNECTED)
    if count == 0:
        return {name: np.zeros(0) for name in ("area", "perimeter", "eccentricity", "extent", "solidity")}
    height = labels.shape[0]
    rows, cols = np.nonzero(labels)
    component = labels[rows, cols] - 1
    area = np.bincount(component, minlength=count).astype(np.float64)  # every component has a pixel

    row_mean = np.bincount(component, rows, count) / area
    col_mean = np.bincount(component, cols, count) / area
    d_row = rows - row_mean[component]
    d_col = cols - col_mean[component]
    var_row = np.bincount(component, d_row * d_row, count) / area
    var_col = np.bincount(component, d_col * d_col, count) / area
    covariance = np.bincount(component, d_row * d_col, count) / area
    half_trace = (var_row + var_col) / 2.0
    root = np.sqrt(((var_row - var_col) / 2.0) ** 2 + covariance**2)
    major, minor = half_trace + root, half_trace - root
    eccentricity = np.sqrt(np.clip(1.0 - minor / np.where(major > 0, major, 1.0), 0.0, 1.0)) * (major > 0)

    # one (component, row) run per key: its leftmost and rightmost columns bound the component's hull
    key = component.astype(np.int64) * height + rows
    order = np.argsort(key, kind="stable")
    key, run_cols = key[order], cols[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    left = np.minimum.reduceat(run_cols, starts)
    right = np.maximum.reduceat(run_cols, starts)
    run_component, run_row = np.divmod(key[starts], height)
    first_run = np.searchsorted(run_component, np.arange(count + 1))
    # a connected component's rows and columns are contiguous: its bounding box is rows x columns it touches
    row_span = np.diff(first_run)
    col_span = np.maximum.reduceat(right, first_run[:-1]) - np.minimum.reduceat(left, first_run[:-1]) + 1
    extent = area / np.maximum(row_span * col_span, 1)

    hull_pixels = area.copy()
    for index in np.flatnonzero((row_span > 1) & (col_span > 1)):
        runs = slice(first_run[index], first_run[index + 1])
        points = np.concatenate(
            [np.column_stack([run_row[runs], left[runs]]), np.column_stack([run_row[runs], right[runs]])]
        )
        hull_pixels[index] = _lattice_points_in_hull(points, area[index])

    border = (labels > 0) & ~ndimage.binary_erosion(labels > 0, _FOUR_CONNECTED, border_value=0)
    code = ndimage.convolve(border.astype(np.uint8), _PERIMETER_KERNEL, mode="constant", cval=0)
    perimeter = np.bincount(labels.ravel(), _PERIMETER_LENGTHS[code.ravel()], count + 1)[1:]
    return {
        "area": area,
        "perimeter": perimeter,
        "eccentricity": eccentricity,
        "extent": extent,
        "solidity": area / hull_pixels,
    }


def _lattice_points_in_hull(points: np.ndarray, area: float) -> float:
    """Lattice points in or on the convex hull of integer ``points`` (Pick's theorem: A + B / 2 + 1); ``area`` where
    the points are collinear (a diagonal line of pixels), which is convex."""
    try:
        hull = ConvexHull(points)
    except QhullError:
        return area
    corners = points[hull.vertices]
    steps = np.abs(np.diff(np.vstack([corners, corners[:1]]), axis=0))
    boundary = np.gcd(steps[:, 0], steps[:, 1]).sum()
    return float(hull.volume + boundary / 2.0 + 1.0)


def mirror_padded(level: np.ndarray, margin: int) -> tuple[np.ndarray, int]:
    """``level`` as float32, padded by mirroring (half-sample symmetric, SciPy's ``reflect``) by ``margin`` pixels on
    every side (at most a side less one) and on the far sides up to lengths a real FFT factors into 2, 3 and 5; and
    the margin used.  Both FFT filters of the classic descriptor (the blob block's scale space, the shading removed
    here) pad this way, so that opposite edges do not meet and the transform stays fast (a level of 374 columns
    padded to 438 = 2 x 3 x 73 took twice the time of 450)."""
    pad = min(margin, *(side - 1 for side in level.shape))
    padded_shape = tuple(scipy_fft.next_fast_len(side + 2 * pad, real=True) for side in level.shape)
    padded = np.pad(
        level.astype(np.float32),
        [(pad, length - side - pad) for side, length in zip(level.shape, padded_shape, strict=True)],
        mode="symmetric",
    )
    return padded, pad


def shading_removed(level: np.ndarray) -> np.ndarray:
    """``level`` smoothed by a Gaussian of ``_SMOOTHING_PX`` minus its blur by a Gaussian of ``_SHADING_PX`` more.

    One FFT of the level padded by mirroring (half-sample symmetric) by up to ``_SHADING_PAD_PX`` on every side; the
    transfer function is ``exp(-2 pi^2 s1^2 |f|^2) - exp(-2 pi^2 (s1^2 + s2^2) |f|^2)``.  A fifth of the time of two
    ``ndimage.gaussian_filter`` calls on a 256 x 256 level, whose Otsu masks it matches on 99.9 % of the pixels.
    """
    padded, pad = mirror_padded(level, _SHADING_PAD_PX)
    padded_shape = padded.shape
    fy = np.fft.fftfreq(padded_shape[0]).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(padded_shape[1]).astype(np.float32)[None, :]
    squared = -2.0 * np.pi**2 * (fy * fy + fx * fx)
    transfer = np.exp(_SMOOTHING_PX**2 * squared) - np.exp((_SMOOTHING_PX**2 + _SHADING_PX**2) * squared)
    filtered = scipy_fft.irfft2(scipy_fft.rfft2(padded) * transfer, s=padded_shape)
    height, width = level.shape
    return filtered[pad : pad + height, pad : pad + width]


def particle_foreground(level: np.ndarray) -> np.ndarray:
    """The particles' pixels: the opened Otsu foreground of :func:`shading_removed` (boolean, ``level``'s shape); no
    pixel when the level is flat or has no detail finer than its shading (the filtered copy's standard deviation at
    most a thousandth of the level's).

    Examples
    --------
    A flat level has no particle; a bright square on a dark level is one:

    >>> int(particle_foreground(np.full((64, 64), 0.5)).sum())
    0
    >>> level = np.zeros((64, 64))
    >>> level[24:40, 24:40] = 1.0
    >>> foreground = particle_foreground(level)
    >>> bool(foreground[32, 32]), bool(foreground[4, 4])
    (True, False)
    """
    filtered = shading_removed(level)
    spread = np.std(level)
    if spread == 0 or filtered.std() <= _MIN_DETAIL * spread:
        return np.zeros(np.shape(level), dtype=bool)
    return ndimage.binary_opening(filtered > threshold_otsu(filtered))


def particle_statistics(level: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray:
    """The 12 columns of :data:`PARTICLE_FEATURE_NAMES` for one grey level.

    Parameters
    ----------
    level : numpy.ndarray
        2-D grey image, any real dtype and contrast (the pyramid's first
        level, 256 px on its short side, in the descriptor).
    foreground : numpy.ndarray, optional
        :func:`particle_foreground` of ``level`` when the caller has it
        already (the descriptor computes it once for this block and the
        facet block); computed here otherwise.

    Returns
    -------
    numpy.ndarray
        ``float64`` array of shape ``(12,)``: over the components of at least
        ``_MIN_AREA_PX`` pixels of the opened Otsu foreground of
        :func:`shading_removed`, their area-weighted mean solidity,
        circularity ``4 pi area / perimeter^2`` (capped at 1.5), eccentricity
        and extent; the standard deviation of their log areas and the log of
        their median area as a share of the image; ``log(1 + components per
        1000 px)``; the share of them under solidity 0.85; the foreground's
        share of the image; the lower quartile of solidity, the upper
        quartile of eccentricity and the median circularity.  All zeros when
        the level is flat or has no detail finer than its shading (the
        filtered copy's standard deviation at most a thousandth of the
        level's, :func:`particle_foreground`), or no component is large enough.
    """
    mask = particle_foreground(level) if foreground is None else foreground
    if not mask.any():
        return np.zeros(len(PARTICLE_FEATURE_NAMES))
    measures = particle_measures(mask)
    kept = measures["area"] >= _MIN_AREA_PX
    if not kept.any():
        return np.zeros(len(PARTICLE_FEATURE_NAMES))
    area, perimeter, eccentricity, extent, solidity = (
        measures[name][kept] for name in ("area", "perimeter", "eccentricity", "extent", "solidity")
    )
    circularity = np.clip(4.0 * np.pi * area / np.maximum(perimeter, 1.0) ** 2, 0.0, _MAX_CIRCULARITY)
    weight = area / area.sum()
    return np.array(
        [
            weight @ solidity,
            weight @ circularity,
            weight @ eccentricity,
            weight @ extent,
            np.log(area).std(),
            np.log(np.median(area) / mask.size),
            np.log1p(1000.0 * len(area) / mask.size),
            np.mean(solidity < _NONCONVEX_SOLIDITY),
            mask.mean(),
            np.quantile(solidity, 0.25),
            np.quantile(eccentricity, 0.75),
            np.median(circularity),
        ]
    )


def facet_statistics(level: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray:
    """The 3 columns of :data:`FACET_FEATURE_NAMES` for one grey level: how straight and how symmetric the edges of
    each particle are, whatever way it is turned.

    Parameters
    ----------
    level, foreground : numpy.ndarray
        As :func:`particle_statistics` takes them.

    Returns
    -------
    numpy.ndarray
        ``float64`` array of shape ``(3,)``, each in [0, 1]: over the
        components of at least ``_FACET_MIN_AREA_PX`` pixels of
        :func:`particle_foreground` (each grown by one pixel, so that it holds
        its own edge), the area-weighted mean of

        * ``facet_fourfold``: the magnitude of the 4th circular harmonic of
          the gradient-magnitude-weighted edge orientation θ ∈ [0, π),
          ``|Σ m e^{4iθ}| / Σ m`` (1 for a square or rectangle, 0 for a disc
          or a triangle);
        * ``facet_sixfold``: the same with the 6th harmonic (about 1 for an
          equilateral triangle or a hexagon, 0 for a disc or a square);
        * ``facet_concentration``: the share of the weighted orientations in
          the ``_FACET_STRONGEST_BINS`` strongest of ``_FACET_BINS`` bins
          (near 1 for a few straight edges, ``3 / 18`` for a disc).

        All zeros when there is no foreground or no component is large
        enough.  The gradient is Sobel's on the level smoothed by a Gaussian
        of ``_SMOOTHING_PX``.

    Why: the particle block's solidity and circularity tell a round dome from
    a convex polygon only through the perimeter, which pixel sampling blurs
    on particles of a few dozen pixels; the orientations of their edges tell
    them apart (issue 13: the demo's faceted ``other_shape`` particles and
    round ``small_clusters``, and squares, circles and triangles in
    Patterned_surface's arrays).  Each particle's own histogram, not the
    image's, since particles turned every way make the image's histogram
    flat.  The harmonics' magnitudes do not change when the particle turns.

    Cost: one Gaussian filter, two Sobel filters and per-component sums of
    the pixels, on top of :func:`particle_foreground` (about 8-15 ms on a
    256 x 256 demo specimen, by hand).

    Examples
    --------
    A square scores about 1 fourfold and 0 sixfold, a disc about 0 for both:

    >>> square = np.zeros((96, 96))
    >>> square[30:60, 30:60] = 1.0
    >>> np.round(facet_statistics(square), 2).tolist()
    [0.9, 0.0, 0.86]
    >>> yy, xx = np.mgrid[:96, :96]
    >>> np.round(facet_statistics((np.hypot(yy - 48, xx - 48) < 15).astype(float)), 2).tolist()
    [0.04, 0.0, 0.29]
    """
    mask = particle_foreground(level) if foreground is None else foreground
    if not mask.any():
        return np.zeros(len(FACET_FEATURE_NAMES))
    labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    area = np.bincount(labels.ravel(), minlength=count + 1)
    measured = area >= _FACET_MIN_AREA_PX
    measured[0] = False
    if not measured.any():
        return np.zeros(len(FACET_FEATURE_NAMES))
    grown = ndimage.grey_dilation(labels, size=3)
    smooth = ndimage.gaussian_filter(np.asarray(level, dtype=np.float64), _SMOOTHING_PX)
    gy, gx = ndimage.sobel(smooth, 0), ndimage.sobel(smooth, 1)
    edge = grown > 0
    component = grown[edge]
    magnitude = np.hypot(gx, gy)[edge]
    theta = np.mod(np.arctan2(gy, gx)[edge], np.pi)
    total = np.maximum(np.bincount(component, magnitude, count + 1), np.finfo(np.float64).tiny)
    columns = []
    for harmonic in (4, 6):
        real = np.bincount(component, magnitude * np.cos(harmonic * theta), count + 1)
        imaginary = np.bincount(component, magnitude * np.sin(harmonic * theta), count + 1)
        columns.append(np.hypot(real, imaginary) / total)
    bins = np.minimum((theta / np.pi * _FACET_BINS).astype(np.int64), _FACET_BINS - 1)
    histogram = np.bincount(component * _FACET_BINS + bins, magnitude, (count + 1) * _FACET_BINS)
    histogram = histogram.reshape(count + 1, _FACET_BINS)
    columns.append(np.sort(histogram, axis=1)[:, -_FACET_STRONGEST_BINS:].sum(axis=1) / total)
    weight = area[measured] / area[measured].sum()
    return np.array([float(weight @ column[measured]) for column in columns])
