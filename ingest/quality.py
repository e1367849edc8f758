"""Image quality: scores of one picture, and flags from thresholds set on a repository's score distributions.

What a curator asks after "what is duplicated?" is "what is unusable?":
focusing shots, under- and over-exposed frames, charging artefacts, blank
frames, optical-camera (navcam) colour pictures, images of odd size.  This
core scores one image (:func:`score_image`) on its picture, the data bar cut
away, and sets the thresholds of every flag from the scores of a whole
repository (:func:`set_thresholds`), as cleanvision does for photo
collections: what counts as blurred in a repository of smooth low-magnification
fields is not what counts as blurred among sharp nanostructures.

Scores (:class:`QualityScores`; grey levels are on the 0-255 scale whatever
the image's bit depth):

``sharpness``
    −log10 of the width of the picture's sharpest edges (a Gaussian sigma)
    as a share of the field's shorter side (:func:`edge_width`; the field is
    the image less its data bar: flat rows cut away next to the bar are part
    of the field, only without edges to measure): the ratio of fine-
    to coarse-scale gradient energy where the gradients are steepest, which a
    blur lowers and a smooth specimen with crisp rims does not.  A share of the
    field, not of nm: the picture is reduced to a fixed number of px across,
    so an image is not called blurred for being large, small, of low contrast
    or of a smooth specimen.  Its blind spot: a fine periodic array (pitch
    under about a tenth of the field) blurred keeps its pitch as a sinusoid,
    whose gradients look like those of crisp edges.
``spectral_sharpness``
    share of the picture's spectral energy (noise floor removed) above 1/8
    cycle per px at :data:`WORKING_SIDE` px on the shorter side: the
    frequency-domain measure.
``brightness``, ``median_brightness``, ``clipped_low``, ``clipped_high``, ``dynamic_range``
    mean and median grey level (the median is what most of the picture
    shows, whatever a dark corner or a data bar left in do: over-exposure
    is read on it); shares of pixels at 0 and at 255 (saturation);
    0.5-99.5 percentile spread in grey levels.
``entropy``
    of the 256-bin grey histogram, in bits (cleanvision's low-information
    score).
``noise``
    standard deviation of the pixel noise in grey levels (Immerkær 1996,
    robust form: median of the absolute response to his 3 × 3 kernel).
``structure``
    standard deviation, in grey levels, of the picture reduced to a 32 px
    shorter side, less what the pixel noise leaves of it: the picture's
    content (0 for a blank frame).
``charging``
    how far the most abrupt step between scan lines stands out, as a robust
    z-score over the rows: charging raises whole scan lines or bands of lines
    at once, with edges one line sharp; the rows that stand out are kept
    (``charging_rows``).
``colourfulness``
    Hasler and Süsstrunk's (2003) colourfulness of an RGB picture; 0 for grey.

The picture is the image less its data bar (the stripe the scale reader found, a margin past it, and a blank
band of the bar next to it that the stripe left out, :func:`bar_band_rows`).

Bad input never raises: a constant, 1-pixel-high, 16-bit, float, NaN-holding
or oddly shaped array gives every score it can and a ``reason`` for each it
cannot (:func:`score_image`).

References
----------
Immerkær, J. (1996). Fast noise variance estimation. *Computer Vision and Image Understanding* 64(2), 300-302.
Hasler, D., Süsstrunk, S. (2003). Measuring colourfulness in natural images. *Proc. SPIE* 5007, 87-95.
Zhuo, S., Sim, T. (2011). Defocus map estimation from a single image. *Pattern Recognition* 44(9), 1852-1858
(the ratio of gradients at two Gaussian scales).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
from PIL import Image
from scipy import fft, ndimage

#: Shorter side, in px, of the picture on which sharpness is measured (larger pictures are area-reduced).
WORKING_SIDE = 256
#: Shorter side, in px, of the picture whose standard deviation is the ``structure`` score.
STRUCTURE_SIDE = 32
#: About this many pixels (a regular grid) give the percentiles of the dynamic range.
SAMPLE_PIXELS = 65536
#: Side, in px, of the central square the noise is estimated on (the noise is taken to be the same everywhere).
NOISE_SIDE = 256
#: Least row-level noise (grey levels) the charging z-score divides by, so that flat or saturated pictures,
#: whose rows barely vary, do not turn every small step into an outlier.
CHARGING_FLOOR = 0.5
#: Rows whose 4-px column means vary less than this (grey levels) are flat: no scan of a specimen.
FLAT_ROW_STD = 0.75
#: Least spread the charging z-score divides by, as a share of the picture's dynamic range.
CHARGING_RANGE_SHARE = 0.04
#: Rows above a data bar that was cut away that are cut too, as a share of the height (at least 4 rows): the
#: reader's stripe may start a few rows below the bar's edge, and a rule or a frame is no picture.
BAR_MARGIN = 0.01
#: Most grey levels a row of a data bar's blank band varies by (JPEG noise on a flat fill).
BAND_SPREAD = 2.0
#: Share of the rows, from the bottom, that the charging score ignores when no data bar was found there.
BAR_SEARCH = 0.25
#: Rows whose charging z-score exceeds this are listed in ``charging_rows``.
CHARGING_ROW_Z = 3.5

#: The flags, each with the score it reads, the direction that is bad, and how its threshold is set from a
#: repository's scores: the median less (below) or plus (above) ``z`` spreads (1.4826 × the median absolute
#: deviation), held within ``bounds`` so that a repository of uniformly fine (or uniformly poor) images neither
#: flags its best nor passes its worst; ``z`` = 0 takes the bound alone (colour, odd size and aspect are absolute).
FLAG_RULES: dict[str, dict] = {
    "blurred": {"score": "sharpness", "direction": "below", "z": 4.0, "bounds": (1.75, 1.84)},
    "dark": {"score": "brightness", "direction": "below", "z": 2.5, "bounds": (20.0, 50.0)},
    "light": {"score": "median_brightness", "direction": "above", "z": 2.5, "bounds": (190.0, 200.0)},
    "saturated": {"score": "clipped", "direction": "above", "z": 4.0, "bounds": (0.05, 0.5)},
    "low_information": {"score": "structure", "direction": "below", "z": 4.0, "bounds": (0.3, 1.0)},
    "noisy": {"score": "noise", "direction": "above", "z": 4.0, "bounds": (20.0, 60.0)},
    "charging": {"score": "charging", "direction": "above", "z": 4.0, "bounds": (6.0, 20.0)},
    "colour": {"score": "colourfulness", "direction": "above", "z": 0.0, "bounds": (5.0, 5.0)},
    "odd_size": {"score": "size_ratio", "direction": "above", "z": 0.0, "bounds": (10.0, 10.0)},
    "odd_aspect": {"score": "aspect", "direction": "below", "z": 0.0, "bounds": (0.5, 0.5)},
}
#: Every flag, in the order listings show them.
FLAGS = tuple(FLAG_RULES)
#: The flags that say an image's picture cannot be told apart from others of its sub-category: what ``tree
#: build`` leaves out by default.  Split over the true categories, the trees of the demo's 1,000- and
#: 1,300-image stores reach leaf NMI 0.877 and 0.884 with these images and 0.920 and 0.915 without them
#: (bench/results/tree_truth.json).  ``odd_size`` and ``odd_aspect`` are not among them: a stitched panorama or
#: a thumbnail shows its specimen as well as any other image once scaled to the extractor's working size.
UNUSABLE_PICTURE_FLAGS = tuple(flag for flag in FLAGS if flag not in ("odd_size", "odd_aspect"))
#: Scores a repository's thresholds are set from that are not stored as such but derived from the stored ones.
DERIVED_SCORES = ("clipped", "size_ratio")


@dataclass(frozen=True)
class QualityScores:
    """The quality scores of one image (see the module docstring for each score's meaning and unit).

    ``width``/``height`` are the whole image's size in px; ``picture_height``
    the rows scored (the data bar cut away unless ``bar_included``).  A score
    that cannot be computed is None and ``reason`` says why; ``reason`` also
    records how the pixels were read (a 16-bit or float image, the bar kept).
    ``aspect`` is the shorter over the longer side (1 for a square).
    """

    width: int
    height: int
    picture_height: int
    bar_included: bool
    aspect: float
    sharpness: float | None = None
    spectral_sharpness: float | None = None
    brightness: float | None = None
    median_brightness: float | None = None
    clipped_low: float | None = None
    clipped_high: float | None = None
    dynamic_range: float | None = None
    entropy: float | None = None
    noise: float | None = None
    structure: float | None = None
    charging: float | None = None
    charging_rows: tuple[int, ...] = ()
    colourfulness: float | None = None
    reason: str | None = None

    def as_dict(self) -> dict:
        """The scores as a plain dict (``charging_rows`` as a list)."""
        values = asdict(self)
        values["charging_rows"] = list(self.charging_rows)
        return values


#: Names of the numeric scores of :class:`QualityScores` that thresholds are set from.
SCORE_NAMES = tuple(
    item.name
    for item in fields(QualityScores)
    if item.name not in ("width", "height", "picture_height", "bar_included", "charging_rows", "reason")
)


def to_grey(array: np.ndarray) -> tuple[np.ndarray | None, float | None, list[str]]:
    """A 2-D float grey picture on the 0-255 scale, the colourfulness, and notes on how it was read.

    ``uint8`` is taken as it is (as float32), ``uint16`` divided by 257 (65535 is 255),
    booleans times 255, other integers and floats outside 0..1 stretched from
    their min..max (noted), floats within 0..1 times 255; NaN and infinite
    pixels are replaced by the median (noted).  RGB(A) arrays
    ``(h, w, 3|4)`` give their colourfulness and the mean of the channels;
    ``(h, w, 1|2)`` their first channel.  Anything else gives ``None`` and
    the reason.

    Examples
    --------
    >>> grey, colourful, notes = to_grey(np.array([[0, 65535]], dtype=np.uint16))
    >>> grey.tolist(), colourful, notes
    ([[0.0, 255.0]], None, ['16-bit image: grey levels divided by 257'])
    """
    notes: list[str] = []
    values = np.asarray(array)
    if values.ndim == 3 and values.shape[2] in (1, 2):
        values = values[..., 0]
    if values.ndim not in (2, 3) or (values.ndim == 3 and values.shape[2] not in (3, 4)):
        return None, None, [f"cannot score an array of shape {values.shape}: expected (h, w) or (h, w, 3|4)"]
    if values.size == 0:
        return None, None, [f"empty image of shape {values.shape}"]
    if values.dtype == np.bool_:
        scaled = values.astype(np.float64) * 255.0
    elif values.dtype == np.uint8:
        scaled = values.astype(np.float32)
    elif values.dtype == np.uint16:
        scaled = values.astype(np.float64) / 257.0
        notes.append("16-bit image: grey levels divided by 257")
    elif np.issubdtype(values.dtype, np.number):
        scaled = values.astype(np.float64)
        finite = np.isfinite(scaled)
        if not finite.all():
            if not finite.any():
                return None, None, ["no finite pixel value"]
            scaled[~finite] = np.median(scaled[finite])
            notes.append(f"{int((~finite).sum())} NaN or infinite pixels replaced by the median")
        low, high = float(scaled.min()), float(scaled.max())
        if np.issubdtype(values.dtype, np.floating) and low >= 0.0 and high <= 1.0:
            scaled *= 255.0
            notes.append("float image in 0..1: times 255")
        else:
            scaled = (scaled - low) * (255.0 / (high - low)) if high > low else np.zeros_like(scaled)
            notes.append(f"{values.dtype} image stretched from {low:.6g}..{high:.6g} to 0..255")
    else:
        return None, None, [f"cannot score pixels of type {values.dtype}"]
    if scaled.ndim == 2:
        return scaled, None, notes
    rgb = scaled[..., :3]
    return rgb.mean(axis=2), colourfulness(rgb), notes


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Süsstrunk's colourfulness of an ``(h, w, 3)`` picture on the 0-255 scale; 0 for grey.

    Examples
    --------
    >>> colourfulness(np.full((4, 4, 3), 128.0))
    0.0
    >>> red = np.dstack([np.full((4, 4), 200.0), np.zeros((4, 4)), np.zeros((4, 4))])
    >>> round(colourfulness(red), 2)  # 0.3 × hypot(200, 100): no spread, only the mean chroma
    67.08
    """
    red, green, blue = (rgb[..., channel].astype(np.float64) for channel in range(3))
    rg = red - green
    yb = 0.5 * (red + green) - blue
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def picture_rows(height: int, stripe_box: Sequence[int] | None) -> tuple[int, int]:
    """The rows ``(first, end)`` of the picture: above the data bar, or below it when the bar is on top.

    Examples
    --------
    >>> picture_rows(768, (0, 700, 1024, 768)), picture_rows(768, None), picture_rows(768, (0, 0, 1024, 40))
    ((0, 700), (0, 768), (40, 768))
    """
    if stripe_box is None:
        return 0, height
    _x0, y0, _x1, y1 = (int(value) for value in stripe_box)
    y0, y1 = max(0, min(y0, height)), max(0, min(y1, height))
    return (0, y0) if y0 >= height - y1 else (y1, height)


def bar_band_rows(picture: np.ndarray, bar_below: bool) -> int:
    """How many rows of ``picture`` next to its data bar are one flat grey level: a blank band of the bar.

    Data bars often have a blank band between the picture and the text that
    the stripe found may not include; left in, its edge is one abrupt step
    across every column (a charging streak to the charging score) and its
    level weighs in the structure of a blank frame.  The rows counted, from
    the bar's side (the last rows when ``bar_below``, else the first), are
    those within :data:`BAND_SPREAD` grey levels from end to end of the row
    (every 4th column) and of the first row's mean; none when they would be
    more than half the picture (then the flat rows are the picture).

    Examples
    --------
    >>> picture = np.full((100, 40), 120, np.uint8)
    >>> picture[:70] = np.random.default_rng(0).integers(0, 255, (70, 40))
    >>> bar_band_rows(picture, bar_below=True), bar_band_rows(picture, bar_below=False)
    (30, 0)
    """
    grey = picture if picture.ndim == 2 else picture[..., 0]
    half = grey.shape[0] // 2
    rows = grey[::-1][: half + 1] if bar_below else grey[: half + 1]
    sample = np.asarray(rows[:, ::4], dtype=np.float32)
    if sample.size == 0:
        return 0
    spread = sample.max(axis=1) - sample.min(axis=1)
    level = sample.mean(axis=1)
    flat = (spread <= BAND_SPREAD) & (np.abs(level - level[0]) <= BAND_SPREAD / 2)
    run = int(np.argmin(flat)) if not flat.all() else flat.size
    return run if run <= half else 0


def estimate_noise(grey: np.ndarray) -> float:
    """Standard deviation of the pixel noise (grey levels), from Immerkær's 3 × 3 kernel, robustly.

    The kernel cancels planes and constant offsets per row or column; its
    response to white noise of deviation σ has deviation 6σ, and the median of
    its absolute value (0.6745 of that for Gaussian noise) ignores the edges
    that the plain mean of Immerkær (1996) would count as noise.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(estimate_noise(100 + 5 * rng.standard_normal((300, 300))), 1)
    5.0
    """
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    top, left = max(0, (grey.shape[0] - NOISE_SIDE) // 2), max(0, (grey.shape[1] - NOISE_SIDE) // 2)
    grey = np.asarray(grey[top : top + NOISE_SIDE, left : left + NOISE_SIDE], dtype=np.float32)
    response = (
        grey[:-2, :-2]
        + grey[:-2, 2:]
        + grey[2:, :-2]
        + grey[2:, 2:]
        - 2 * (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:])
        + 4 * grey[1:-1, 1:-1]
    )
    return float(np.median(np.abs(response)) / (0.6745 * 6.0))


def _reduce(grey: np.ndarray | Image.Image, side: int) -> tuple[np.ndarray, float, float]:
    """``grey`` area-reduced so that its shorter side is ``side`` (unchanged when already smaller).

    Returns the reduced float array, the reduction factor and the variance
    the reduction itself added (grey levels²): an 8-bit Pillow image is first
    reduced by the largest integer factor in 8 bits (fast, each mean rounded:
    1/12 of a grey level² of rounding noise, averaged down by the rest of the
    reduction), a float array directly.
    """
    width, height = grey.size if isinstance(grey, Image.Image) else (grey.shape[1], grey.shape[0])
    short = min(width, height)
    if short <= side:
        return np.asarray(grey, dtype=np.float32), 1.0, 0.0
    factor = short / side
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    added = 0.0
    if isinstance(grey, Image.Image):
        step = int(factor)
        image = grey.reduce(step) if step > 1 else grey
        added = (1 / 12) / (factor / step) ** 2 if step > 1 else 0.0
        image = image.convert("F")
    else:
        image = Image.fromarray(grey.astype(np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.BOX), dtype=np.float32), factor, added


#: Least shorter side (px) of a picture whose sharpness is measured.
SHARPNESS_MIN_SIDE = 32
#: Shorter side (px) of the copy of the working picture the edges are measured on: a blur that matters spans
#: several px of it, and its gradients cost a quarter of the working picture's.
EDGE_SIDE = 128
#: Gaussian scales (px of the :data:`EDGE_SIDE` copy) of the two gradients whose ratio gives the width of the
#: sharpest edges.
EDGE_SCALES = (1.0, 2.0)
#: Share of the working picture's pixels, those of steepest gradient at the coarser scale, whose ratios are read.
EDGE_SHARE = 0.02
#: Percentile of their ratios taken: the sharpest edges decide, so smooth regions do not.
EDGE_PERCENTILE = 90
#: Narrowest edge width (a Gaussian sigma, as a share of the shorter side) told apart; sharper edges score as
#: this one.
EDGE_FLOOR = 1 / 512
#: Gaussian kernels of the gradients end at this many sigmas (what lies beyond weighs 0.3 %).
EDGE_TRUNCATE = 3.0
#: Least contrast of the coarse gradient over its noise (in standard deviations) an edge must have to be read.
EDGE_SNR = 5.0


@functools.lru_cache(maxsize=8)
def _gradient_noise_gain(scale: float) -> float:
    """Variance of one component of the Gaussian gradient (sigma ``scale`` px) of unit white noise, exactly
    for scipy's sampled kernels."""
    impulse = np.zeros(8 * math.ceil(4 * scale) + 1)
    impulse[impulse.size // 2] = 1.0
    smooth = ndimage.gaussian_filter1d(impulse, scale, truncate=EDGE_TRUNCATE)
    slope = ndimage.gaussian_filter1d(impulse, scale, order=1, truncate=EDGE_TRUNCATE)
    return float((smooth**2).sum() * (slope**2).sum())


def _squared_gradient(values: np.ndarray, scale: float) -> np.ndarray:
    """Squared magnitude of the Gaussian gradient (sigma ``scale`` px) of a float32 picture."""

    def smooth(data: np.ndarray, axis: int, order: int = 0) -> np.ndarray:
        return ndimage.gaussian_filter1d(data, scale, axis=axis, order=order, truncate=EDGE_TRUNCATE)

    across = smooth(smooth(values, 0), 1, order=1)
    down = smooth(smooth(values, 1), 0, order=1)
    across *= across
    down *= down
    across += down
    return across


def edge_width(working: np.ndarray, noise_variance: float) -> float | None:
    """Width of the sharpest edges of ``working`` (a Gaussian sigma, as a share of its shorter side), or None.

    ``working`` is area-reduced to :data:`EDGE_SIDE` px on its shorter side
    (``noise_variance``, the pixel noise's variance in it, shrinks with the
    area).  A step edge blurred to sigma ``w`` has, where it is steepest, a
    squared gradient at Gaussian scale ``s`` proportional to ``1 / (w² +
    s²)`` whatever its contrast, so the ratio ``R`` of the squared gradients
    at the two :data:`EDGE_SCALES` ``s1 < s2`` gives ``w² = (s2² − R s1²) /
    (R − 1)`` (the re-blur estimate of Zhuo and Sim 2011).  The ratios are
    read at the :data:`EDGE_SHARE` of pixels with the steepest coarse
    gradient (at least :data:`EDGE_SNR` noise deviations), each squared
    gradient less the noise's expected share, and their
    :data:`EDGE_PERCENTILE`-th percentile is taken: the sharpest edges of the
    picture decide, so a smooth specimen with a few crisp rims is sharp, and
    a blur, which widens every edge, is not.  Edges narrower than
    :data:`EDGE_FLOOR` give that floor, a picture without any edge narrower
    than itself 1; None when no edge stands above the noise.

    Examples
    --------
    >>> y, x = np.mgrid[0:256, 0:256]
    >>> step = ndimage.gaussian_filter((x > 128) * 100.0, 6.4).astype(np.float32)  # an edge 2.5 % of the side
    >>> round(edge_width(step, 0.0), 3)
    0.025
    """
    reduced, factor, _added = _reduce(working, EDGE_SIDE)
    noise_variance /= factor**2
    fine, coarse = EDGE_SCALES
    margin = math.ceil(2 * coarse)
    if min(reduced.shape) <= 2 * margin + 8:
        return None
    inner = (slice(margin, -margin), slice(margin, -margin))
    fine_energy = _squared_gradient(reduced, fine)[inner] - 2 * noise_variance * _gradient_noise_gain(fine)
    coarse_noise = 2 * noise_variance * _gradient_noise_gain(coarse)
    coarse_energy = _squared_gradient(reduced, coarse)[inner] - coarse_noise
    cut = max(float(np.quantile(coarse_energy, 1 - EDGE_SHARE)), EDGE_SNR**2 * coarse_noise, 1e-12)
    steep = coarse_energy >= cut
    if steep.sum() < 8:
        return None
    ratio = float(np.percentile(np.maximum(fine_energy[steep], 0.0) / coarse_energy[steep], EDGE_PERCENTILE))
    width_squared = (coarse**2 - ratio * fine**2) / (ratio - 1.0) if ratio > 1.0 else math.inf
    return min(max(math.sqrt(max(width_squared, 0.0)) / min(reduced.shape), EDGE_FLOOR), 1.0)


def _structure(working: np.ndarray, noise: float, short_side: int) -> float:
    """Deviation (grey levels) of the picture reduced to a :data:`STRUCTURE_SIDE` px shorter side, less its noise.

    The area average of ``f × f`` pixels keeps ``noise / f`` of the pixel noise,
    whose variance is taken out, so a blank frame scores about 0 at any size.
    """
    reduced = _reduce(working, STRUCTURE_SIDE)[0]
    residual = (noise / max(1.0, short_side / STRUCTURE_SIDE)) ** 2
    return float(math.sqrt(max(float(reduced.var()) - residual, 0.0)))


def sharpness_scores(
    grey: np.ndarray,
    noise: float,
    working: np.ndarray | None = None,
    factor: float = 1.0,
    added: float = 0.0,
    field_side: int | None = None,
) -> tuple[float | None, float | None, str | None]:
    """``(sharpness, spectral_sharpness, reason)`` of a grey picture with pixel noise ``noise`` (grey levels).

    Both are measured at :data:`WORKING_SIDE` px on the shorter side (the
    ``working`` copy reduced by ``factor``, with ``added`` variance of its own,
    when the caller has it), where the noise is area-averaged (deviation over
    the reduction factor).  Sharpness is log10 of the shorter side over the
    width of the sharpest edges (:func:`edge_width`): how many edge widths
    the field holds, so that neither the image's size, nor its contrast, nor
    a smooth specimen (whose crisp rims are as narrow as a busy one's) moves
    it; 0 for a picture without an edge narrower than itself.  The width is
    taken as a share of ``field_side`` (px) instead when that is larger: the
    shorter side of the field the picture was cut from, since flat rows cut
    away beside the data bar (a uniform bottom of the field) narrow the
    picture, not the field, and a specimen's soft focus is no blur for being
    measured on fewer rows.  The spectral score is the share of the spectral
    energy above 1/8 cycle per px, the white noise floor removed.
    """
    if min(grey.shape) < SHARPNESS_MIN_SIDE:
        return None, None, f"picture of {grey.shape[1]}×{grey.shape[0]} px is too small to measure sharpness"
    if working is None:
        working, factor, added = _reduce(grey, WORKING_SIDE)
    noise_variance = (noise / factor) ** 2 + added
    if float(working.var()) - noise_variance <= 0.25:
        return None, None, "no contrast above the noise: sharpness undefined"
    width = edge_width(working, noise_variance)
    if width is None:
        return None, None, "no edge above the noise: sharpness undefined"
    sharpness = -math.log10(width) + math.log10(max(field_side or 0, min(grey.shape)) / min(grey.shape))
    spectrum = np.abs(fft.rfft2(working - working.mean())) ** 2 / working.size
    fy = np.fft.fftfreq(working.shape[0])[:, None]
    fx = np.fft.rfftfreq(working.shape[1])[None, :]
    high = np.hypot(fy, fx) > 0.125
    weights = np.ones_like(spectrum)
    weights[:, 1:-1] = 2  # rfft keeps one of each conjugate pair
    signal = np.clip(spectrum - noise_variance, 0, None) * weights
    total = float(signal.sum(dtype=np.float64))
    spectral = float(signal[high].sum(dtype=np.float64) / total) if total > 0 else None
    return sharpness, spectral, None


def charging_score(
    grey: np.ndarray,
    noise: float,
    dynamic_range: float = 0.0,
    bottom_margin: int = 0,
    image: Image.Image | None = None,
) -> tuple[float | None, tuple[int, ...]]:
    """How far the most abrupt scan-line step of ``grey`` stands out (robust z), and the rows that do.

    Each row's level is its mean (over the whole row and over its right
    half, where streaks that start at a feature still cover every column;
    columns are first averaged in fours).  A step is the change of level
    from one row to the next; its abruptness is its size less the larger
    neighbouring step of the same sign.  Charging shifts whole scan lines at
    once, so the edges of its streaks and bands are abrupt (a one-line streak
    has two opposite steps, which do not cancel); a specimen's own edges and
    lines are spread over several rows by the beam and have same-signed
    neighbours; steps to or from a row whose mean is near saturation (above
    250 or below 5) are not counted (clipping makes abrupt steps of its own),
    nor steps to or from a flat row (deviation along the row under
    :data:`FLAT_ROW_STD`: a data bar's margin left above the stripe found, a
    frame).
    The score is the largest abruptness minus the median, over 1.4826 × their
    median absolute deviation plus the row-level noise (at least
    :data:`CHARGING_FLOOR`), or over :data:`CHARGING_RANGE_SHARE` of the
    picture's ``dynamic_range`` when that is larger (a step of a few grey
    levels is no charging however quiet the rows); None for pictures under 8
    rows.  The last ``bottom_margin`` rows are not counted (the edge of a
    data bar cut away a few rows too low).  ``image`` is ``grey`` as an 8-bit
    Pillow image when it is one (binned faster).  The rows listed are those where a
    step whose z exceeds :data:`CHARGING_ROW_Z` starts (the first row after the jump).
    """
    height, width = grey.shape
    if height < 8 or width < 4:
        return None, ()
    columns = width - width % 4
    # 4-px means (a box filter of an integer factor); an 8-bit picture in 8 bits, its means rounded (the row
    # levels average hundreds of them), anything else in float.
    source = image if image is not None else Image.fromarray(grey.astype(np.float32), mode="F")
    binned = np.asarray(
        source.resize((columns // 4, height), Image.Resampling.BOX, box=(0, 0, columns, height)), dtype=np.float32
    )
    evidence = np.zeros(height)
    flat = binned.std(axis=1) < FLAT_ROW_STD
    counted = ~(flat | np.roll(flat, 1))
    counted[0] = False
    if bottom_margin:
        counted[-bottom_margin:] = False
    for levels in (binned.mean(axis=1), binned[:, binned.shape[1] // 2 :].mean(axis=1)):
        step = np.diff(levels, prepend=levels[0])
        before = np.concatenate([[0.0], step[:-1]])
        after = np.concatenate([step[1:], [0.0]])
        same_sign = np.maximum(
            np.where(before * step > 0, np.abs(before), 0.0), np.where(after * step > 0, np.abs(after), 0.0)
        )
        clipped = (np.maximum(levels, np.roll(levels, 1)) >= 250) | (np.minimum(levels, np.roll(levels, 1)) <= 5)
        counted &= ~clipped
        evidence = np.maximum(evidence, np.where(clipped, 0.0, np.abs(step) - same_sign))
    evidence[~counted] = 0.0
    if counted.sum() < 8:
        return 0.0, ()
    centre = float(np.median(evidence[counted]))
    floor = max(noise / math.sqrt(binned.shape[1]), CHARGING_FLOOR)
    spread = 1.4826 * float(np.median(np.abs(evidence[counted] - centre))) + floor
    spread = max(spread, CHARGING_RANGE_SHARE * dynamic_range)
    z = (evidence - centre) / spread
    return float(z.max()), tuple(int(row) for row in np.flatnonzero(z > CHARGING_ROW_Z))


def score_image(pixels: np.ndarray, stripe_box: Sequence[int] | None = None) -> QualityScores:
    """Every quality score of one image, measured on its picture without the data bar.

    Parameters
    ----------
    pixels : numpy.ndarray
        The image: ``(h, w)`` grey or ``(h, w, 3|4)`` colour, of any integer,
        boolean or float type (see :func:`to_grey`).
    stripe_box : sequence of 4 int, optional
        The data bar ``(x0, y0, x1, y1)`` (px, ends exclusive), as the scale
        reader stores it; its rows are cut away.  Without one the whole image
        is scored and ``bar_included`` is True (said in ``reason``).

    Returns
    -------
    QualityScores
        Never raises for odd pixels: a score that cannot be computed is None
        and ``reason`` says why.

    Notes
    -----
    Time and memory are linear in the pixels: one pass for the histogram, the
    noise and the row levels at full size, the rest on a reduced copy (about
    15 ms for a 1024 × 768 picture).

    Examples
    --------
    >>> scores = score_image(np.full((1, 50), 7, np.uint8))
    >>> scores.brightness, scores.sharpness, scores.charging
    (7.0, None, None)
    >>> for note in scores.reason.split("; "):
    ...     print(note)
    whole image scored: no data bar was found
    picture of 50×1 px is too small to measure sharpness
    picture of 1 rows is too short for the charging score
    """
    values = np.asarray(pixels)
    height, width = values.shape[:2] if values.ndim >= 2 else (1, values.size)
    aspect = min(height, width) / max(height, width) if min(height, width) > 0 else 0.0
    first, end = picture_rows(height, stripe_box)
    bar_included = stripe_box is None or end - first == height
    if not bar_included:  # the reader's stripe may start a few rows past the bar's edge: leave a margin
        margin = max(4, round(BAR_MARGIN * height))
        first, end = (first, end - margin) if first == 0 else (first + margin, end)
        end = max(end, first + 1)
    notes = ["whole image scored: no data bar was found"] if stripe_box is None else []
    field_side = min(end - first, width)  # flat rows cut next to the bar narrow the picture, not the field
    if not bar_included and values.ndim >= 2:  # a blank band of the bar above (or below) the stripe found
        band = bar_band_rows(values[first:end], bar_below=first == 0)
        if band:
            first, end = (first, end - band - margin) if first == 0 else (first + band + margin, end)
            notes.append(f"{band} rows of one grey level next to the data bar cut away with it")
    if end - first < 1:
        notes.append("the data bar covers the whole image: scored with the bar")
        first, end, bar_included = 0, height, True
    picture = values[first:end] if values.ndim >= 2 else values
    grey: np.ndarray | None
    if picture.dtype == np.uint8 and picture.ndim == 2 and picture.size:  # read as it is: no full-size float copy
        grey, colour = picture, None
    else:
        grey, colour, read_notes = to_grey(picture)
        notes += read_notes
    if grey is None:
        return QualityScores(int(width), int(height), end - first, bar_included, float(aspect), reason="; ".join(notes))
    noise = estimate_noise(grey)
    image = Image.fromarray(np.ascontiguousarray(picture)) if picture.dtype == np.uint8 and picture.ndim == 2 else None
    if image is not None:
        histogram = np.asarray(image.histogram(), dtype=np.float64) / picture.size
        cumulative = np.cumsum(histogram)
        low, high = (float(np.searchsorted(cumulative, share)) for share in (0.005, 0.995))
    else:
        level = np.clip(np.rint(grey), 0, 255).astype(np.intp)
        histogram = np.bincount(level.ravel(), minlength=256) / level.size
        stride = max(1, math.isqrt(grey.size // SAMPLE_PIXELS))
        low, high = (float(value) for value in np.percentile(grey[::stride, ::stride], [0.5, 99.5]))
    nonzero = histogram[histogram > 0]
    median = float(np.searchsorted(np.cumsum(histogram), 0.5)) if image is not None else float(np.median(grey))
    working, factor, added = _reduce(image if image is not None else grey, WORKING_SIDE)
    sharpness, spectral, why = sharpness_scores(grey, noise, working, factor, added, field_side)
    # Without a bar found, the lower part of the image may hold one, whose top edge is one abrupt step.
    margin = round(BAR_SEARCH * grey.shape[0]) if bar_included else 0
    charging, rows = charging_score(grey, noise, high - low, margin, image)
    if why:
        notes.append(why)
    if charging is None:
        notes.append(f"picture of {grey.shape[0]} rows is too short for the charging score")
    return QualityScores(
        int(width),
        int(height),
        int(grey.shape[0]),
        bar_included,
        float(aspect),
        sharpness=sharpness,
        spectral_sharpness=spectral,
        brightness=float(np.dot(np.arange(256), histogram)) if image is not None else float(grey.mean()),
        median_brightness=median,
        clipped_low=float(histogram[0]),
        clipped_high=float(histogram[255]),
        dynamic_range=high - low,
        entropy=float(-(nonzero * np.log2(nonzero)).sum()),
        noise=noise,
        structure=_structure(working, noise, min(grey.shape)),
        charging=charging,
        charging_rows=tuple(row + first for row in rows),
        colourfulness=0.0 if colour is None else colour,
        reason="; ".join(notes) or None,
    )


@dataclass(frozen=True)
class Threshold:
    """Where one flag is raised: ``score`` ``direction`` (``below``/``above``) ``value``.

    ``how`` says where the value came from: the repository's robust z
    (``median``, ``spread`` = 1.4826 × MAD, ``z``), a bound of ``bounds``
    that held it, or an override from the configuration.
    """

    flag: str
    score: str
    direction: str
    value: float
    how: str
    median: float | None = None
    spread: float | None = None
    z: float | None = None
    bounds: tuple[float, float] | None = None

    def raised(self, value: float | None) -> bool:
        """Whether a score ``value`` raises the flag (None never does)."""
        if value is None or not math.isfinite(value):
            return False
        return value < self.value if self.direction == "below" else value > self.value

    def raised_many(self, values: np.ndarray) -> np.ndarray:
        """:meth:`raised` over an array of scores (NaN never raises)."""
        values = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            hit = values < self.value if self.direction == "below" else values > self.value
        return hit & np.isfinite(values)


def derived_scores(scores: Mapping[str, np.ndarray], *, median_side: float | None = None) -> dict[str, np.ndarray]:
    """The scores thresholds are set on: the stored ones plus ``clipped`` and ``size_ratio``.

    ``clipped`` is ``clipped_low + clipped_high`` (saturation); ``size_ratio``
    how many times the image's side (√(width × height)) is larger or smaller
    than the repository's median side (cleanvision's odd size), ≥ 1.
    """
    derived = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    derived["clipped"] = derived["clipped_low"] + derived["clipped_high"]
    side = np.sqrt(derived["width"] * derived["height"])
    median = float(np.median(side)) if median_side is None and side.size else (median_side or 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        derived["size_ratio"] = np.where(side > 0, np.maximum(side / median, median / side), np.inf)
    return derived


def set_thresholds(
    scores: Mapping[str, np.ndarray], overrides: Mapping[str, float] | None = None, rules: Mapping | None = None
) -> dict[str, Threshold]:
    """The threshold of every flag, from the score distributions of one repository.

    Parameters
    ----------
    scores : mapping of str to array
        One array per score of :data:`SCORE_NAMES` plus ``width`` and
        ``height``, one value per image (NaN where the score is missing).
    overrides : mapping of str to float, optional
        A fixed threshold per flag (``{"blurred": 1.8}``), taken as it is.
    rules : mapping, optional
        Replaces :data:`FLAG_RULES` (same keys per flag: score, direction, z, bounds).

    Returns
    -------
    dict of str to Threshold
        Per flag: ``median - z × spread`` (below-flags) or ``median + z ×
        spread`` (above-flags), where spread is 1.4826 × the median absolute
        deviation (robust to up to half the images being bad), clipped into
        the rule's ``bounds``; with ``z`` = 0, or fewer than 3 scores, the
        bound on the lenient side (the lower one for below-flags).

    Examples
    --------
    >>> values = {"brightness": np.array([100.0, 110, 120, 130, 5])}
    >>> threshold = set_thresholds(values, rules={"dark": FLAG_RULES["dark"]})["dark"]
    >>> threshold.value, threshold.how, threshold.raised(5.0), threshold.raised(100.0)
    (50.0, 'upper bound', True, False)
    """
    overrides = dict(overrides or {})
    chosen_rules = dict(rules if rules is not None else FLAG_RULES)
    unknown = sorted(set(overrides) - set(chosen_rules))
    if unknown:
        raise ValueError(f"no flag named {', '.join(unknown)}; flags are {', '.join(chosen_rules)}")
    values = derived_scores(scores) if "width" in scores else {k: np.asarray(v, float) for k, v in scores.items()}
    thresholds = {}
    for flag, rule in chosen_rules.items():
        score, direction, z = rule["score"], rule["direction"], float(rule["z"])
        low, high = (float(bound) for bound in rule["bounds"])
        if flag in overrides:
            thresholds[flag] = Threshold(flag, score, direction, float(overrides[flag]), "override")
            continue
        column = values.get(score, np.array([]))
        finite = column[np.isfinite(column)]
        lenient = low if direction == "below" else high
        if z <= 0 or finite.size < 3:
            how = "fixed" if z <= 0 else f"bound (only {finite.size} images have a {score} score)"
            thresholds[flag] = Threshold(flag, score, direction, lenient, how, bounds=(low, high))
            continue
        median = float(np.median(finite))
        spread = 1.4826 * float(np.median(np.abs(finite - median)))
        wanted = median - z * spread if direction == "below" else median + z * spread
        value = min(max(wanted, low), high)
        how = "robust z" if value == wanted else ("lower bound" if value == low else "upper bound")
        thresholds[flag] = Threshold(flag, score, direction, value, how, median, spread, z, (low, high))
    return thresholds


def flags_of(values: Mapping[str, float | None], thresholds: Mapping[str, Threshold]) -> list[str]:
    """The flags one image raises: ``values`` holds its scores (derived ones included), by name.

    Examples
    --------
    >>> dark = Threshold("dark", "brightness", "below", 45.0, "override")
    >>> flags_of({"brightness": 12.0}, {"dark": dark}), flags_of({"brightness": None}, {"dark": dark})
    (['dark'], [])
    """
    return [flag for flag, threshold in thresholds.items() if threshold.raised(values.get(threshold.score))]
