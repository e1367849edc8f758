"""Decoding one image file fully, or saying precisely why it cannot be.

Pure functions over bytes and PIL images: no database, no walking.  Every
failure is an :class:`ImageProblem` with a status (``corrupt`` or
``rejected``) and a reason an admin can act on, so a run never dies on a bad
file.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, UnidentifiedImageError

from semcurate.ingest.convert import to_display

#: Default limit on width × height in pixels before decoding (a decompression-bomb guard).
#: 8192 × 6144 SEM frames (50 Mpx) pass; a 20000 × 20000 bomb does not.
DEFAULT_MAX_PIXELS = 100_000_000


class ImageProblem(Exception):
    """A file that cannot become an image: ``status`` is ``corrupt`` or ``rejected``."""

    def __init__(self, status: str, reason: str):  # both in args, so it pickles across processes
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class DecodedImage:
    """A fully decoded image: the 8-bit display image and what it came from.

    ``source`` is the loaded Pillow image as decoded (a JPG keeps its
    quantisation tables there); ``width``/``height`` in pixels; ``mode`` is
    the source's Pillow mode; ``pages`` the number of frames; ``note`` says
    what the conversion to ``display`` changed.
    """

    source: Image.Image
    display: Image.Image
    width: int
    height: int
    mode: str
    pages: int
    note: str | None


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode every pixel of the first frame of ``data`` (TIFF or JPG bytes).

    Raises :class:`ImageProblem` for empty, truncated or undecodable data and
    for images over ``max_pixels`` (checked from the header, before any
    pixel is decoded).
    """
    if not data:
        raise ImageProblem("corrupt", "zero-byte file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        previous_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # our own limit below replaces Pillow's global one
        try:
            return _decode(data, max_pixels)
        finally:
            Image.MAX_IMAGE_PIXELS = previous_limit


def _decode(data: bytes, max_pixels: int) -> DecodedImage:
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageProblem("corrupt", "content is not a readable image") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageProblem("corrupt", f"unreadable header: {error}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageProblem(
            "rejected",
            f"{width}×{height} = {width * height / 1e6:.1f} Mpx exceeds the limit of "
            f"{max_pixels / 1e6:.1f} Mpx (decompression-bomb guard: raise --max-pixels and re-run "
            "with --retry-failed to admit it)",
        )
    pages = getattr(image, "n_frames", 1)
    try:
        image.load()
        display, note = to_display(image)
    except (OSError, ValueError, SyntaxError, MemoryError) as error:
        kind = "truncated" if "truncated" in str(error).lower() else "undecodable"
        raise ImageProblem("corrupt", f"{kind} pixel data: {error}") from None
    if pages > 1:
        note = "; ".join(filter(None, [note, f"multi-page ({pages} pages): first page used"]))
    return DecodedImage(image, display, width, height, image.mode, pages, note)


#: Images are box-reduced until their short side is under twice this (px) before hashing.
PHASH_WORKING_SIZE = 128


def perceptual_hash(image: Image.Image) -> str:
    """64-bit DCT perceptual hash (imagehash.phash) as 16 hex digits.

    The image is first box-reduced by an integer factor to a short side of
    128-255 px: phash only looks at a 32 × 32 thumbnail, and resampling a
    full 1024 × 768 frame with Lanczos costs 10 ms against under 1 ms this way.
    """
    factor = max(1, min(image.size) // PHASH_WORKING_SIZE)
    return str(imagehash.phash(image.reduce(factor) if factor > 1 else image))


def hash_array(hashes: Sequence[str]) -> np.ndarray:
    """Hex hashes of 16 digits as a ``uint64`` array.

    Examples
    --------
    >>> hash_array(["ffffffffffffffff", "0000000000000001"]).tolist()
    [18446744073709551615, 1]
    """
    return np.array([int(value, 16) for value in hashes], dtype=np.uint64)


#: Set bits of every byte value, for counting bits where NumPy has no ``bitwise_count`` (before 2.0).
_BYTE_BITS = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


def bit_counts(words: np.ndarray) -> np.ndarray:
    """Set bits of each 64-bit word of ``words``: ``numpy.bitwise_count`` from NumPy 2.0, else a byte table.

    Examples
    --------
    >>> bit_counts(np.array([0, 7, 2**64 - 1], dtype=np.uint64)).tolist()
    [0, 3, 64]
    """
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    words = np.ascontiguousarray(words, dtype=np.uint64)
    return _BYTE_BITS[words.view(np.uint8)].reshape(*words.shape, 8).sum(axis=-1, dtype=np.uint8)


def hamming(hash_a: str, hash_b: str) -> int:
    """Number of differing bits between two hex perceptual hashes.

    Examples
    --------
    >>> hamming("ff00", "0f01")  # 0xf001: four bits, then one
    5
    >>> hamming("8f3a", "8f3a")
    0
    """
    return (int(hash_a, 16) ^ int(hash_b, 16)).bit_count()
