"""A weight-free image descriptor for machines with no CNN weights and no GPU.

:class:`ClassicDescriptor` turns one grey SEM image (data bar already cropped
away) into a fixed-length ``float32`` vector of multi-scale texture and shape
statistics: intensity moments, uniform local binary patterns, gradient
orientation harmonics, structure-tensor coherence, a radially averaged log
power spectrum with its angular harmonics, grey-level co-occurrence
statistics, the shape of an Otsu-thresholded mask and a coarse layout of the
image; optionally (``blobs=True``, the ``classic_blobs`` extractor) the size
spectra of blobs in scale space and how the blobs lie, and (``particles=True``,
the ``classic_particles`` extractor) the shapes of the particles as well
(:mod:`semcurate.features.particles`).  Everything except the
intensity moments is computed on a contrast normalised copy, and every
statistic that depends on direction is reduced to
rotation-invariant form (LBP ``uniform`` codes, magnitudes of the Fourier
harmonics of orientation histograms, averages over co-occurrence angles),
because SEM lattices and wires appear at any rotation.

Working size
------------
The image is first resampled (area averaging when shrinking, bilinear when
growing) so that its shorter side is ``working_size`` pixels (256 by default),
then halved twice more into a three-level pyramid (256, 128 and 64 px short
sides).  Resampling to a fixed short side makes the vector independent of the
acquisition resolution -- one specimen scanned at 1024 x 768 or 2048 x 1536
gives the same vector -- averages away most of the per-pixel scan noise, and
bounds the work: a 1024 x 768 image costs the same as a 341 x 256 one after
one area-averaging pass.  Images more than four times longer than they are
high (or the other way round) are centre-cropped to a 4 : 1 aspect first.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from scipy import fft as scipy_fft
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.feature import graycomatrix, graycoprops
from skimage.filters import threshold_otsu

from semcurate.features.particles import (
    FACET_FEATURE_NAMES,
    PARTICLE_FEATURE_NAMES,
    facet_statistics,
    mirror_padded,
    particle_foreground,
    particle_statistics,
)

MIN_SIDE = 8
"""Smallest accepted image side in pixels."""

MAX_ASPECT = 4.0
"""Longest accepted long-to-short side ratio; longer images are centre-cropped to it."""

_PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
_LEVELS = 3  # pyramid levels: working_size, working_size / 2, working_size / 4
_LBP_BINS = 10  # P = 8 uniform codes: 0..8 set bits, 9 = non-uniform
_EDGE_THRESHOLDS = (0.25, 0.5, 1.0)  # gradient magnitude per pixel, in standard deviations of the level
_ANGULAR_SECTORS = 36  # of the power spectrum over [0, pi)
_HARMONICS = 6  # k-th harmonic of an orientation histogram over [0, pi) measures 2k-fold symmetry
_COHERENCE_SIGMAS = (1.5, 4.0)  # structure-tensor integration scales, pixels of level 1
_SPECTRUM_BANDS = 16
_SPECTRUM_RANGES = ((0, 6), (6, 11), (11, 16))  # band groups for the angular harmonics: coarse, mid, fine
_GLCM_LEVELS = 16
_GLCM_DISTANCES = (1, 2, 4, 8)
_GLCM_ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
_GLCM_PROPERTIES = ("contrast", "homogeneity", "correlation", "energy")
_LAYOUT_GRID = 4
_EPS = 1e-12
_BLOB_SIGMAS = tuple(2.0 ** (step / 2) for step in range(9))  # 1 to 16 px of level 0, half an octave apart
_BLOB_SMOOTHING_PX = 1.0  # Gaussian applied with every scale, so that pixel noise does not make blobs of 1 px
_BLOB_PAD_PX = 32  # mirrored margin before the FFT, so that opposite edges do not meet (2 sigma of the largest scale)
_BLOB_MIN_RESPONSE = 0.3  # scale-space maxima below this response (unit-variance image) are not counted as blobs
_BLOB_MIN_PEAKS = 5  # fewer blobs than this: the point-pattern statistics take their values for no pattern
_BLOB_CROWDING_SPACINGS = 2.0  # radius of the crowding count, in mean spacings between blobs


def _lbp_table() -> np.ndarray:
    """Map each 8-bit neighbour pattern to its rotation-invariant uniform code (0..9)."""
    codes = np.arange(256)
    bits = (codes[:, None] >> np.arange(8)) & 1
    transitions = np.abs(bits - np.roll(bits, 1, axis=1)).sum(axis=1)
    return np.where(transitions <= 2, bits.sum(axis=1), 9).astype(np.uint8)


_LBP_TABLE = _lbp_table()
_DIAGONAL = np.sqrt(0.5)  # offset of a diagonal neighbour on the unit circle


def _feature_names() -> list[str]:
    names = ["intensity_mean", "intensity_std", "intensity_skew", "intensity_kurtosis"]
    names += [f"intensity_p{q:02d}" for q in _PERCENTILES]
    names += ["intensity_entropy", "std_ratio_l0", "std_ratio_l2"]
    for level in range(_LEVELS):
        names += [f"lbp_l{level}_{code:02d}" for code in range(_LBP_BINS)]
    for level in range(_LEVELS):
        names += [f"edge_l{level}_mean"] + [f"edge_l{level}_gt{t:g}" for t in _EDGE_THRESHOLDS]
        names += [f"orientation_l{level}_h{k}" for k in range(1, _HARMONICS + 1)]
    for sigma in _COHERENCE_SIGMAS:
        names += [f"coherence_s{sigma:g}_mean", f"coherence_s{sigma:g}_std"]
    names += [f"spectrum_band_{band:02d}" for band in range(_SPECTRUM_BANDS)]
    names += [f"spectrum_peak_{band:02d}" for band in range(_SPECTRUM_BANDS)]
    for group in ("coarse", "mid", "fine"):
        names += [f"spectrum_{group}_h{k}" for k in range(1, _HARMONICS + 1)]
    for distance in _GLCM_DISTANCES:
        names += [f"glcm_d{distance}_{prop}" for prop in _GLCM_PROPERTIES]
    names += ["shape_foreground", "shape_separability"]
    for side in ("fg", "bg"):
        names += [f"shape_{side}_count", f"shape_{side}_mean_area", f"shape_{side}_largest"]
    names += ["shape_boundary"]
    names += ["layout_mean_spread", "layout_std_mean", "layout_std_spread", "layout_centre_mean", "layout_centre_std"]
    return names


def _blob_feature_names() -> list[str]:
    names = [f"blob_bright_s{sigma:.3g}" for sigma in _BLOB_SIGMAS]
    names += [f"blob_skew_s{sigma:.3g}" for sigma in _BLOB_SIGMAS]
    names += [f"blob_peaks_s{sigma:.3g}" for sigma in _BLOB_SIGMAS]
    return [*names, "blob_clark_evans", "blob_crowding", "blob_crowding_cv", "blob_scale_spread"]


class ClassicDescriptor:
    """Stateless extractor of a weight-free multi-scale texture and shape descriptor.

    Parameters
    ----------
    working_size : int, default 256
        Shorter side, in pixels, of the resampled copy the statistics are
        computed on (at least 32).  256 keeps the features of typical
        1024 x 768 SEM images (lattice pitches of 5-10 % of the short side,
        wires a few pixels wide after reduction) while a 1024 x 768 image
        costs about 20 ms on one core.
    blobs : bool, default False
        Append the ``blob`` block (31 columns, below): statistics of blobs
        across scales (their sizes, and whether bright or dark) and of how
        the bright ones lie, which tell particle sizes apart (one size, a
        spread of sizes, two sizes) and say whether particles are dispersed
        or agglomerated.  It adds about 16 ms of CPU per image
        (``bench/features.py``: 41.8 against 26.2 ms per demo image, decoding
        included).
    particles : bool, default False
        Append the blob block and then the ``particle`` block (12 columns,
        :func:`~semcurate.features.particles.particle_statistics`): the
        solidity, circularity, eccentricity, extent, sizes and count of the
        connected components of the Otsu foreground, which tell flat
        polygons, round domes, rods and branched aggregates apart where the
        blob block sees particles of one size.  It implies ``blobs``: on its
        own it was not measured to help (issue 13's notes), beside the blob
        block it was.  About 15 ms more of CPU per image.
    facets : bool, default False
        With ``particles``, append the ``facet`` block (3 columns,
        :func:`~semcurate.features.particles.facet_statistics`) after the
        particle block: how straight and how 4- or 6-fold symmetric each
        particle's edges are.  The extractor stores it as a set of its own
        (``particle_facets``), which ``tree build --category-block`` appends
        to each category's rows, not as columns of ``classic_particles``.

    Attributes
    ----------
    name : str
        ``"classic"``, ``"classic_blobs"`` with the blob block, or
        ``"classic_particles"`` with the blob and particle blocks: the
        extractor's name in feature-set names.
    feature_names : list of str
        One name per output column, e.g. ``"lbp_l0_03"``, ``"spectrum_band_07"``.

    Notes
    -----
    Groups of columns (each computed on a contrast-normalised level of the
    pyramid unless said otherwise):

    * intensity (16): mean, standard deviation, skewness, excess kurtosis,
      percentiles and entropy of the full-resolution grey levels (scaled to
      [0, 1]), and the standard deviation of pyramid levels 0 and 2 relative
      to it (how much of the contrast is pixel noise);
    * ``lbp`` (30): histograms of rotation-invariant uniform local binary
      patterns, P = 8 and R = 1, on each pyramid level [1]_;
    * ``edge`` (12): mean Sobel gradient magnitude and the share of pixels
      above 0.25, 0.5 and 1 standard deviations per pixel, per level;
    * ``orientation`` (18): magnitudes of harmonics 1-6 of the
      magnitude-weighted gradient orientation distribution over [0, pi),
      relative to its total, per level; harmonic k is large for 2k-fold
      symmetric textures (k = 1 lines, 2 square, 3 hexagonal lattices) and
      does not change when the image rotates;
    * ``coherence`` (4): mean and standard deviation of structure-tensor
      coherence at two integration scales (line-like versus blob-like);
    * ``spectrum`` (50): log relative power density in 16 log-spaced radial
      frequency bands from 2 cycles per short side (1/128 cycle per pixel at
      the default working size) to 1/2 cycle per pixel of level 0 (Hann
      windowed), log peak-to-mean power per band (sharp for periodic
      lattices), and harmonics 1-6 of the angular power distribution in the
      coarse, mid and fine bands;
    * ``glcm`` (16): co-occurrence contrast, homogeneity, correlation and
      energy of level 1 quantised to 16 equal-population grey levels, at
      distances 1, 2, 4 and 8 px, averaged over four angles [2]_;
    * ``shape`` (9): foreground share and Otsu separability of level 1, and
      for the foreground and background: components per 1000 px (log),
      mean component area (log share of the image), largest component's
      share of its phase; boundary pixel density;
    * ``layout`` (5): on a 4 x 4 grid of level 2, spread of block means and
      of block standard deviations, their mean, and centre-minus-border mean
      and standard deviation (one object in the middle versus a uniform
      texture);
    * ``blob`` (31, only with ``blobs=True``): the scale-normalised Laplacian
      of Gaussian ``-sigma^2 LoG`` of level 0 (contrast normalised, with a
      1 px Gaussian against pixel noise) at 9 scales ``sigma`` = 1-16 px, half
      an octave apart [3]_.  Per scale: the mean positive response (bright
      blobs of radius about ``sigma * sqrt(2)``) as a share of the mean
      absolute response summed over the scales (the size spectrum; it does not
      change with contrast); the skewness of the response,
      ``E[r^3]/E[r^2]^1.5`` (0 where bright and dark blobs balance, positive
      for bright particles on a dark ground, negative for pits; 0 where there
      is no response); and the share of the bright blobs found there (maxima
      of the response over space and scale above 0.3).  The mean negative
      response is not a column: the kernel sums to zero, so it equals the
      positive one up to the border.  Over those blobs' centres: the
      Clark-Evans ratio (mean nearest-neighbour distance over its value for
      points thrown at random, 1; below 1 clustered, up to 2.15 for a
      hexagonal lattice) [4]_, their mean count within 2 mean spacings over
      the count random points would have (above 1: agglomerates), the
      coefficient of variation of that count, and the standard deviation of
      the natural log of their scales (0 for particles of one size).  With
      fewer than 5 blobs the last four are 1, 1, 0 and 0: no pattern.
    * ``particle`` (12, only with ``particles=True``): see
      :func:`~semcurate.features.particles.particle_statistics`, on the
      contrast-normalised level 0;
    * ``facet`` (3, only with ``facets=True``): see
      :func:`~semcurate.features.particles.facet_statistics`, on the same level.

    Every column is finite for any accepted input, constant images included.
    Cost is O(working_size^2 log working_size) after one O(h w) resampling
    pass; memory is a few copies of the working image.

    References
    ----------
    .. [1] T. Ojala, M. Pietikäinen and T. Mäenpää, "Multiresolution gray-scale
       and rotation invariant texture classification with local binary
       patterns", IEEE TPAMI 24(7), 971-987, 2002.
    .. [2] R. M. Haralick, K. Shanmugam and I. Dinstein, "Textural features for
       image classification", IEEE TSMC 3(6), 610-621, 1973.
    .. [3] T. Lindeberg, "Feature detection with automatic scale selection",
       International Journal of Computer Vision 30(2), 79-116, 1998.
    .. [4] P. J. Clark and F. C. Evans, "Distance to nearest neighbor as a
       measure of spatial relationships in populations", Ecology 35(4),
       445-451, 1954.

    Examples
    --------
    Black and white stripes 8 px wide: half the grey levels are 0 and half 1
    (after scaling), so mean and standard deviation are 0.5, the skewness is 0
    and the excess kurtosis of a two-point distribution is 1 - 3 = -2:

    >>> descriptor = ClassicDescriptor()
    >>> descriptor.dimension  # 16 + 30 + 12 + 18 + 4 + 50 + 16 + 9 + 5
    160
    >>> ClassicDescriptor(blobs=True).dimension  # and the blob block: 9 + 9 + 9 + 4
    191
    >>> ClassicDescriptor(particles=True).dimension  # and the particle block
    203
    >>> ClassicDescriptor(particles=True, facets=True).dimension  # and the facet block
    206
    >>> stripes = np.tile(np.repeat(np.array([0, 255], dtype=np.uint8), 8), (128, 8))
    >>> vector = descriptor.describe(stripes)
    >>> vector.shape, vector.dtype
    ((160,), dtype('float32'))
    >>> dict(zip(descriptor.feature_names[:4], vector[:4].tolist()))
    {'intensity_mean': 0.5, 'intensity_std': 0.5, 'intensity_skew': 0.0, 'intensity_kurtosis': -2.0}
    """

    name = "classic"

    def __init__(self, *, working_size: int = 256, blobs: bool = False, particles: bool = False, facets: bool = False):
        if facets and not particles:
            raise ValueError("the facet block follows the particle block: facets=True needs particles=True")
        self.working_size = working_size
        self.blobs = blobs
        self.particles = particles
        self.facets = facets
        self.name = "classic_particles" if particles else "classic_blobs" if blobs else "classic"
        self.feature_names = _feature_names()
        if blobs or particles:
            self.feature_names += _blob_feature_names()
        if particles:
            self.feature_names += list(PARTICLE_FEATURE_NAMES)
        if facets:
            self.feature_names += list(FACET_FEATURE_NAMES)

    @property
    def dimension(self) -> int:
        """Length of one descriptor vector."""
        return len(self.feature_names)

    def describe(self, grey: np.ndarray) -> np.ndarray:
        """Describe one grey image.

        Parameters
        ----------
        grey : numpy.ndarray
            2-D array of shape ``(height, width)``, both sides at least 8 px,
            grey levels 0-255 (``uint8``; other real dtypes are clipped to
            0-255 and rounded).  Colour images are refused: convert them to
            grey first, as the ingest stage does.

        Returns
        -------
        numpy.ndarray
            ``float32`` array of shape ``(dimension,)``, every entry finite.

        Raises
        ------
        ValueError
            If ``grey`` is not 2-D, a side is shorter than 8 px, or
            ``working_size`` is below 32.
        """
        if self.working_size < 32:
            raise ValueError(f"working_size must be at least 32 pixels, got {self.working_size}")
        grey = np.asarray(grey)
        if grey.ndim != 2:
            raise ValueError(
                f"expected a 2-D grey image of shape (height, width), got shape {grey.shape}; "
                "convert colour images to grey first"
            )
        if min(grey.shape) < MIN_SIDE:
            raise ValueError(f"image of shape {grey.shape} is too small; both sides must be at least {MIN_SIDE} px")
        if grey.dtype != np.uint8:
            grey = np.rint(np.clip(np.nan_to_num(grey.astype(np.float64)), 0, 255)).astype(np.uint8)
        grey = _crop_aspect(grey)
        pyramid = _pyramid(grey, self.working_size)
        normalised = [_standardise(level) for level in pyramid]
        parts = [
            _intensity(grey, pyramid),
            *(_lbp_histogram(level) for level in normalised),
        ]
        gradients = [_gradients(level) for level in normalised]
        parts += [_gradient_statistics(gy, gx) for gy, gx in gradients]
        parts += [_coherence(*gradients[1]), _spectrum(normalised[0]), _glcm(pyramid[1])]
        parts += [_shape(pyramid[1]), _layout(normalised[2])]
        if self.blobs or self.particles:
            parts.append(_blob_statistics(normalised[0]))
        if self.particles:
            foreground = particle_foreground(normalised[0])  # once for the particle and facet blocks
            parts.append(particle_statistics(normalised[0], foreground))
        if self.facets:
            parts.append(facet_statistics(normalised[0], foreground))
        vector = np.concatenate(parts)
        return np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def transform(self, images: list[np.ndarray]) -> np.ndarray:
        """Describe many images.

        Parameters
        ----------
        images : list of numpy.ndarray
            Grey images, each as accepted by :meth:`describe`; sizes may differ.

        Returns
        -------
        numpy.ndarray
            ``float32`` array of shape ``(len(images), dimension)``; row i describes ``images[i]``.
        """
        rows = [self.describe(image) for image in images]
        return np.stack(rows) if rows else np.empty((0, self.dimension), dtype=np.float32)


def _crop_aspect(grey: np.ndarray) -> np.ndarray:
    """Centre-crop the long side so it is at most ``MAX_ASPECT`` times the short side."""
    height, width = grey.shape
    limit = int(MAX_ASPECT * min(height, width))
    top = max(0, (height - limit) // 2)
    left = max(0, (width - limit) // 2)
    return grey[top : top + min(height, limit), left : left + min(width, limit)]


def _resize(image: Image.Image, width: int, height: int) -> Image.Image:
    """Resample a float (mode ``F``) image: area average when shrinking, bilinear when growing."""
    shrinking = width <= image.width and height <= image.height
    return image.resize((width, height), Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR)


def _pyramid(grey: np.ndarray, working_size: int) -> list[np.ndarray]:
    """Three float32 levels in [0, 1] with short sides working_size, /2 and /4."""
    height, width = grey.shape
    scale = working_size / min(height, width)
    level = _resize(
        Image.fromarray(grey).convert("F"),
        max(working_size, round(width * scale)),
        max(working_size, round(height * scale)),
    )
    levels = [level]
    for _ in range(1, _LEVELS):
        levels.append(_resize(levels[-1], levels[-1].width // 2, levels[-1].height // 2))
    return [np.asarray(level, dtype=np.float32) / np.float32(255.0) for level in levels]


def _standardise(level: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation (all zeros for a constant level)."""
    centred = level - level.mean()
    std = centred.std()
    return centred / std if std > 1e-6 else np.zeros_like(centred)


def _intensity(grey: np.ndarray, pyramid: list[np.ndarray]) -> np.ndarray:
    """Moments, percentiles and entropy of the full-resolution grey levels, exact from their histogram."""
    counts = np.array(Image.fromarray(grey).histogram(), dtype=np.float64)
    share = counts / counts.sum()
    values = np.arange(256) / 255.0
    mean = share @ values
    centred = values - mean
    variance = share @ centred**2
    std = np.sqrt(variance)
    skew = (share @ centred**3) / (std**3 + _EPS) if std > 1e-6 else 0.0
    kurtosis = (share @ centred**4) / (variance**2 + _EPS) - 3.0 if std > 1e-6 else 0.0
    cumulative = np.cumsum(share)
    percentiles = [np.searchsorted(cumulative, q / 100.0) / 255.0 for q in _PERCENTILES]
    nonzero = share[share > 0]
    entropy = -(nonzero @ np.log2(nonzero)) / 8.0
    ratios = [level.std() / std if std > 1e-6 else 0.0 for level in (pyramid[0], pyramid[-1])]
    return np.array([mean, std, skew, kurtosis, *percentiles, entropy, *ratios])


def _lbp_histogram(level: np.ndarray) -> np.ndarray:
    """Share of each rotation-invariant uniform LBP code (P = 8, R = 1, bilinear diagonals) [Ojala 2002]."""
    centre = level[1:-1, 1:-1]
    height, width = centre.shape

    def shifted(dy: int, dx: int) -> np.ndarray:
        return level[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]

    near, far = 1.0 - _DIAGONAL, _DIAGONAL
    code = np.zeros(centre.shape, dtype=np.uint8)
    # neighbours in circular order; a diagonal sample interpolates the 2 x 2 block towards that corner
    for bit, (dy, dx) in enumerate(((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))):
        if dy and dx:
            sample = near * near * centre + near * far * (shifted(dy, 0) + shifted(0, dx)) + far * far * shifted(dy, dx)
        else:
            sample = shifted(dy, dx)
        code |= (sample >= centre).view(np.uint8) << bit
    counts = np.bincount(_LBP_TABLE[code].ravel(), minlength=_LBP_BINS)
    return counts / max(1, counts.sum())


def _gradients(level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel derivatives per pixel (divided by the kernel's weight 8), rows then columns."""
    return ndimage.sobel(level, axis=0) / 8.0, ndimage.sobel(level, axis=1) / 8.0


def _gradient_statistics(gy: np.ndarray, gx: np.ndarray) -> np.ndarray:
    """Edge density and rotation-invariant orientation harmonics of one level's gradients.

    Returns the mean gradient magnitude, the share of pixels above each edge
    threshold, then harmonics 1-6 of the magnitude-weighted orientation
    distribution over [0, pi): ``|sum m exp(2ik theta)| / sum m`` over pixels
    with gradient magnitude m and direction theta, computed from powers of the
    squared unit gradient so that no angle is ever evaluated.
    """
    gradient = gx.astype(np.complex64) + 1j * gy.astype(np.complex64)
    magnitude = np.abs(gradient)
    edges = [magnitude.mean(), *((magnitude > t).mean() for t in _EDGE_THRESHOLDS)]
    safe = np.maximum(magnitude, 1e-6)
    doubled = gradient * gradient / safe  # m exp(2i theta)
    turn = doubled / safe  # exp(2i theta), 0 where flat
    total = magnitude.sum(dtype=np.float64)
    harmonics = []
    for _ in range(_HARMONICS):
        harmonics.append(abs(doubled.sum(dtype=np.complex128)) / (total + _EPS))
        doubled = doubled * turn
    return np.array(edges + harmonics)


def _coherence(gy: np.ndarray, gx: np.ndarray) -> np.ndarray:
    """Mean and spread of structure-tensor coherence (0 isotropic, 1 one direction) at each integration scale."""
    products = np.stack([gy * gy, gx * gx, gx * gy])
    features = []
    for sigma in _COHERENCE_SIGMAS:
        jyy, jxx, jxy = ndimage.gaussian_filter(products, (0, sigma, sigma), truncate=3.0)
        coherence = np.hypot(jxx - jyy, 2 * jxy) / (jxx + jyy + 1e-6)
        features += [coherence.mean(), coherence.std()]
    return np.array(features)


@functools.lru_cache(maxsize=8)
def _spectrum_geometry(height: int, width: int) -> tuple[np.ndarray, ...]:
    """Window and frequency-bin bookkeeping of :func:`_spectrum` for one level shape (cached: shapes repeat).

    Returns the Hann window, the flat indices of the half-plane spectrum bins
    that fall in a radial band, their order grouped by band, where each
    non-empty band starts in that order, the bins per band, and each bin's
    (band group, angular sector) index with the bins per such cell.
    """
    window = np.outer(np.hanning(height), np.hanning(width)).astype(np.float32)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    edges = np.geomspace(2.0 / min(height, width), 0.5, _SPECTRUM_BANDS + 1)
    band = (np.searchsorted(edges, np.hypot(fy, fx), side="right") - 1).ravel()
    keep = np.flatnonzero((band >= 0) & (band < _SPECTRUM_BANDS))
    band = band[keep]
    order = np.argsort(band, kind="stable")
    counts = np.bincount(band, minlength=_SPECTRUM_BANDS)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[counts > 0]
    angle = (np.arctan2(fy, fx) % np.pi).ravel()[keep]
    sector = np.minimum((angle * (_ANGULAR_SECTORS / np.pi)).astype(np.intp), _ANGULAR_SECTORS - 1)
    group = np.searchsorted([high for _, high in _SPECTRUM_RANGES], band, side="right")
    cell = group * _ANGULAR_SECTORS + sector
    cell_counts = np.bincount(cell, minlength=len(_SPECTRUM_RANGES) * _ANGULAR_SECTORS)
    tables = (window, keep, order, starts, counts, cell, cell_counts)
    for table in tables:
        table.flags.writeable = False
    return tables


def _spectrum(level: np.ndarray) -> np.ndarray:
    """Radial band densities, band peakiness and angular harmonics of the Hann-windowed power spectrum.

    Bands are log-spaced from 2 cycles per short side to 1/2 cycle per pixel.
    A real image's spectrum is point-symmetric, so the half plane of
    ``rfft2`` holds every distinct power.
    """
    window, keep, order, starts, counts, cell, cell_counts = _spectrum_geometry(*level.shape)
    power = (np.abs(np.fft.rfft2(level * window)) ** 2).ravel()[keep].astype(np.float64)
    sums = np.add.reduceat(power[order], starts) if starts.size else np.zeros(0)
    peaks = np.maximum.reduceat(power[order], starts) if starts.size else np.zeros(0)
    nonempty = counts > 0
    density = np.zeros(_SPECTRUM_BANDS)
    peakiness = np.zeros(_SPECTRUM_BANDS)
    density[nonempty] = (sums / (power.sum() + _EPS)) / (counts[nonempty] / counts.sum())
    peakiness[nonempty] = peaks / (sums / counts[nonempty] + _EPS)
    sectors = np.bincount(cell, weights=power, minlength=cell_counts.size) / np.maximum(cell_counts, 1)
    angular = np.abs(np.fft.rfft(sectors.reshape(len(_SPECTRUM_RANGES), _ANGULAR_SECTORS), axis=1))
    angular = angular[:, 1 : _HARMONICS + 1] / (angular[:, :1] + _EPS)
    return np.concatenate([np.log10(density + 1e-8), np.log10(peakiness + 1.0), angular.ravel()])


def _glcm(level: np.ndarray) -> np.ndarray:
    """Co-occurrence statistics of equal-population grey levels, averaged over four angles [Haralick 1973]."""
    cuts = np.quantile(level, np.arange(1, _GLCM_LEVELS) / _GLCM_LEVELS)
    quantised = np.searchsorted(cuts, level, side="right").astype(np.uint8)  # ties share a level
    matrix = graycomatrix(quantised, _GLCM_DISTANCES, _GLCM_ANGLES, levels=_GLCM_LEVELS, symmetric=True, normed=True)
    table = np.stack([graycoprops(matrix, prop).mean(axis=1) for prop in _GLCM_PROPERTIES], axis=1)
    table[:, 0] /= (_GLCM_LEVELS - 1) ** 2  # contrast to [0, 1]
    return table.ravel()


def _phase_statistics(mask: np.ndarray) -> list[float]:
    """Components per 1000 px (log), mean component area (log share of the image), largest component's share."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return [0.0, np.log10(1.0 / mask.size), 0.0]
    areas = np.bincount(labels.ravel())[1:]
    return [
        np.log1p(1000.0 * count / mask.size),
        np.log10(areas.mean() / mask.size),
        areas.max() / areas.sum(),
    ]


def _shape(level: np.ndarray) -> np.ndarray:
    """Statistics of the Otsu foreground and background of a pyramid level."""
    variance = level.var()
    if variance < 1e-12:
        mask = np.zeros(level.shape, dtype=bool)
        separability = 0.0
    else:
        mask = level > threshold_otsu(level)
        share = mask.mean()
        between = share * (1 - share) * (level[mask].mean() - level[~mask].mean()) ** 2 if 0 < share < 1 else 0.0
        separability = between / variance
    boundary = (np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])) / mask.size
    return np.array(
        [mask.mean(), separability, *_phase_statistics(mask), *_phase_statistics(~mask), boundary],
    )


def _layout(level: np.ndarray) -> np.ndarray:
    """Block statistics on a coarse grid: uniform texture versus one object in the middle."""
    height, width = level.shape
    grid = _LAYOUT_GRID
    blocks = level[: height // grid * grid, : width // grid * grid].reshape(grid, height // grid, grid, width // grid)
    means = blocks.mean(axis=(1, 3))
    stds = blocks.std(axis=(1, 3))
    centre = np.zeros((grid, grid), dtype=bool)
    centre[1:-1, 1:-1] = True
    return np.array(
        [
            means.std(),
            stds.mean(),
            stds.std(),
            means[centre].mean() - means[~centre].mean(),
            stds[centre].mean() - stds[~centre].mean(),
        ]
    )


def _scale_space(level: np.ndarray) -> np.ndarray:
    """``-sigma^2 LoG`` of ``level`` at every scale of ``_BLOB_SIGMAS``, shape ``(scales, height, width)``, float32.

    One FFT of the level padded by mirroring by at least ``_BLOB_PAD_PX`` on every side
    (:func:`~semcurate.features.particles.mirror_padded`); one inverse per scale.  The transfer function
    of ``-sigma^2 LoG`` after a Gaussian of ``_BLOB_SMOOTHING_PX`` is
    ``4 pi^2 sigma^2 |f|^2 exp(-2 pi^2 (sigma^2 + s0^2) |f|^2)`` (:func:`_blob_transfer_functions`).
    """
    padded, pad = mirror_padded(level, _BLOB_PAD_PX)
    padded_shape = padded.shape
    spectrum = scipy_fft.rfft2(padded)
    height, width = level.shape
    return np.stack(
        [
            scipy_fft.irfft2(spectrum * transfer, s=padded_shape)[pad : pad + height, pad : pad + width]
            for transfer in _blob_transfer_functions(padded_shape)
        ]
    ).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=4)
def _blob_transfer_functions(shape: tuple[int, int]) -> np.ndarray:
    """The transfer functions of :func:`_scale_space` for a real FFT of ``shape``, one per scale, float32 and
    read-only: computed once per padded shape, which most images of a repository share.  Four shapes are kept: a
    panorama's can take 24 MB (9 x 320 x 2,081 float32 values for a level of 256 x 4,096 px)."""
    fy = np.fft.fftfreq(shape[0]).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(shape[1]).astype(np.float32)[None, :]
    squared = fy * fy + fx * fx
    transfers = np.stack(
        [
            (4 * np.pi**2 * sigma**2) * squared * np.exp(-2 * np.pi**2 * (sigma**2 + _BLOB_SMOOTHING_PX**2) * squared)
            for sigma in _BLOB_SIGMAS
        ]
    ).astype(np.float32)
    transfers.setflags(write=False)
    return transfers


def _blob_statistics(level: np.ndarray) -> np.ndarray:
    """The ``blob`` block of :class:`ClassicDescriptor`: the size spectrum of bright blobs, the skewness of the
    response at each scale, the scales of the bright blobs found, and how their centres lie (see the class
    docstring)."""
    stack = _scale_space(level)
    bright = np.clip(stack, 0, None).mean(axis=(1, 2), dtype=np.float64)
    total = np.abs(stack).mean(axis=(1, 2), dtype=np.float64).sum() + _EPS
    squared = np.square(stack, dtype=np.float64)
    energy = squared.mean(axis=(1, 2))
    skew = np.where(energy > _EPS, (squared * stack).mean(axis=(1, 2)) / np.maximum(energy, _EPS) ** 1.5, 0.0)
    peaks = (stack == _neighbourhood_maximum(stack)) & (stack > _BLOB_MIN_RESPONSE)
    scale_index, rows, cols = np.nonzero(peaks)
    found = np.bincount(scale_index, minlength=len(_BLOB_SIGMAS)).astype(np.float64)
    pattern = _point_pattern(rows, cols, scale_index, level.size)
    return np.concatenate([bright / total, skew, found / max(found.sum(), 1.0), pattern])


def _neighbourhood_maximum(stack: np.ndarray) -> np.ndarray:
    """The maximum over each element's 3 x 3 x 3 neighbourhood (scale, row, column), edges repeated: what
    ``ndimage.maximum_filter(stack, size=3)`` returns (its ``reflect`` mode repeats the edge at this size), as three
    running maxima over shifted views: 1.3 against 21.7 ms on a 9 x 256 x 340 stack, by hand."""
    result = np.pad(stack, 1, mode="edge")
    for axis in range(stack.ndim):
        length = result.shape[axis] - 2
        before, centre, after = (result[(slice(None),) * axis + (slice(start, start + length),)] for start in range(3))
        larger = np.maximum(before, centre)
        result = np.maximum(larger, after, out=larger)
    return result


def _point_pattern(rows: np.ndarray, cols: np.ndarray, scale_index: np.ndarray, area_px: int) -> list[float]:
    """Clark-Evans ratio, crowding and its coefficient of variation, spread of log scales of the blobs found at
    pixels ``(rows, cols)`` of a level of ``area_px`` pixels (no edge correction: blobs near the frame have
    fewer neighbours, which raises the ratio and lowers the crowding a little, as the tests measure)."""
    if len(rows) < _BLOB_MIN_PEAKS:
        return [1.0, 1.0, 0.0, 0.0]
    points = np.column_stack([cols, rows]).astype(np.float64)
    tree = cKDTree(points)
    nearest, _ = tree.query(points, 2)
    density = len(points) / area_px
    clark_evans = nearest[:, 1].mean() * 2.0 * np.sqrt(density)
    radius = _BLOB_CROWDING_SPACINGS / np.sqrt(density)
    neighbours = tree.query_ball_point(points, radius, return_length=True) - 1.0
    crowding = neighbours.mean() / (density * np.pi * radius**2)
    return [
        float(clark_evans),
        float(crowding),
        float(neighbours.std() / max(neighbours.mean(), _EPS)),
        float(np.log(np.asarray(_BLOB_SIGMAS)[scale_index]).std()),
    ]
