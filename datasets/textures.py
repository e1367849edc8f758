"""A second family of SEM-like grey textures, drawn unlike :mod:`~semcurate.datasets.specimens`, with its truth.

The demo corpus' specimens (:func:`~semcurate.datasets.specimens.draw_specimen`)
are relief maps drawn shape by shape (lattices, wires, grains as polygons)
and rendered by one secondary-electron model.  A feature extractor tuned on
them can learn that drawing style.  :func:`make_textures` draws a different
world, built from random fields instead of drawn shapes, so a method can be
checked on textures it was not developed on:

* ``grains`` -- Voronoi cells of random seeds (polycrystals): ``fine``,
  ``coarse`` and ``elongated`` (seeds in a stretched frame at a random angle);
* ``rough`` -- fractional Brownian surfaces, white noise shaped by a power-law
  spectrum ``|f| ** (-beta / 2)`` (amplitude): ``fractal`` (beta about 2.3,
  fine detail everywhere) and ``smooth`` (beta about 4, broad undulations);
* ``fibrous`` -- noise band-passed around one frequency and a few directions
  (Gabor-like filters in the Fourier plane): ``aligned`` (one direction),
  ``crossed`` (two, 70-110 degrees apart) and ``wavy`` (a wide spread of
  directions, lower frequency);
* ``particles`` -- round domes on a substrate, sizes and positions from
  point processes: ``monodisperse`` (one radius), ``polydisperse``
  (log-normal radii), ``bimodal`` (two radii) and ``agglomerated`` (small
  particles in clusters, a Neyman-Scott process);
* ``phase`` -- spinodal-like phase separation, ring band-passed noise cut at
  a grey-level quantile: ``labyrinth`` (half and half), ``droplets`` (bright
  islands) and ``holes`` (a bright film with dark pores).

That is 5 categories and 15 sub-categories.  Every image also varies in
ways that carry no class information (the nuisance a real repository has):
magnification (every length times 0.8-1.25), rotation, focus blur, contrast,
brightness, the edge brightening of the secondary-electron signal, a shading
gradient and the noise level.  Lengths are fractions of the image side, so a
class looks alike at every ``size``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

#: Smallest accepted image side, px.
MIN_SIZE = 32

_F32 = np.float32


# ---------------------------------------------------------------------------
# Random fields
# ---------------------------------------------------------------------------


def _frequencies(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Radial frequency (cycles per pixel) and direction (radians in [0, pi)) of every 2-D FFT bin."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    return np.hypot(fy, fx), np.arctan2(fy, fx) % np.pi


def _shaped_noise(rng: np.random.Generator, size: int, amplitude: np.ndarray) -> np.ndarray:
    """White noise whose Fourier amplitude is multiplied by ``amplitude``, scaled to zero mean and unit variance."""
    field = np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) * amplitude).real
    field -= field.mean()
    return field / max(field.std(), 1e-12)


def _angular_gap(angle: np.ndarray, centre: float) -> np.ndarray:
    """Distance in radians between directions (lines: ``angle`` and ``angle + pi`` are the same), in [0, pi / 2]."""
    gap = np.abs(angle - centre) % np.pi
    return np.minimum(gap, np.pi - gap)


def _band_pass(size: int, period_px: float, spread: float) -> np.ndarray:
    """Gaussian ring in the Fourier plane around 1 / ``period_px`` cycles per pixel, relative width ``spread``."""
    radius, _ = _frequencies(size)
    centre = 1.0 / period_px
    return np.exp(-0.5 * ((radius - centre) / (spread * centre)) ** 2)


def _to_unit(field: np.ndarray) -> np.ndarray:
    """Linear map of ``field`` onto [0, 1] (its 0.5 and 99.5 percentiles), clipped."""
    low, high = np.percentile(field, (0.5, 99.5))
    return np.clip((field - low) / max(high - low, 1e-12), 0.0, 1.0)


# ---------------------------------------------------------------------------
# Height maps, one function per sub-category: (rng, size, zoom) -> float array in [0, 1]
# ---------------------------------------------------------------------------


def _voronoi(rng, size: int, pitch_px: float, stretch: float = 1.0) -> np.ndarray:
    """Polycrystal: one random tone per Voronoi cell, dark boundaries; cells ``pitch_px`` apart on average.

    With ``stretch`` > 1 the distances are measured in a frame squeezed
    ``stretch`` times along a random direction, so cells are elongated.
    """
    count = max(4, round(size * size / pitch_px**2))
    seeds = rng.uniform(-0.1 * size, 1.1 * size, (round(count * 1.44), 2))
    angle = rng.uniform(0, np.pi)
    squeeze = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle) / stretch, math.cos(angle) / stretch]])
    rows, cols = np.mgrid[0:size, 0:size]
    pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
    distance, nearest = cKDTree(seeds @ squeeze.T).query(pixels @ squeeze.T, k=2)
    tones = rng.uniform(0.35, 1.0, len(seeds))
    boundary = np.clip((distance[:, 1] - distance[:, 0]) / (0.06 * pitch_px / math.sqrt(stretch)), 0.0, 1.0)
    return (tones[nearest[:, 0]] * (0.3 + 0.7 * boundary)).reshape(size, size)


def _grains_fine(rng, size, zoom):
    return _voronoi(rng, size, 0.045 * size * zoom)


def _grains_coarse(rng, size, zoom):
    return _voronoi(rng, size, 0.13 * size * zoom)


def _grains_elongated(rng, size, zoom):
    return _voronoi(rng, size, 0.07 * size * zoom, stretch=rng.uniform(3.0, 4.5))


def _fbm(rng, size: int, beta: float, zoom: float) -> np.ndarray:
    """Fractional Brownian surface: power spectrum ``|f| ** -beta`` above the lowest frequency the zoom allows."""
    radius, _ = _frequencies(size)
    lowest = 1.0 / (0.5 * size * zoom)
    return _to_unit(_shaped_noise(rng, size, np.maximum(radius, lowest) ** (-beta / 2)))


def _rough_fractal(rng, size, zoom):
    return _fbm(rng, size, rng.uniform(2.0, 2.6), zoom)


def _rough_smooth(rng, size, zoom):
    return _fbm(rng, size, rng.uniform(3.7, 4.3), zoom)


def _oriented(rng, size: int, period_px: float, directions: list[float], angular_sd: float) -> np.ndarray:
    """Noise band-passed around ``period_px`` and Gaussian-weighted around each of ``directions`` (radians)."""
    _, angle = _frequencies(size)
    # a ridge running along direction d has its Fourier energy across it, at d + pi / 2
    weight = sum(np.exp(-0.5 * (_angular_gap(angle, d + np.pi / 2) / angular_sd) ** 2) for d in directions)
    return _to_unit(_shaped_noise(rng, size, _band_pass(size, period_px, 0.25) * weight))


def _fibrous_aligned(rng, size, zoom):
    return _oriented(rng, size, 0.035 * size * zoom, [rng.uniform(0, np.pi)], np.radians(6))


def _fibrous_crossed(rng, size, zoom):
    first = rng.uniform(0, np.pi)
    return _oriented(rng, size, 0.035 * size * zoom, [first, first + np.radians(rng.uniform(70, 110))], np.radians(6))


def _fibrous_wavy(rng, size, zoom):
    return _oriented(rng, size, 0.06 * size * zoom, [rng.uniform(0, np.pi)], np.radians(30))


def _domes(size: int, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Height map of hemispheres (height 1 at the top, 0 at the rim) at ``centres`` (x, y), the highest wins."""
    height = np.zeros((size, size))
    for (x, y), radius in zip(centres, radii, strict=True):
        x0, x1 = max(0, math.floor(x - radius)), min(size, math.ceil(x + radius) + 1)
        y0, y1 = max(0, math.floor(y - radius)), min(size, math.ceil(y + radius) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        dy = np.arange(y0, y1)[:, None] - y
        dx = np.arange(x0, x1)[None, :] - x
        dome = np.sqrt(np.clip(1.0 - (dx * dx + dy * dy) / (radius * radius), 0.0, None))
        np.maximum(height[y0:y1, x0:x1], dome, out=height[y0:y1, x0:x1])
    return height


def _scatter(rng, size: int, radii: np.ndarray) -> np.ndarray:
    """Particles at uniform random positions (margin of one radius outside the frame)."""
    return _domes(size, rng.uniform(-radii[:, None], size + radii[:, None], (len(radii), 2)), radii)


def _particle_count(size: int, mean_area_px: float, coverage: float) -> int:
    return max(1, round(coverage * size * size / mean_area_px))


def _particles_monodisperse(rng, size, zoom):
    radius = 0.025 * size * zoom
    count = _particle_count(size, np.pi * radius**2, rng.uniform(0.25, 0.4))
    return _scatter(rng, size, np.full(count, radius) * rng.uniform(0.95, 1.05, count))


def _particles_polydisperse(rng, size, zoom):
    median = 0.022 * size * zoom
    sigma = 0.6
    count = _particle_count(size, np.pi * median**2 * math.exp(2 * sigma**2), rng.uniform(0.25, 0.4))
    return _scatter(rng, size, median * rng.lognormal(0.0, sigma, count))


def _particles_bimodal(rng, size, zoom):
    small, large = 0.014 * size * zoom, 0.06 * size * zoom
    n_large = _particle_count(size, np.pi * large**2, rng.uniform(0.15, 0.25))
    n_small = _particle_count(size, np.pi * small**2, rng.uniform(0.1, 0.18))
    radii = np.concatenate([np.full(n_large, large), np.full(n_small, small)])
    radii *= rng.uniform(0.9, 1.1, n_large + n_small)
    return _scatter(rng, size, radii)


def _particles_agglomerated(rng, size, zoom):
    radius = 0.018 * size * zoom
    count = _particle_count(size, np.pi * radius**2, rng.uniform(0.2, 0.3))
    parents = rng.uniform(0, size, (max(1, count // 12), 2))
    centres = parents[rng.integers(0, len(parents), count)] + rng.normal(0.0, 2.5 * radius, (count, 2))
    return _domes(size, centres, np.full(count, radius) * rng.uniform(0.85, 1.15, count))


def _spinodal(rng, size: int, zoom: float, bright_share: float) -> np.ndarray:
    """Ring band-passed noise cut so that ``bright_share`` of the area is the bright phase, edges softened."""
    field = _shaped_noise(rng, size, _band_pass(size, 0.08 * size * zoom, 0.3))
    cut = np.quantile(field, 1.0 - bright_share)
    return 1.0 / (1.0 + np.exp(-(field - cut) * 6.0))


def _phase_labyrinth(rng, size, zoom):
    return _spinodal(rng, size, zoom, rng.uniform(0.45, 0.55))


def _phase_droplets(rng, size, zoom):
    return _spinodal(rng, size, zoom, rng.uniform(0.12, 0.2))


def _phase_holes(rng, size, zoom):
    return _spinodal(rng, size, zoom, rng.uniform(0.8, 0.88))


_DRAWERS: dict[str, Callable[[np.random.Generator, int, float], np.ndarray]] = {
    "grains/fine": _grains_fine,
    "grains/coarse": _grains_coarse,
    "grains/elongated": _grains_elongated,
    "rough/fractal": _rough_fractal,
    "rough/smooth": _rough_smooth,
    "fibrous/aligned": _fibrous_aligned,
    "fibrous/crossed": _fibrous_crossed,
    "fibrous/wavy": _fibrous_wavy,
    "particles/monodisperse": _particles_monodisperse,
    "particles/polydisperse": _particles_polydisperse,
    "particles/bimodal": _particles_bimodal,
    "particles/agglomerated": _particles_agglomerated,
    "phase/labyrinth": _phase_labyrinth,
    "phase/droplets": _phase_droplets,
    "phase/holes": _phase_holes,
}

#: The 15 sub-category paths ``category/sub-category``, in the order :func:`make_textures` returns them.
TEXTURE_SUBCATEGORIES: tuple[str, ...] = tuple(_DRAWERS)


# ---------------------------------------------------------------------------
# Rendering and nuisance
# ---------------------------------------------------------------------------


def _render(rng: np.random.Generator, height: np.ndarray) -> np.ndarray:
    """A height map in [0, 1] seen as a secondary-electron image with random nuisance, uint8.

    Brightness rises with height and with slope (edge brightening, random
    gain), a linear shading gradient crosses the frame, the focus is a little
    off (Gaussian blur, 0.3-1.2 px), then contrast, brightness and Gaussian
    noise (2-9 % of full scale) are drawn per image.
    """
    size = height.shape[0]
    slope = np.hypot(*np.gradient(ndimage.gaussian_filter(height, 1.0))) * size / 16.0
    signal = height + rng.uniform(0.1, 0.6) * np.clip(slope, 0.0, 2.0)
    signal = (signal - signal.mean()) / max(signal.std(), 1e-12)
    angle = rng.uniform(0, 2 * np.pi)
    rows, cols = np.mgrid[0:size, 0:size] / size - 0.5
    signal = signal + rng.uniform(0.0, 0.8) * (math.cos(angle) * cols + math.sin(angle) * rows)
    signal = ndimage.gaussian_filter(signal, rng.uniform(0.3, 1.2))
    grey = rng.uniform(0.35, 0.6) + rng.uniform(0.07, 0.16) * signal
    grey = grey + rng.normal(0.0, rng.uniform(0.02, 0.09), grey.shape)
    return np.rint(np.clip(grey, 0.0, 1.0) * 255.0).astype(np.uint8)


def _orient(rng: np.random.Generator, height: np.ndarray) -> np.ndarray:
    """``height`` turned by a random multiple of 90 degrees and maybe mirrored (exact, no resampling)."""
    height = np.rot90(height, int(rng.integers(0, 4)))
    return height[:, ::-1] if rng.random() < 0.5 else height


def make_textures(
    n_per_class: int, rng: np.random.Generator | int | None = None, size: int = 128
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n_per_class`` grey SEM-like textures of each of the 15 sub-categories, with their truth.

    Parameters
    ----------
    n_per_class : int
        Images per sub-category, at least 1.
    rng : numpy.random.Generator, int or None
        Source of every random choice (an int seeds a new generator); the same
        seed gives the same images.
    size : int, default 128
        Side of the square images, px, at least 32.  Lengths are fractions of
        the side, so a class looks alike at every size.

    Returns
    -------
    images : numpy.ndarray
        ``uint8`` array of shape ``(15 * n_per_class, size, size)``, grey levels 0-255.
    category : numpy.ndarray
        ``str`` array of shape ``(15 * n_per_class,)``: the category of each image (``"grains"``, ...).
    subcategory : numpy.ndarray
        ``str`` array of the same shape: the ``category/sub-category`` path of
        each image (``"grains/fine"``, ...), one of :data:`TEXTURE_SUBCATEGORIES`.

    Raises
    ------
    ValueError
        If ``n_per_class`` is below 1 or ``size`` below 32.

    Notes
    -----
    Images come sub-category by sub-category in the order of
    :data:`TEXTURE_SUBCATEGORIES`.  Cost is dominated by the FFTs and the
    Voronoi nearest-seed queries: O(size^2 log size) per image, about 5 ms at
    128 px.  The five categories differ in what builds the image (cells,
    power-law surfaces, oriented waves, particles, phase-separated domains),
    the sub-categories in a size, shape or arrangement parameter.

    Examples
    --------
    >>> images, category, subcategory = make_textures(2, rng=0, size=64)
    >>> images.shape, images.dtype, len(set(category)), len(set(subcategory))
    ((30, 64, 64), dtype('uint8'), 5, 15)
    >>> str(subcategory[0]), str(category[0])
    ('grains/fine', 'grains')
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} px, got {size}")
    rng = np.random.default_rng(rng)
    images = np.empty((len(_DRAWERS) * n_per_class, size, size), dtype=np.uint8)
    subcategory: list[str] = []
    for path, drawer in _DRAWERS.items():
        for _ in range(n_per_class):
            height = drawer(rng, size, rng.uniform(0.8, 1.25))
            images[len(subcategory)] = _render(rng, _orient(rng, height))
            subcategory.append(path)
    subcategories = np.array(subcategory)
    return images, np.array([path.split("/")[0] for path in subcategory]), subcategories
