"""Tying a JPG to the TIFF it was made from.

The thesis found that "converting the images from TIFF to JPG using various
compression methods, it was possible to replicate almost every JPG from a
TIFF file".  We do that exactly: a candidate TIFF (same size, close
perceptual hash) is re-encoded with the JPG's own quantisation tables and
chroma subsampling (:func:`semcurate.ingest.convert.reencode_like`); equal
bytes prove the JPG is a rendition of that TIFF.  When no candidate
reproduces the bytes (a JPG written by other software), a candidate whose
pixels differ from the JPG's by at most :data:`PIXEL_TOLERANCE` grey levels
on average is accepted as a rendition too, and the match says so.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image, JpegImagePlugin

from semcurate.ingest.convert import reencode_like
from semcurate.ingest.images import bit_counts, hash_array

#: Candidates must be within this many bits of the JPG's perceptual hash.
MAX_HASH_DISTANCE = 10
#: Mean absolute difference, in 8-bit grey levels, under which pixels are "the same picture".
PIXEL_TOLERANCE = 2.0


@dataclass(frozen=True)
class Candidate:
    """An admitted image a JPG may be a rendition of (size in px, phash as hex)."""

    md5: str
    width: int
    height: int
    phash: str


@dataclass(frozen=True)
class RenditionMatch:
    """``how`` is ``reencoded`` (bytes reproduced) or ``pixels`` (within tolerance)."""

    md5: str
    how: str
    mean_abs_difference: float


class CandidateIndex:
    """Admitted images grouped by pixel size, for fast candidate look-up.

    A look-up compares the hash with those of every image of the size at
    once, as 64-bit words (:func:`~semcurate.ingest.images.bit_counts` of
    their XOR).  A repository holds thousands of images of one size (15,412
    of 256 × 192 px in the 52,682-image demo run); comparing one hash string
    at a time made each look-up, and so each JPG, cost more as it grew.
    """

    def __init__(self, candidates: Iterable[Candidate] = ()):
        self._by_size: dict[tuple[int, int], list[Candidate]] = defaultdict(list)
        self._hashes: dict[tuple[int, int], np.ndarray] = {}  # per size, made on a look-up after a change
        for candidate in candidates:
            self.add(candidate)

    def add(self, candidate: Candidate) -> None:
        size = (candidate.width, candidate.height)
        self._by_size[size].append(candidate)
        self._hashes.pop(size, None)

    def near(self, width: int, height: int, phash: str, max_distance: int = MAX_HASH_DISTANCE) -> list[Candidate]:
        """Candidates of the same size within ``max_distance`` bits, closest first (then by md5)."""
        size = (width, height)
        group = self._by_size.get(size)
        if not group:
            return []
        if size not in self._hashes:
            self._hashes[size] = hash_array([candidate.phash for candidate in group])
        distances = bit_counts(self._hashes[size] ^ np.uint64(int(phash, 16)))
        close = np.flatnonzero(distances <= max_distance)
        return [group[i] for i in sorted(close, key=lambda i: (distances[i], group[i].md5))]


def mean_abs_difference(image_a: Image.Image, image_b: Image.Image) -> float:
    """Mean absolute grey-level difference of two same-size images (compared as grey)."""
    a = np.asarray(image_a.convert("L"), dtype=np.int16)
    b = np.asarray(image_b.convert("L"), dtype=np.int16)
    return float(np.abs(a - b).mean())


def match_rendition(
    jpeg: Image.Image,
    jpeg_md5: str,
    candidates: list[Candidate],
    load_display: Callable[[str], Image.Image],
) -> RenditionMatch | None:
    """Find the candidate ``jpeg`` was made from, or ``None``.

    ``jpeg`` is the opened (loaded) JPG, ``jpeg_md5`` the MD5 of its bytes,
    ``load_display(md5)`` returns a candidate's 8-bit display image.  Exact
    re-encodings are tried for all candidates before any pixel comparison, so
    a near-duplicate never steals the rendition of its twin.  An image that is
    not a JPEG (no tables to re-encode with) is compared by pixels only.

    Candidates are decoded when first needed, in their order (closest hash
    first): a rendition that re-encodes exactly costs one decode however many
    other images of its size hash alike, which grow with the repository.
    """
    displays: dict[str, Image.Image] = {}

    def display_of(md5: str) -> Image.Image:
        if md5 not in displays:
            displays[md5] = load_display(md5)
        return displays[md5]

    if isinstance(jpeg, JpegImagePlugin.JpegImageFile):
        for candidate in candidates:
            display = display_of(candidate.md5)
            if hashlib.md5(reencode_like(display, jpeg)).hexdigest() == jpeg_md5:
                return RenditionMatch(candidate.md5, "reencoded", mean_abs_difference(display, jpeg))
    best: RenditionMatch | None = None
    for candidate in candidates:
        difference = mean_abs_difference(display_of(candidate.md5), jpeg)
        if difference <= PIXEL_TOLERANCE and (best is None or difference < best.mean_abs_difference):
            best = RenditionMatch(candidate.md5, "pixels", difference)
    return best
