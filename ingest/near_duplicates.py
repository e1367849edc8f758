"""Near-duplicates that survive what people do to images: candidates from perceptual hashes, confirmed by pixels.

A copy of an acquisition saved again is resized, re-compressed, cropped by a
few pixels, contrast-stretched or cut above its data bar; it keeps neither
the size nor the grey levels of the original, so a same-size, same-pixels
test finds none of them.  Grouping here takes two steps:

1. **Candidates** (:func:`candidate_pairs`): pairs whose 64-bit perceptual
   hashes of the top square (:func:`top_square_hash`: the square at the top
   centre, half the width on a side, which a copy cut above its data bar,
   resized or slightly cropped still shows the same) lie within
   :data:`TOP_SQUARE_BITS` bits, or whose hashes of the whole image
   (``images.phash``) lie within :data:`WHOLE_IMAGE_BITS`.  The whole-image
   hash is held to fewer bits because the data bar weighs in it: images of
   one instrument share the bar's dark band and collide there ten times as
   often as on the top square.  Cheap and tolerant, but similar textures
   still collide (different fields of view of one sample, two images of one
   kind of specimen) at a constant rate per pair, so the candidates grow with
   the square of the images.
2. **Confirmation** (:func:`match`): the two images' views
   (:func:`comparison_view`: the upper :data:`VIEW_SHARE` of the image at
   :data:`VIEW_WIDTH` px wide, band-passed so that shading and contrast do
   not count) must correlate at :data:`MIN_CORRELATION` or more at some shift
   of at most :data:`MAX_SHIFT` of the width, over an overlap of at least
   :data:`MIN_OVERLAP` of the smaller view, and they must agree everywhere,
   not only on average: at least :data:`MIN_AGREEMENT` of the overlap's
   blocks (:func:`agreement`) correlate on their own.  Independent textures
   correlate near 0; another field of view of the same sample overlaps too
   little or at another scale; two specimens of one shape (two tips drawn
   alike) correlate on their outlines but not on the texture between them.
   A copy cropped by a few pixels is also compared at the original's pixel
   size.

Pure functions over PIL images and numpy arrays; the shell is
:meth:`semcurate.ingest.ingestion.Ingestion.group_near_duplicates`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image
from scipy import fft, ndimage

from semcurate.ingest.images import bit_counts, hash_array, perceptual_hash

#: The rule below (candidates and confirmation), recorded with each ingest run that grouped by it: a later run
#: compares again only pairs with an image newer than the last run of the same rule (change it with the rule).
GROUPING_RULE = "2"
#: Candidate pairs: top-square perceptual hashes within this many of 64 bits.
TOP_SQUARE_BITS = 10
#: Candidate pairs: whole-image perceptual hashes within this many of 64 bits (the data bar weighs in them).
WHOLE_IMAGE_BITS = 6
#: Side of the top square, as a share of the image width.
TOP_SQUARE_SHARE = 0.5
#: Width, in px, of the views compared.
VIEW_WIDTH = 128
#: Share of the image height, from the top, that the view keeps (the data bar lies in the lower part).
VIEW_SHARE = 0.7
#: Gaussian sigmas (view px) of the band-pass: detail finer than the pixels of a JPG and coarser than shading.
BAND_SIGMAS = (0.8, 5.0)
#: Largest shift tried, as a share of the view width (a crop of a few px moves the content by about that much).
MAX_SHIFT = 0.06
#: Largest crop tried as a same-pixel-size copy, as a share of the wider image's width.
MAX_CROP = 0.1
#: Crops (shares of the width) tried when the sizes do not tell: a copy resized and then cropped.
CROP_SHARES = (0.01, 0.02, 0.04)
#: Least overlap of the two views at the shift tried, as a share of the smaller view.
MIN_OVERLAP = 0.8
#: Least correlation of the band-passed views for a confirmed pair.
MIN_CORRELATION = 0.85
#: Least standard deviation (grey levels) of a band-passed view: below it there is too little to compare.
MIN_DETAIL = 0.5
#: Side, in view px, of the blocks whose own correlations :func:`agreement` counts.
BLOCK = 16
#: Least correlation of a block of the overlap for it to agree.
BLOCK_CORRELATION = 0.5
#: Least share of the overlap's blocks (those with detail in both views) that agree, for a confirmed pair.
MIN_AGREEMENT = 0.9


def top_square(image: Image.Image) -> Image.Image:
    """The square at the top centre of ``image``, :data:`TOP_SQUARE_SHARE` of its width on a side (or less).

    Examples
    --------
    >>> top_square(Image.new("L", (1024, 768))).size
    (512, 512)
    """
    width, height = image.size
    side = max(1, min(round(width * TOP_SQUARE_SHARE), height))
    left = (width - side) // 2
    return image.crop((left, 0, left + side, side))


def top_square_hash(image: Image.Image) -> str:
    """The perceptual hash (16 hex digits) of :func:`top_square` of ``image``, as grey."""
    return perceptual_hash(top_square(image.convert("L")))


def candidate_pairs(
    hash_columns: Sequence[tuple[Sequence[str], int]], among: Sequence[int] | None = None
) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of images whose hashes of any one kind differ in at most that kind's bits.

    Parameters
    ----------
    hash_columns : sequence of (sequence of str, int)
        One entry per kind of hash (whole image, top square): a 16-hex-digit
        hash per image, in the same image order for every kind, and the
        largest Hamming distance of a candidate pair by that kind.
    among : sequence of int, optional
        Only pairs with at least one of these images (say, the images new since
        the last comparison); by default every pair.

    Returns
    -------
    list of (int, int)
        Sorted, without repeats.

    Notes
    -----
    Exhaustive: every pair asked for is compared, a block of rows at a time,
    by the number of set bits in the XOR of the hashes (:func:`~semcurate.ingest.images.bit_counts`):
    each row of a block against the rows from the block on (every pair once),
    or, with ``among``, each of those against every row.  ``O(n²)`` time for
    all pairs (52,682 images: about 7 s per kind of hash), ``O(m n)`` for the
    pairs of ``m`` images, ``O(n × block)`` memory.

    Examples
    --------
    >>> hashes = ["0000000000000000", "0000000000000007", "ffffffffffffffff", "0000000000000003"]
    >>> candidate_pairs([(hashes, 3)]), candidate_pairs([(hashes, 2)]), candidate_pairs([(hashes, 3)], among=[3])
    ([(0, 1), (0, 3), (1, 3)], [(0, 3), (1, 3)], [(0, 3), (1, 3)])
    """
    found: set[tuple[int, int]] = set()
    block = 512
    for column, max_bits in hash_columns:
        values = hash_array(column)
        queries = np.arange(len(values)) if among is None else np.unique(np.asarray(among, dtype=np.int64))
        for start in range(0, len(queries), block):
            rows = queries[start : start + block]
            first = int(rows[0]) if among is None else 0  # all pairs: a block's earlier rows were compared before
            distances = bit_counts(values[rows][:, None] ^ values[None, first:])
            for i, j in zip(*np.nonzero(distances <= max_bits), strict=True):
                a, b = int(rows[i]), first + int(j)
                if a != b:
                    found.add((min(a, b), max(a, b)))
    return sorted(found)


