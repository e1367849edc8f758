"""Drawn image defects and re-saved copies of an SEM picture, with their truth (issue 15).

What a repository admin finds among real SEM images and wants flagged:
focusing shots (:func:`apply_defect` ``"blurred"``), under- and over-exposed
frames (``"dark"``, ``"light"``), charging from an insulating sample
(``"charging"``: bright streaks that start at a feature and run to the right
edge, and bands of scan lines whose brightness jumped), frames with nothing on
them (``"blank"``) and optical navigation-camera pictures (``"colour"``); and
what people do to an image when they save it again
(:func:`make_variant`: resized, re-compressed, cropped, contrast-stretched,
the data bar cut off).

Pure functions over ``uint8`` numpy arrays and a :class:`numpy.random.Generator`:
a defect applies to the picture (the specimen, above the data bar) only, so the
data bar an image carries is drawn exactly as without the defect.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage, signal

#: Defects :func:`apply_defect` draws, and the quality flag (:data:`semcurate.ingest.quality.FLAGS`) each should
#: raise.
DEFECT_FLAGS: dict[str, str] = {
    "blurred": "blurred",
    "dark": "dark",
    "light": "light",
    "charging": "charging",
    "blank": "low_information",
    "colour": "colour",
}
#: Ways :func:`make_variant` saves an image again.
VARIANTS = ("resized", "recompressed", "cropped", "contrast", "no_bar")


@dataclass(frozen=True)
class DefectTruth:
    """What :func:`apply_defect` did to a picture.

    ``defect`` is a key of :data:`DEFECT_FLAGS`; ``rows`` lists the
    ``(first, last)`` picture rows (inclusive) of each charging streak or
    band edge, empty for the other defects.
    """

    defect: str
    rows: tuple[tuple[int, int], ...] = ()


def _renoise(picture: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """``picture`` (float) plus Gaussian detector noise of ``sigma`` grey levels, as uint8."""
    noisy = picture + rng.normal(0.0, sigma, picture.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _charge(picture: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """Bright streaks (1-4 scan lines, from a feature to the right edge) and a band of shifted lines."""
    height, width = picture.shape
    charged = picture.astype(np.float64)
    rows = []
    for _ in range(int(rng.integers(2, 5))):
        thickness = int(rng.integers(1, 5))
        first = int(rng.integers(2, max(3, height - thickness - 2)))
        start = int(rng.integers(0, width // 2))
        charged[first : first + thickness, start:] += rng.uniform(70, 140)
        rows.append((first, first + thickness - 1))
    band_height = max(3, int(height * rng.uniform(0.04, 0.12)))
    top = int(rng.integers(2, max(3, height - band_height - 2)))
    charged[top : top + band_height] += rng.uniform(45, 90)
    rows += [(top, top), (top + band_height - 1, top + band_height - 1)]
    return np.clip(np.rint(charged), 0, 255).astype(np.uint8), tuple(sorted(rows))


def _colour_picture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A navigation-camera-like photo: a tinted stage with a few coloured sample stubs, ``(h, w, 3)`` uint8.

    Each stub's disc is tested only within its bounding box (padded by a pixel), the same arithmetic on the
    same pixels as over the whole frame, so the picture is the one drawn that way, in about a third of the time.
    """
    y, x = np.arange(height, dtype=np.float64)[:, None], np.arange(width, dtype=np.float64)[None, :]
    base = rng.uniform(60, 160, 3)
    picture = np.empty((height, width, 3))
    picture[:] = base
    picture += (y / height)[..., None] * rng.uniform(-40, 40, 3)
    for _ in range(int(rng.integers(3, 8))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.05, 0.2) * min(height, width)
        top, bottom = max(int(cy - radius) - 1, 0), min(int(cy + radius) + 2, height)
        left, right = max(int(cx - radius) - 1, 0), min(int(cx + radius) + 2, width)
        inside = (x[:, left:right] - cx) ** 2 + (y[top:bottom] - cy) ** 2 < radius**2
        picture[top:bottom, left:right][inside] = rng.uniform(0, 255, 3)
    picture = ndimage.gaussian_filter(picture, (1.5, 1.5, 0))
    picture += rng.normal(0, 4, picture.shape)
    return np.clip(np.rint(picture), 0, 255).astype(np.uint8)


