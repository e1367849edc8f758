"""Similar-image search (semcurate.web.similar) against scikit-learn's brute-force neighbours, and thumbnails."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from semcurate.web.similar import SimilarIndex
from semcurate.web.thumbnails import ThumbnailCache, read_regular_file, thumbnail_bytes


def test_neighbours_equal_scikit_learns_exact_search_on_standardised_rows():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(500, 24)) * rng.uniform(0.1, 50, size=24)  # columns of very different widths
    md5s = [f"{row:032x}" for row in range(500)]
    index = SimilarIndex(md5s, values)
    reference = NearestNeighbors(n_neighbors=13, algorithm="brute").fit(StandardScaler().fit_transform(values))
    distances, rows = reference.kneighbors(StandardScaler().fit_transform(values)[[7, 123, 499]])
    for query, (expected_d, expected_rows) in zip((7, 123, 499), zip(distances, rows, strict=True), strict=True):
        found = index.query(md5s[query], k=12)
        assert [md5s[row] for row in expected_rows[1:]] == [neighbour.md5 for neighbour in found]
        np.testing.assert_allclose([neighbour.distance for neighbour in found], expected_d[1:], rtol=1e-4)


def test_the_query_is_left_out_and_k_larger_than_the_set_returns_every_other_row():
    md5s = ["a" * 32, "b" * 32, "c" * 32]
    index = SimilarIndex(md5s, np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]]))
    found = index.query("a" * 32, k=10)
    assert [neighbour.md5 for neighbour in found] == ["b" * 32, "c" * 32]
    with pytest.raises(KeyError):
        index.query("d" * 32)


def test_centre_order_puts_the_typical_rows_first():
    values = np.array([[0.0], [10.0], [1.0], [-1.0], [0.5]])
    index = SimilarIndex([f"{row:032x}" for row in range(5)], values)
    ordered, distances = index.centre_order([f"{row:032x}" for row in range(5)])
    # mean is 2.1; by hand: |1-2.1| < |0.5-2.1| < |0-2.1| < |-1-2.1| < |10-2.1|
    assert ordered == [f"{row:032x}" for row in (2, 4, 0, 3, 1)]
    assert np.all(np.diff(distances) >= 0)


def jpeg(width: int, height: int) -> bytes:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (height, width), dtype=np.uint8))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


def relief(width: int = 2048, height: int = 1536, seed: int = 0) -> np.ndarray:
    """An SEM-like frame: smooth relief (bicubic-enlarged random grid) with mild noise, 8-bit grey."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray((rng.random((height // 64 + 2, width // 64 + 2)) * 255).astype(np.uint8))
    smooth = np.asarray(coarse.resize((width + 128, height + 128), Image.Resampling.BICUBIC))[:height, :width]
    return np.clip(smooth * 0.7 + 40 + rng.normal(0, 6, (height, width)), 0, 255).astype(np.uint8)


def encoded(pixels: np.ndarray, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **options)
    return out.getvalue()


def grey(webp: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(webp)) as image:
        assert image.format == "WEBP"
        return np.asarray(image.convert("L"), dtype=float)


def test_thumbnails_keep_the_aspect_ratio_and_are_webp():
    with Image.open(io.BytesIO(thumbnail_bytes(jpeg(2048, 1536)))) as thumbnail:
        assert thumbnail.format == "WEBP" and thumbnail.size == (256, 192)
    with Image.open(io.BytesIO(thumbnail_bytes(jpeg(300, 1000)))) as thumbnail:
        assert thumbnail.size == (77, 256)


def test_a_jpeg_is_decoded_at_an_eighth_and_looks_like_pillows_full_decode_and_resize():
    data = encoded(relief(), "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as image:
        image.draft("L", (256, 192))
        assert image.size == (256, 192)  # libjpeg really scaled by 1/8 while decoding
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # Pillow's own full path: every pixel decoded, then one resize
        reference = np.asarray(image.resize((256, 192), Image.Resampling.LANCZOS), dtype=float)
    difference = np.abs(grey(thumbnail_bytes(data)) - reference)
    assert difference.mean() < 4  # grey levels: the DCT-domain 1/8 decode plus WebP at quality 70 (2.6 measured)
    assert np.percentile(difference, 99) < 15


def test_the_cache_reads_an_uncompressed_tiff_and_otherwise_the_jpg(tmp_path):
    bright, dark = np.full((480, 640), 230, np.uint8), np.full((480, 640), 20, np.uint8)
    cases = {  # what the TIFF is -> which file the thumbnail must come from
        "a" * 32: (encoded(bright, "TIFF"), "tif"),
        "b" * 32: (encoded(bright, "TIFF", compression="tiff_lzw"), "jpg"),
        "c" * 32: (encoded(np.dstack([bright] * 3), "TIFF"), "jpg"),  # colour: the JPG may differ from it
        "d" * 32: (b"II*\x00 not a tiff at all", "jpg"),
        "e" * 32: (None, "jpg"),  # a JPG-only image
        "f" * 32: (None, "jpg"),  # its TIFF a link to a's: never read
    }
    for md5, (tiff, _) in cases.items():
        (tmp_path / f"{md5}.jpg").write_bytes(encoded(dark, "JPEG", quality=95))
        if tiff is not None:
            (tmp_path / f"{md5}.tif").write_bytes(tiff)
    (tmp_path / f"{'f' * 32}.tif").symlink_to(tmp_path / f"{'a' * 32}.tif")
    cache = ThumbnailCache(tmp_path)
    for md5, (_, source) in cases.items():
        assert grey(cache.get(md5)).mean() == pytest.approx(230 if source == "tif" else 20, abs=3), md5


def test_a_thumbnail_from_the_tiff_looks_like_one_from_its_jpg(tmp_path):
    pixels = relief(1024, 768, seed=4)
    (tmp_path / f"{'a' * 32}.tif").write_bytes(encoded(pixels, "TIFF"))
    (tmp_path / f"{'a' * 32}.jpg").write_bytes(encoded(pixels, "JPEG", quality=95, subsampling=0))
    from_tiff = grey(ThumbnailCache(tmp_path).get("a" * 32))
    reference = np.asarray(Image.fromarray(pixels).resize((256, 192), Image.Resampling.LANCZOS), dtype=float)
    assert np.abs(from_tiff - reference).mean() < 4
    assert np.abs(from_tiff - grey(thumbnail_bytes(encoded(pixels, "JPEG", quality=95)))).mean() < 4


def test_thumbnails_are_cached_once_and_written_atomically(tmp_path):
    cache = ThumbnailCache(tmp_path)
    md5 = "0" * 32
    (tmp_path / f"{md5}.jpg").write_bytes(jpeg(640, 480))
    first = cache.get(md5)
    made = (tmp_path / "thumbs" / f"{md5}.webp").stat().st_mtime_ns
    (tmp_path / f"{md5}.jpg").write_bytes(encoded(np.zeros((480, 640), np.uint8), "JPEG"))  # never read again
    assert cache.get(md5) == first
    assert (tmp_path / "thumbs" / f"{md5}.webp").stat().st_mtime_ns == made
    assert sorted(os.listdir(tmp_path / "thumbs")) == [f"{md5}.webp"]  # no temporary file left
    with pytest.raises(ValueError):
        cache.path("../etc/passwd")
    with pytest.raises(FileNotFoundError):
        cache.get("1" * 32)


def test_a_symlink_is_never_read_as_a_store_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    (tmp_path / "link.jpg").symlink_to(secret)
    with pytest.raises(OSError):
        read_regular_file(tmp_path / "link.jpg")
    assert read_regular_file(secret) == b"not for the web"