def comparison_view(image: Image.Image, width: int = VIEW_WIDTH) -> np.ndarray | None:
    """The band-passed view of ``image`` that :func:`similarity` compares, or None when it holds too little.

    The image as grey, resized to ``width`` px wide (area average),
    its upper :data:`VIEW_SHARE` kept, the difference of Gaussian blurs of
    :data:`BAND_SIGMAS` px taken.  None for images under 16 px either way and
    for views whose detail is under :data:`MIN_DETAIL` grey levels (a blank
    frame: nothing to tell copies from other blank frames by).
    """
    image_width, image_height = image.size
    if image_width < 16 or image_height < 16:
        return None
    grey = image.convert("L")
    view_height = max(8, round(image_height * width / image_width))
    resized = np.asarray(grey.resize((width, view_height), Image.Resampling.BOX), dtype=np.float64)
    view = resized[: max(8, round(view_height * VIEW_SHARE))]
    fine, coarse = BAND_SIGMAS
    band = ndimage.gaussian_filter(view, fine) - ndimage.gaussian_filter(view, coarse)
    return band if band.std() >= MIN_DETAIL else None


def _overlap_counts(rows_a: int, rows_b: int, shifts: np.ndarray) -> np.ndarray:
    """How many rows (or columns) two views of ``rows_a`` and ``rows_b`` share when ``b`` is moved by each shift."""
    return np.clip(np.minimum(rows_a, rows_b + shifts) - np.maximum(0, shifts), 0, None)


