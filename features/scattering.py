"""Wavelet scattering coefficients of grey SEM images, a texture descriptor that needs no training.

A scattering transform [1]_ cascades Morlet wavelet filtering (``J`` scales,
``L`` orientations per scale), the modulus and a final Gaussian low-pass:
order 1 measures how much texture there is at each scale and direction,
order 2 how that texture is modulated at each coarser scale (what
distinguishes a lattice from noise of the same spectrum, cells from
particles).  The coefficients are stable to small deformations and, averaged
over the image, invariant to translation, which is what a texture
descriptor for SEM sub-categories needs.  The transform is kymatio's NumPy
implementation [2]_ (``kymatio.scattering2d``; its 2-D frontend only, because
importing ``kymatio.numpy`` also loads the 3-D transform, which needs
``scipy.special.sph_harm``, gone from SciPy 1.17).

Every image is centre-cropped to at most 2 : 1, resampled so that its
shorter side is ``size`` px (area averaging when shrinking) and standardised
(zero mean, unit variance), so brightness and contrast do not enter the
coefficients.  The transform runs on square ``size`` px windows -- one for
a square image, else as few as cover the long side, evenly spaced, or
(extractor ``scattering_centre``) only the one at the centre (kymatio
builds its filter bank for one input shape, and that takes seconds: one
shape keeps it to one build).  Each scattering path's coefficient map is
averaged over the windows of the image and log-transformed
(``log(mean S + 1e-4)``).  Order 0 (the
low-passed image itself, whose average is the image mean, 0 after
standardising) is left out.  Each order-2 value is divided by its parent
order-1 value (a difference of logs), so it says how the texture at scale
``j1`` is modulated at scale ``j2``, not again how strong it is [1]_.

With ``rotation_invariant`` (the default; SEM textures appear at any
rotation) the ``L`` order-1 values of each scale are replaced by the
magnitudes of their discrete Fourier transform over the direction,
harmonics 1 to ``L / 2`` divided by ``L``, after their mean (harmonic 0):
a rotation of the image by a multiple of ``pi / L`` shifts the directions
circularly and leaves these magnitudes unchanged, while harmonics above 0 still tell a one-directional
texture (fibres, lines) from an isotropic one.  The order-2 values are
averaged over pairs of directions with the same angle between them, as in
Sifre and Mallat's rotation-invariant scattering [3]_.

References
----------
.. [1] J. Bruna and S. Mallat, "Invariant scattering convolution networks",
   IEEE TPAMI 35(8), 1872-1886, 2013.
.. [2] M. Andreux et al., "Kymatio: Scattering transforms in Python", JMLR
   21(60), 1-6, 2020.
.. [3] L. Sifre and S. Mallat, "Rotation, scaling and deformation invariant
   scattering for texture discrimination", CVPR 2013, 1233-1240.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

#: Smallest accepted image side, px.
MIN_SIDE = 8
#: Longest accepted long-to-short side ratio; longer images are centre-cropped to it.
MAX_ASPECT = 2.0
#: Added to the scattering coefficients before the logarithm (units of the standardised image).
LOG_FLOOR = 1e-4


#: How :class:`ScatteringExtractor` windows an image: ``cover`` (the fewest squares that cover it) or ``centre``
#: (its one centre square), and the extractor each makes.
WINDOWINGS = {"cover": "scattering", "centre": "scattering_centre"}


def subsample_fourier(x: np.ndarray, k: int) -> np.ndarray:
    """Periodise the 2-D spectra ``x`` of shape ``(..., M, N)`` by ``k``: the spectrum of the image subsampled by
    ``k`` in each direction (``out[u, v] = mean over a, b of x[u + a M / k, v + b N / k]``).

    The same sum as kymatio's NumPy backend, which averages over two strided axes of a
    ``(-1, k, M / k, k, N / k)`` view at once; summing one axis, then the other, is 1.3-7x faster for ``k`` of
    2 to 16 (NumPy reduces the first of those axes over contiguous blocks), and equal to float32 rounding.

    Examples
    --------
    >>> x = np.arange(16, dtype=np.complex64).reshape(1, 4, 4)
    >>> subsample_fourier(x, 2).real.tolist()  # e.g. (0 + 2 + 8 + 10) / 4
    [[[5.0, 6.0], [9.0, 10.0]]]
    """
    rows, columns = x.shape[-2] // k, x.shape[-1] // k
    return x.reshape(-1, k, rows, k, columns).sum(axis=1).sum(axis=2) / (k * k)


@functools.lru_cache(maxsize=4)
def _transform(j: int, side: int, orientations: int):
    """kymatio's NumPy scattering of ``side`` px squares (its filter bank takes seconds to build: cached), on its
    NumPy backend with :func:`subsample_fourier` in place of the backend's own."""
    from kymatio.scattering2d.backend.numpy_backend import NumpyBackend2D  # type: ignore[import-untyped]
    from kymatio.scattering2d.frontend.numpy_frontend import ScatteringNumPy2D  # type: ignore[import-untyped]

    class Backend(NumpyBackend2D):
        @classmethod
        def subsample_fourier(cls, x, k):
            cls.complex_check(x)
            return subsample_fourier(x, k)

    return ScatteringNumPy2D(J=j, shape=(side, side), L=orientations, max_order=2, backend=Backend)