def gaussian_blur(grey: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(grey, sigma)`` (its kernel, truncated at 4 sigma, and its ``reflect``
    edges) by overlap-add FFT convolution: 3-5 times faster at the focusing shots' sigma of 40-60 px.

    The defect's blur is the corpus' slowest drawing, one second per 1536 x 2048 picture, where
    ``gaussian_filter`` spends ``2 * 8 sigma`` multiply-adds per pixel.  The two agree to about 1e-13 grey
    levels, far below the half a grey level that rounding to ``uint8`` would need to see.

    Parameters
    ----------
    grey : numpy.ndarray
        ``(h, w)`` float64 picture.
    sigma : float
        Standard deviation of the Gaussian, in px, the same on both axes.

    Returns
    -------
    numpy.ndarray
        ``(h, w)`` float64, the blurred picture.

    Examples
    --------
    >>> grey = np.random.default_rng(0).uniform(0, 255, (60, 80))
    >>> bool(np.abs(gaussian_blur(grey, 5.0) - ndimage.gaussian_filter(grey, 5.0)).max() < 1e-9)
    True
    """
    radius = int(4.0 * float(sigma) + 0.5)  # gaussian_filter's own radius at its default truncate=4.0
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    kernel = ndimage.gaussian_filter1d(impulse, sigma, mode="constant")  # its weights, exactly
    blurred = grey
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        shape = [1, 1]
        shape[axis] = kernel.size
        # numpy's "symmetric" padding is ndimage's "reflect": (d c b a | a b c d | d c b a)
        padded = np.pad(blurred, pad, mode="symmetric")
        blurred = signal.oaconvolve(padded, kernel.reshape(shape), mode="valid", axes=axis)
    return blurred


def apply_defect(picture: np.ndarray, defect: str, rng: np.random.Generator) -> tuple[np.ndarray, DefectTruth]:
    """``picture`` (the specimen above the data bar, ``(h, w)`` uint8) with ``defect`` drawn on it.

    Parameters
    ----------
    picture : numpy.ndarray
        ``uint8`` grey picture of shape ``(h, w)``, at least 16 px each way.
    defect : str
        A key of :data:`DEFECT_FLAGS`:

        ``blurred``
            a focusing shot: Gaussian blur of 2.5-4 % of the shorter side (a
            specimen's own soft focus stays under 1.5 %), detector noise of
            2-5 grey levels drawn again on top;
        ``dark`` / ``light``
            under-exposed (grey levels times 0.06-0.15) / over-exposed (times
            1.5-3, the median raised to 220-245, clipped at 255);
        ``charging``
            2-4 bright streaks of 1-4 scan lines, +70-140 grey levels from a
            column in the left half to the right edge, and one band of 4-12 %
            of the lines raised by 45-90 grey levels with sharp edges;
        ``blank``
            one grey level (60-200) and 1-4 grey levels of noise: no picture;
        ``colour``
            a navigation-camera colour photo, ``(h, w, 3)``.
    rng : numpy.random.Generator
        Source of every random choice.

    Returns
    -------
    (numpy.ndarray, DefectTruth)
        The new picture (``(h, w)``, or ``(h, w, 3)`` for ``colour``) and
        what was done; the streak and band-edge rows for ``charging``.

    Examples
    --------
    >>> flat = np.full((40, 60), 100, np.uint8)
    >>> dark, truth = apply_defect(flat, "dark", np.random.default_rng(0))
    >>> bool(dark.mean() < 20), truth.defect
    (True, 'dark')
    """
    if defect not in DEFECT_FLAGS:
        raise ValueError(f"unknown defect {defect!r}; choose one of {', '.join(DEFECT_FLAGS)}")
    height, width = picture.shape
    grey = picture.astype(np.float64)
    if defect == "blurred":
        sigma = rng.uniform(0.025, 0.04) * min(height, width)
        return _renoise(gaussian_blur(grey, sigma), rng, rng.uniform(2, 5)), DefectTruth(defect)
    if defect == "dark":
        return np.clip(np.rint(grey * rng.uniform(0.06, 0.15)), 0, 255).astype(np.uint8), DefectTruth(defect)
    if defect == "light":
        gain = rng.uniform(1.5, 3.0)
        bright = grey * gain + (rng.uniform(220, 245) - gain * float(np.median(grey)))
        return np.clip(np.rint(bright), 0, 255).astype(np.uint8), DefectTruth(defect)
    if defect == "charging":
        charged, rows = _charge(picture, rng)
        return charged, DefectTruth(defect, rows)
    if defect == "blank":
        return _renoise(np.full(grey.shape, rng.uniform(60, 200)), rng, rng.uniform(1, 4)), DefectTruth(defect)
    return _colour_picture(height, width, rng), DefectTruth(defect)


@dataclass(frozen=True)
class VariantGeometry:
    """Where a variant's pixels come from in its original: ``scale`` (variant px per original px) and the
    original's box ``(x0, y0, x1, y1)`` the variant shows (ends exclusive, in original px)."""

    scale: float
    box: tuple[int, int, int, int]


def jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    """``pixels`` (uint8 grey or RGB) as a Pillow JPEG at ``quality``."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def make_variant(
    pixels: np.ndarray, stripe_top: int | None, variant: str, rng: np.random.Generator
) -> tuple[np.ndarray, VariantGeometry]:
    """A copy of ``pixels`` as people save an image again: the same acquisition, other bytes.

    Parameters
    ----------
    pixels : numpy.ndarray
        The image, ``uint8`` ``(h, w)`` or ``(h, w, 3)``, data bar included.
    stripe_top : int or None
        First row of the data bar (None: the image has none; ``no_bar`` then
        returns the image unchanged in size).
    variant : str
        One of :data:`VARIANTS`: ``resized`` (to 0.4-0.7 of its size, bilinear),
        ``recompressed`` (a JPEG export at quality 80-95, decoded: the caller
        saves it again at quality 60, so no re-encoding of the original
        reproduces it),
        ``cropped`` (0.4-0.7 % of the width off the left, right and top edges, so
        the data bar keeps its segment), ``contrast`` (grey levels stretched so the
        1st-99th percentiles fill 0-255), ``no_bar`` (the rows above the data bar).
    rng : numpy.random.Generator
        Source of every random choice.

    Returns
    -------
    (numpy.ndarray, VariantGeometry)
        The variant's pixels and where they come from in the original.

    Examples
    --------
    >>> image = np.arange(100 * 80, dtype=np.uint16).reshape(80, 100).astype(np.uint8)
    >>> copy, geometry = make_variant(image, 70, "no_bar", np.random.default_rng(0))
    >>> copy.shape, geometry.box
    ((70, 100), (0, 0, 100, 70))
    """
    height, width = pixels.shape[:2]
    whole = (0, 0, width, height)
    if variant == "resized":
        scale = float(rng.uniform(0.4, 0.7))
        size = (max(16, round(width * scale)), max(16, round(height * scale)))
        resized = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
        return resized, VariantGeometry(size[0] / width, whole)
    if variant == "recompressed":
        with Image.open(io.BytesIO(jpeg_bytes(pixels, int(rng.integers(80, 96))))) as exported:
            return np.asarray(exported), VariantGeometry(1.0, whole)
    if variant == "cropped":
        left, right, top = (max(1, round(width * rng.uniform(0.004, 0.007))) for _ in range(3))
        box = (left, top, width - right, height)
        return pixels[top:, left : width - right], VariantGeometry(1.0, box)
    if variant == "contrast":
        low, high = np.percentile(pixels, [1, 99])
        stretched = (pixels.astype(np.float64) - low) * (255.0 / max(float(high - low), 1.0))
        return np.clip(np.rint(stretched), 0, 255).astype(np.uint8), VariantGeometry(1.0, whole)
    if variant == "no_bar":
        top_rows = height if stripe_top is None else stripe_top
        return pixels[:top_rows], VariantGeometry(1.0, (0, 0, width, top_rows))
    raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