def similarity(view_a: np.ndarray, view_b: np.ndarray) -> tuple[float, tuple[int, int]]:
    """The best correlation of two views over shifts of up to :data:`MAX_SHIFT`, and that shift ``(dy, dx)``.

    The correlation at shift ``(dy, dx)`` is Pearson's over the overlap,
    ``view_b[y, x]`` against ``view_a[y + dy, x + dx]``; only shifts where the
    views overlap by at least :data:`MIN_OVERLAP` of the smaller one count.
    When the zero shift reaches :data:`MIN_CORRELATION` it is the answer.

    Notes
    -----
    Every shift at once by FFT (masked normalised cross-correlation, Padfield
    2012): the overlap's sums of ``a``, ``b``, ``a²``, ``b²`` and ``ab`` are five
    cross-correlations of the views, their squares and their footprints, so a
    pair costs a few FFTs of the views, padded by the largest shift, instead
    of one correlation per shift (289 at :data:`MAX_SHIFT` = 0.06 of 128 px).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> view = rng.normal(size=(60, 128))
    >>> round(similarity(view, view[2:, 3:])[0], 6), similarity(view, view[2:, 3:])[1]
    (1.0, (2, 3))
    >>> bool(similarity(view, rng.normal(size=(60, 128)))[0] < 0.2)
    True
    """
    (rows_a, columns_a), (rows_b, columns_b) = view_a.shape, view_b.shape
    reach = max(1, round(MAX_SHIFT * VIEW_WIDTH))
    shifts = np.arange(-reach, reach + 1)  # along each axis
    count = np.outer(_overlap_counts(rows_a, rows_b, shifts), _overlap_counts(columns_a, columns_b, shifts))
    valid = count >= MIN_OVERLAP * min(view_a.size, view_b.size)
    if not valid.any():
        return -1.0, (0, 0)
    # Padded by the largest shift only: a circular correlation over at least max(rows) + reach rows (and columns)
    # equals the linear one at every shift tried, since nothing wraps into the other view's pixels; a third of the
    # points of the full linear correlation's rows_a + rows_b - 1.
    shape = tuple(
        fft.next_fast_len(max(size_a, size_b) + reach, real=True)
        for size_a, size_b in ((rows_a, rows_b), (columns_a, columns_b))
    )
    spectra_a = [fft.rfft2(x, shape) for x in (view_a, view_a * view_a, np.ones_like(view_a))]
    spectra_b = [fft.rfft2(x, shape) for x in (view_b, view_b * view_b, np.ones_like(view_b))]
    rows, columns = np.ix_(shifts % shape[0], shifts % shape[1])

    def cross(spectrum_a: np.ndarray, spectrum_b: np.ndarray) -> np.ndarray:
        # sum over y, x of a[y + dy, x + dx] * b[y, x], at the shifts tried
        return fft.irfft2(spectrum_a * np.conj(spectrum_b), shape)[rows, columns]

    (a, a2, footprint_a), (b, b2, footprint_b) = spectra_a, spectra_b
    n = np.maximum(count, 1)
    sum_a, sum_b = cross(a, footprint_b), cross(footprint_a, b)
    covariance = cross(a, b) - sum_a * sum_b / n
    variance_a = cross(a2, footprint_b) - sum_a**2 / n
    variance_b = cross(footprint_a, b2) - sum_b**2 / n
    # A flat overlap has no variance; FFT round-off leaves it a tiny number, not 0, so compare with the views' own.
    floor = 1e-9 * max(float((view_a * view_a).sum()), float((view_b * view_b).sum()), 1e-300)
    defined = valid & (variance_a > floor) & (variance_b > floor)
    values = np.where(defined, covariance / np.sqrt(np.where(defined, variance_a * variance_b, 1.0)), 0.0)
    values = np.where(valid, values, -np.inf)
    at_zero = values[reach, reach]
    if at_zero >= MIN_CORRELATION:
        return float(at_zero), (0, 0)
    best = int(np.argmax(values))
    if values.flat[best] <= at_zero:  # the zero shift is tried first and kept on a tie
        return float(at_zero), (0, 0)
    dy, dx = np.unravel_index(best, values.shape)
    return float(values.flat[best]), (int(shifts[dy]), int(shifts[dx]))


