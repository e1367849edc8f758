"""Tying a JPG to the TIFF it renders: exact re-encodings first, then pixels; candidates decoded only when needed."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from semcurate.ingest.rendition import Candidate, match_rendition


def _picture(seed: int) -> Image.Image:
    texture = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=(48, 64)), 1.5)
    return Image.fromarray(np.clip(128 + 400 * texture, 0, 255).astype(np.uint8))


def _jpeg(picture: Image.Image, quality: int) -> tuple[Image.Image, str]:
    """A JPG Pillow made of ``picture`` (opened, as ingest opens it) and the MD5 of its bytes."""
    import hashlib

    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())), hashlib.md5(buffer.getvalue()).hexdigest()


@pytest.fixture
def displays():
    return {name: _picture(seed) for seed, name in enumerate(("source", "other", "third"))}


def _candidates(names: list[str]) -> list[Candidate]:
    return [Candidate(name, 64, 48, "0" * 16) for name in names]


def _loader(displays: dict, loaded: list):
    def load(md5: str) -> Image.Image:
        loaded.append(md5)
        return displays[md5]

    return load


@pytest.mark.parametrize(
    ("order", "decodes"),
    [(["source", "other", "third"], ["source"]), (["other", "third", "source"], ["other", "third", "source"])],
)
def test_a_rendition_that_reencodes_exactly_costs_the_decodes_up_to_its_source(displays, order, decodes):
    jpeg, md5 = _jpeg(displays["source"], 83)
    loaded: list[str] = []
    found = match_rendition(jpeg, md5, _candidates(order), _loader(displays, loaded))
    assert (found.md5, found.how) == ("source", "reencoded")
    assert found.mean_abs_difference > 0  # lossy, yet its bytes are reproduced
    assert loaded == decodes  # each candidate once, in order, none after the match


def test_a_jpg_of_no_candidate_decodes_each_candidate_once_and_matches_none(displays):
    jpeg, md5 = _jpeg(_picture(99), 83)
    loaded: list[str] = []
    assert match_rendition(jpeg, md5, _candidates(["source", "other", "third"]), _loader(displays, loaded)) is None
    assert loaded == ["source", "other", "third"]


def test_a_picture_that_is_no_jpeg_is_matched_by_its_pixels(displays):
    loaded: list[str] = []
    found = match_rendition(
        displays["other"].copy(), "f" * 32, _candidates(["source", "other"]), _loader(displays, loaded)
    )
    assert (found.md5, found.how, found.mean_abs_difference) == ("other", "pixels", 0.0)
    assert loaded == ["source", "other"]


def test_candidate_look_up_equals_a_string_by_string_hamming_search():
    """The word-at-once look-up finds what comparing every hash string finds, in the same order, after adds too."""
    from semcurate.ingest.images import hamming
    from semcurate.ingest.rendition import CandidateIndex

    rng = np.random.default_rng(0)
    base = [int(value) for value in rng.integers(0, 2**63, 300, dtype=np.int64)]
    hashes = [f"{value ^ (int(rng.integers(0, 2**12)) << int(rng.integers(0, 52))):016x}" for value in base[:3] * 100]
    candidates = [Candidate(f"{number:032x}", 64 if number % 5 else 32, 48, h) for number, h in enumerate(hashes)]
    index = CandidateIndex(candidates[:250])
    index.near(64, 48, hashes[0])  # builds the words of that size; the adds below must reach them
    for candidate in candidates[250:]:
        index.add(candidate)
    for query in hashes[:40]:
        for width in (64, 32):
            expected = sorted(
                (hamming(query, c.phash), c.md5, c) for c in candidates if (c.width, c.height) == (width, 48)
            )
            found = index.near(width, 48, query)
            assert found == [c for distance, _, c in expected if distance <= 10]
    assert any(len(index.near(64, 48, query)) > 1 for query in hashes[:40])  # the test has close hashes to rank
    assert index.near(99, 48, hashes[0]) == []