def _windows(image: np.ndarray, side: int) -> list[np.ndarray]:
    """The fewest ``side`` px squares, evenly spaced along the long side, that cover ``image`` (short side ``side``)."""
    long_axis = int(image.shape[1] > image.shape[0])
    length = image.shape[long_axis]
    starts = np.linspace(0, length - side, -(-length // side)).round().astype(int)
    return [image[:, s : s + side] if long_axis else image[s : s + side] for s in starts]


def _centre_square(image: np.ndarray, side: int) -> np.ndarray:
    """The ``side`` px square at the centre of ``image`` (short side ``side``)."""
    long_axis = int(image.shape[1] > image.shape[0])
    start = (image.shape[long_axis] - side) // 2
    return image[:, start : start + side] if long_axis else image[start : start + side]


def scattering_paths(j: int, orientations: int) -> list[tuple[int, ...]]:
    """Order-1 and order-2 scattering paths in kymatio's order: ``(j1, theta1)``, ``(j1, theta1, j2, theta2)``.

    Order 1 by scale and direction, then order 2 for ``j2 > j1`` (the loops of
    ``kymatio.scattering2d.core.scattering2d``, whose output starts with the
    one order-0 path, left out here).

    Examples
    --------
    >>> paths = scattering_paths(3, 4)
    >>> len(paths), paths[:2], paths[-1]  # 3 * 4 + 4 * 4 * 3
    (60, [(0, 0), (0, 1)], (1, 3, 2, 3))
    """
    first = [(scale, angle) for scale in range(j) for angle in range(orientations)]
    second = [(j1, t1, j2, t2) for j1, t1 in first for j2, t2 in first if j2 > j1]
    return [*first, *second]


class ScatteringExtractor:
    """Spatially averaged log wavelet-scattering coefficients of grey images (extractors ``scattering`` and
    ``scattering_centre``).

    Parameters
    ----------
    size : int, default 128
        Shorter side, px, of the resampled image the transform runs on; at
        least ``2 ** J``.
    j : int, default 4
        Number of dyadic scales ``J``: the largest wavelet is about
        ``2 ** J`` px wide (16 px, an eighth of the side, by default).
    orientations : int, default 8
        Wavelet directions ``L`` per scale, over [0, pi).
    rotation_invariant : bool, default True
        Order-1 direction harmonics and order-2 averages over directions (see
        the module notes): ``J (L / 2 + 1) + L J (J - 1) / 2`` columns instead of
        ``J L + L^2 J (J - 1) / 2``.
    windowing : {"cover", "centre"}, default "cover"
        Which ``size`` px squares of the resampled image are transformed: the
        fewest that cover it (extractor ``scattering``), or only the one at its
        centre (``scattering_centre``), standardised by itself, which on a
        4 : 3 image costs half as much and leaves a quarter of it out.  A
        square image has one window either way, so both give it the same row.

    Attributes
    ----------
    name : str
        ``"scattering"`` or ``"scattering_centre"`` (:data:`WINDOWINGS`), also the name of the one output.
    input_size : tuple of int
        ``(size, size)``: the nominal side of the transform's input.
    outputs : dict
        ``{name: dimension}``.
    feature_names : list of str
        One per column: ``s1_j2_h1`` (h: harmonic over the directions) /
        ``s1_j2_t5`` (t: direction), ``s2_j0_j3_d2`` (d: direction difference) /
        ``s2_j0_t1_j3_t4``.

    Notes
    -----
    Cost per ``size`` px window is O(L^2 J^2 n log n) for its ``n`` pixels:
    about 25 ms at 128 px with ``J = 4``, ``L = 8`` on one core (kymatio's
    NumPy backend runs its FFTs on one thread; 60 ms of CPU per 4 : 3 demo
    image with its two windows, 34 ms with the centre one, in
    ``bench/features.py``), plus building the filter bank once per process
    (about 5 s at 128 px).  Memory is a few hundred
    complex copies of the padded window, about 40 MB per window of a batch.

    Examples
    --------
    >>> extractor = ScatteringExtractor(size=64, j=3, orientations=4)
    >>> extractor.outputs  # 3 * (2 + 1) + 4 * 3
    {'scattering': 21}
    >>> rows = extractor.transform([np.zeros((64, 80), np.uint8)])["scattering"]
    >>> rows.shape, rows.dtype
    ((1, 21), dtype('float32'))

    A flat image has no texture: at every scale the order-1 mean is
    log(1e-4) = -9.21 and the other harmonics are 0, and each order-2 value
    equals its parent (log ratio 0):

    >>> np.round(rows[0, :9].astype(float), 2).reshape(3, 3).tolist()
    [[-9.21, 0.0, 0.0], [-9.21, 0.0, 0.0], [-9.21, 0.0, 0.0]]
    >>> float(np.abs(rows[0, 9:]).max())
    0.0
    """

    weights_tag = weights_digest = "none"
    weights = "none"

    def __init__(
        self,
        *,
        size: int = 128,
        j: int = 4,
        orientations: int = 8,
        rotation_invariant: bool = True,
        windowing: str = "cover",
    ):
        if windowing not in WINDOWINGS:
            raise ValueError(f"windowing must be one of {', '.join(WINDOWINGS)}, got {windowing!r}")
        self.windowing, self.name = windowing, WINDOWINGS[windowing]
        if j < 1 or orientations < 1:
            raise ValueError(f"J and L must be at least 1, got J={j}, L={orientations}")
        if size < 2**j:
            raise ValueError(f"size must be at least 2 ** J = {2**j} px, got {size}")
        self.size, self.j, self.orientations, self.rotation_invariant = size, j, orientations, rotation_invariant
        self.input_size = (size, size)
        paths = scattering_paths(j, orientations)
        first, second = paths[: j * orientations], paths[j * orientations :]
        self._parents = np.array([first.index(path[:2]) for path in second])
        if rotation_invariant:
            keys = [(path[0], path[2], (path[3] - path[1]) % orientations) for path in second]
            self._groups = list(dict.fromkeys(keys))
            self._members: np.ndarray | None = np.array([self._groups.index(key) for key in keys])
            self.feature_names = [f"s1_j{scale}_h{k}" for scale in range(j) for k in range(orientations // 2 + 1)]
            self.feature_names += [f"s2_j{j1}_j{j2}_d{delta}" for j1, j2, delta in self._groups]
        else:
            self._members = None
            self.feature_names = [f"s1_j{scale}_t{angle}" for scale, angle in first]
            self.feature_names += [f"s2_j{j1}_t{t1}_j{j2}_t{t2}" for j1, t1, j2, t2 in second]
        self.outputs = {self.name: len(self.feature_names)}

    def prepare(self, grey_images: list[np.ndarray]) -> list[np.ndarray]:
        """Each image cropped to at most 2 : 1, resampled to short side ``size``, standardised and cut into windows.

        Returns one ``(windows, size, size)`` float32 array per image.

        Parameters
        ----------
        grey_images : list of numpy.ndarray
            2-D grey images, uint8 (0-255) or other real dtypes (clipped to
            0-255), both sides at least 8 px.

        Raises
        ------
        ValueError
            If an image is not 2-D or a side is shorter than 8 px.
        """
        return [self._prepare_one(np.asarray(grey)) for grey in grey_images]

    def _prepare_one(self, grey: np.ndarray) -> np.ndarray:
        if grey.ndim != 2:
            raise ValueError(f"expected a 2-D grey image, got shape {grey.shape}; convert colour images to grey first")
        if min(grey.shape) < MIN_SIDE:
            raise ValueError(f"image of shape {grey.shape} is too small; both sides must be at least {MIN_SIDE} px")
        height, width = grey.shape
        limit = int(MAX_ASPECT * min(height, width))
        top, left = max(0, (height - limit) // 2), max(0, (width - limit) // 2)
        grey = grey[top : top + min(height, limit), left : left + min(width, limit)]
        pixels = np.clip(np.nan_to_num(grey.astype(np.float32)), 0, 255)
        scale = self.size / min(grey.shape)
        out_h, out_w = (max(self.size, round(side * scale)) for side in grey.shape)
        image = Image.fromarray(pixels, mode="F")
        shrinking = out_w <= image.width and out_h <= image.height
        resized = np.asarray(
            image.resize((out_w, out_h), Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR)
        )
        if self.windowing == "centre":  # standardised over the square alone: its row owes nothing to the rest
            resized = _centre_square(resized, self.size)
        centred = resized - resized.mean()
        spread = centred.std()
        standardised = (centred / spread if spread > 1e-3 else np.zeros_like(centred)).astype(np.float32)
        return np.stack(_windows(standardised, self.size))  # a centre square is its own one window

    def predict(self, prepared: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Rows for the windows of images from :meth:`prepare`, all windows transformed together."""
        if not prepared:
            return {self.name: np.empty((0, len(self.feature_names)), dtype=np.float32)}
        count = len(prepared)
        owner = np.repeat(np.arange(count), [len(windows) for windows in prepared])
        coefficients = _transform(self.j, self.size, self.orientations)(np.concatenate(prepared))
        # order 0 dropped; the moduli of orders 1 and 2 are >= 0 up to FFT rounding
        per_window = np.maximum(coefficients[:, 1:], 0.0).mean(axis=(-2, -1), dtype=np.float64)
        pooled = np.zeros((count, per_window.shape[1]))
        np.add.at(pooled, owner, per_window)
        logged = np.log(pooled / np.bincount(owner)[:, None] + LOG_FLOOR)
        first = logged[:, : self.j * self.orientations]
        second = logged[:, self.j * self.orientations :] - first[:, self._parents]
        if self._members is not None:
            by_direction = first.reshape(count, self.j, self.orientations)
            harmonics = np.abs(np.fft.rfft(by_direction, axis=2)) / self.orientations
            harmonics[:, :, 0] = by_direction.mean(axis=2)  # harmonic 0 with its sign: the mean log
            first = harmonics.reshape(count, -1)
            sums = np.zeros((count, len(self._groups)))
            np.add.at(sums.T, self._members, second.T)
            second = sums / np.bincount(self._members)
        return {self.name: np.concatenate([first, second], axis=1).astype(np.float32)}

    def transform(self, grey_images: list[np.ndarray]) -> dict[str, np.ndarray]:
        """``{name: rows}``: ``float32`` of shape ``(len(grey_images), dimension)``, every entry finite."""
        return self.predict(self.prepare(grey_images))