def agreement(view_a: np.ndarray, view_b: np.ndarray, shift: tuple[int, int]) -> float:
    """Share of the overlap's blocks in which two views correlate on their own, at ``shift``.

    The overlap at ``shift = (dy, dx)`` pairs ``view_b[y, x]`` with
    ``view_a[y + dy, x + dx]``, as :func:`similarity` returns it; it is cut
    into blocks of :data:`BLOCK` × :data:`BLOCK` view px (a remainder along
    an edge is left out).  Blocks with under :data:`MIN_DETAIL` grey levels
    of standard deviation in either view do not count; of the rest, the
    share whose Pearson correlation reaches :data:`BLOCK_CORRELATION`.  Two
    copies of one acquisition agree in every block, their noise included;
    two specimens of one shape correlate over the whole view on their
    outlines, but not in the blocks of texture or noise between them.  0 when
    no block counts.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> view = rng.normal(size=(64, 128))
    >>> agreement(view, view[2:, 3:] + rng.normal(scale=0.3, size=(62, 125)), (2, 3))
    1.0
    >>> other = view.copy()
    >>> other[:, 64:] = rng.normal(size=(64, 64))  # one half of the view is another picture
    >>> agreement(view, other, (0, 0))
    0.5
    """
    dy, dx = shift
    a, b = view_a[max(0, dy) :, max(0, dx) :], view_b[max(0, -dy) :, max(0, -dx) :]
    rows = min(a.shape[0], b.shape[0]) // BLOCK * BLOCK
    columns = min(a.shape[1], b.shape[1]) // BLOCK * BLOCK
    if rows == 0 or columns == 0:
        return 0.0

    def blocks(view: np.ndarray) -> np.ndarray:
        """One row per block of ``view``'s overlap, its values centred."""
        cut = view[:rows, :columns].reshape(rows // BLOCK, BLOCK, columns // BLOCK, BLOCK).swapaxes(1, 2)
        flat = cut.reshape(-1, BLOCK * BLOCK)
        return flat - flat.mean(axis=1, keepdims=True)

    blocks_a, blocks_b = blocks(a), blocks(b)
    deviation_a, deviation_b = np.sqrt((blocks_a**2).mean(axis=1)), np.sqrt((blocks_b**2).mean(axis=1))
    counted = (deviation_a >= MIN_DETAIL) & (deviation_b >= MIN_DETAIL)
    if not counted.any():
        return 0.0
    correlations = (blocks_a * blocks_b).mean(axis=1)[counted] / (deviation_a * deviation_b)[counted]
    return float((correlations >= BLOCK_CORRELATION).mean())


class ComparedImage:
    """One image as :func:`match` compares it: its true width and its comparison views, each made once.

    A worker confirming many candidate pairs keeps one per image, so that an
    image named in several pairs is band-passed once per view width.

    Parameters
    ----------
    image : PIL.Image.Image
        The image, possibly decoded reduced (JPEG draft mode).
    width : int, optional
        Its true width in pixels when it was decoded reduced; by default its size's.
    """

    def __init__(self, image: Image.Image, width: int | None = None):
        self.image = image
        self.width = image.width if width is None else width
        self._views: dict[int, np.ndarray | None] = {}

    def view(self, view_width: int = VIEW_WIDTH) -> np.ndarray | None:
        """The :func:`comparison_view` of the image ``view_width`` px wide (made on the first call)."""
        if view_width not in self._views:
            self._views[view_width] = comparison_view(self.image, view_width)
        return self._views[view_width]


def match(first: ComparedImage, second: ComparedImage) -> tuple[float, float]:
    """How well two images match as copies of one acquisition: ``(correlation, agreement)`` over a few hypotheses.

    Same field of view (one resized, re-compressed, contrast-stretched or cut
    above its bar): both views :data:`VIEW_WIDTH` px wide.  Failing that, one
    cropped: the narrower image's view made narrower by each share of
    :data:`CROP_SHARES` (a crop after a resize) and, when the true widths
    differ by at most :data:`MAX_CROP`, by exactly their ratio (a plain crop
    keeps the pixel size).

    Returns
    -------
    (float, float)
        The best :func:`similarity` of a hypothesis and the :func:`agreement`
        at its shift: the first hypothesis to reach both
        :data:`MIN_CORRELATION` and :data:`MIN_AGREEMENT`, else the most
        correlated one; ``(0.0, 0.0)`` when either view holds too little
        detail (:func:`comparison_view`).
    """
    view_a, view_b = first.view(), second.view()
    if view_a is None or view_b is None:
        return 0.0, 0.0

    def hypotheses() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield view_a, view_b
        wide_view, narrow = (view_a, second) if first.width >= second.width else (view_b, first)
        shares = list(CROP_SHARES)
        if first.width != second.width and abs(first.width - second.width) <= MAX_CROP * max(first.width, second.width):
            shares.append(1 - min(first.width, second.width) / max(first.width, second.width))  # a plain crop
        for share in shares:
            narrow_view = narrow.view(round(VIEW_WIDTH * (1 - share)))
            if narrow_view is not None:
                yield wide_view, narrow_view

    best = (-1.0, 0.0)
    for wide, narrow_or_same in hypotheses():
        correlation, shift = similarity(wide, narrow_or_same)
        found = (correlation, agreement(wide, narrow_or_same, shift))
        if is_copy(*found):
            return found
        best = max(best, found)
    return best


def is_copy(correlation: float, agreed: float) -> bool:
    """Whether a :func:`match` result says copy: correlation at least :data:`MIN_CORRELATION`, agreement at least
    :data:`MIN_AGREEMENT`.

    Examples
    --------
    >>> is_copy(0.96, 0.9), is_copy(0.96, 0.5), is_copy(0.8, 1.0)
    (True, False, False)
    """
    return correlation >= MIN_CORRELATION and agreed >= MIN_AGREEMENT


def confirmed(image_a: Image.Image, image_b: Image.Image) -> bool:
    """Whether two images are copies of one acquisition: :func:`is_copy` of their :func:`match`."""
    return is_copy(*match(ComparedImage(image_a), ComparedImage(image_b)))
