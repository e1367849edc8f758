"""Pixel size from Zeiss (tag 34118) and FEI (tags 34680/34682) TIFF metadata.

Every expected value is written by hand from the text the test put into the
TIFF, never computed by the code under test.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from semcurate.datasets.demo_corpus import GROUND_TRUTH_FILE, make_sem_corpus
from semcurate.ingest.vendor_metadata import (
    DISAGREEMENT_THRESHOLD,
    MetadataScale,
    disagreement,
    read_metadata_scale,
)

ZEISS_NM = (
    "0\r\n0\r\nAP_IMAGE_PIXEL_SIZE\r\nImage Pixel Size = 4.65 nm\r\n"
    "AP_WIDTH\r\nWidth = 2.976 \xb5m\r\nAP_MAG\r\nMag = 25.00 K X\r\nEND\r\n"
)
FEI_SCAN = "[Scan]\r\nPixelWidth=4.65e-09\r\nPixelHeight=4.65e-09\r\nHorFieldsize=4.76e-06\r\n"


def _tiff(zeiss: str | None = None, fei: str | None = None, fei_tag: int = 34682, width: int = 64) -> bytes:
    """A small 8-bit TIFF, ``width`` px wide, carrying the given vendor texts (latin-1 bytes, so that µ survives)."""
    extratags = []
    if zeiss is not None:
        extratags.append((34118, "s", 0, zeiss.encode("latin-1"), True))
    if fei is not None:
        extratags.append((fei_tag, "s", 0, fei.encode("latin-1"), True))
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((48, width), np.uint8), photometric="minisblack", extratags=extratags)
    return buffer.getvalue()


def _zeiss(pixel_line: str, key: str = "AP_IMAGE_PIXEL_SIZE") -> str:
    return f"0\r\n0\r\n{key}\r\n{pixel_line}\r\nEND\r\n"


def test_zeiss_nanometres_with_width_and_magnification():
    assert read_metadata_scale(_tiff(zeiss=ZEISS_NM)) == MetadataScale(
        vendor="zeiss",
        nm_per_px=4.65,
        hfw_nm=pytest.approx(2976.0),
        magnification=25000.0,
        detail="CZ_SEM ap_image_pixel_size = 4.65 nm",
    )


@pytest.mark.parametrize(
    ("line", "expected_nm"),
    [
        ("Image Pixel Size = 1.2 \xb5m", 1200.0),  # latin-1 MICRO SIGN
        ("Image Pixel Size = 1.2 um", 1200.0),
        ("Image Pixel Size = 0.5 mm", 500_000.0),
        ("Image Pixel Size = 465 pm", 0.465),
        ("Image Pixel Size = 3 nm", 3.0),
    ],
)
def test_zeiss_units(line, expected_nm):
    scale = read_metadata_scale(_tiff(zeiss=_zeiss(line)))
    assert scale is not None and scale.vendor == "zeiss"
    assert scale.nm_per_px == pytest.approx(expected_nm, rel=1e-12)
    assert scale.hfw_nm is None and scale.magnification is None


def test_zeiss_falls_back_to_ap_pixel_size_of_a_1024_px_frame():
    """SmartSEM's ``Pixel Size`` is for a 1024-px-wide frame: 7.5 nm there is 15 nm on a 512-px image."""
    text = _zeiss("Pixel Size = 7.5 nm", key="AP_PIXEL_SIZE")
    at_1024 = read_metadata_scale(_tiff(zeiss=text, width=1024))
    assert (at_1024.nm_per_px, at_1024.detail) == (
        7.5,
        "CZ_SEM ap_pixel_size = 7.5 nm for 1024 px, the image 1024 px wide",
    )
    assert read_metadata_scale(_tiff(zeiss=text, width=512)).nm_per_px == 15.0
    assert read_metadata_scale(_tiff(zeiss=text, width=2048)).nm_per_px == 3.75


def test_zeiss_without_a_pixel_size_uses_its_width():
    scale = read_metadata_scale(_tiff(zeiss="0\r\n0\r\nAP_WIDTH\r\nWidth = 5.12 \xb5m\r\nEND\r\n", width=512))
    assert scale.nm_per_px == pytest.approx(10.0, rel=1e-12) and scale.hfw_nm == pytest.approx(5120.0)


def test_zeiss_plain_magnification():
    text = _zeiss("Image Pixel Size = 2 nm") + "AP_MAG\r\nMag = 500 X\r\n"
    assert read_metadata_scale(_tiff(zeiss=text)).magnification == 500.0


def test_fei_scan_section():
    scale = read_metadata_scale(_tiff(fei=FEI_SCAN))
    assert scale is not None
    assert scale.vendor == "fei"
    assert scale.nm_per_px == pytest.approx(4.65, rel=1e-12)
    assert scale.hfw_nm == pytest.approx(4760.0, rel=1e-12)
    assert scale.magnification is None
    assert scale.detail == "FEI [Scan] PixelWidth = 4.65e-09 m"


def test_fei_escan_fallback_and_sfeg_tag():
    text = "[Beam]\r\nHV=5000\r\n[EScan]\r\nPixelWidth=2.5e-10\r\nHorFieldsize=2.56e-07\r\n"
    scale = read_metadata_scale(_tiff(fei=text, fei_tag=34680))
    assert scale is not None and scale.vendor == "fei"
    assert scale.nm_per_px == pytest.approx(0.25, rel=1e-12)
    assert scale.hfw_nm == pytest.approx(256.0, rel=1e-12)
    assert scale.detail.startswith("FEI [EScan] PixelWidth")


def test_zeiss_preferred_over_fei():
    scale = read_metadata_scale(_tiff(zeiss=_zeiss("Image Pixel Size = 9 nm"), fei=FEI_SCAN))
    assert scale.vendor == "zeiss" and scale.nm_per_px == 9.0


def test_unusable_zeiss_falls_through_to_fei():
    scale = read_metadata_scale(_tiff(zeiss=_zeiss("Image Pixel Size = n/a"), fei=FEI_SCAN))
    assert scale.vendor == "fei"


@pytest.mark.parametrize(
    ("zeiss", "fei"),
    [
        (None, None),
        (_zeiss("Image Pixel Size = 0 nm"), None),
        (_zeiss("Image Pixel Size = -4 nm"), None),
        (_zeiss("Image Pixel Size = 4 furlongs"), None),
        (_zeiss("Image Pixel Size = unknown"), None),
        ("just some text\r\n", None),
        (None, "[Scan]\r\nPixelWidth=0\r\n"),
        (None, "[Scan]\r\nPixelWidth=nan\r\n"),
        (None, "[Scan]\r\nPixelWidth=inf\r\n"),
        (None, "[Scan]\r\nPixelWidth=wide\r\n"),
        (None, "[Beam]\r\nHV=5000\r\n"),
    ],
)
def test_missing_or_unusable_metadata_gives_none(zeiss, fei):
    assert read_metadata_scale(_tiff(zeiss=zeiss, fei=fei)) is None


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((48, 64), np.uint8), mode="L").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage, not a TIFF at all",
        b"II*\x00",
        b"II*\x00\xff\xff\xff\x7f",  # first IFD offset far past the end
        b"MM\x00*" + bytes(100),
        _jpeg(),
        _tiff(zeiss=ZEISS_NM)[:100],  # cut inside the IFD
        _tiff(fei=FEI_SCAN)[:8],  # header only
    ],
    ids=["empty", "garbage", "short-header", "bad-offset", "zero-ifd", "jpeg", "truncated-ifd", "header-only"],
)
def test_bad_data_gives_none(data):
    assert read_metadata_scale(data) is None


def test_randomly_corrupted_tiffs_never_raise():
    rng = np.random.default_rng(0)
    good = _tiff(zeiss=ZEISS_NM, fei=FEI_SCAN)
    for _ in range(300):
        data = bytearray(good[: int(rng.integers(8, len(good) + 1))])
        for position in rng.integers(0, min(len(data), 400), size=int(rng.integers(1, 6))):
            data[position] = int(rng.integers(0, 256))
        result = read_metadata_scale(bytes(data))
        assert result is None or isinstance(result, MetadataScale)


def test_path_bytes_and_file_agree(tmp_path):
    data = _tiff(zeiss=ZEISS_NM)
    path = tmp_path / "zeiss.tif"
    path.write_bytes(data)
    from_bytes = read_metadata_scale(data)
    assert from_bytes is not None
    assert read_metadata_scale(path) == from_bytes
    assert read_metadata_scale(str(path)) == from_bytes
    with path.open("rb") as handle:
        assert read_metadata_scale(handle) == from_bytes


def test_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_metadata_scale(tmp_path / "absent.tif")


def test_demo_corpus_tiffs_read_back_their_pixel_size(tmp_path):
    make_sem_corpus(tmp_path, 20, seed=3, workers=1, size_scale=0.25)
    with (tmp_path / GROUND_TRUTH_FILE).open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["format"] == "TIFF" and row["kind"] != "corrupt"]
    tagged = {"fei": 0, "zeiss": 0}
    for row in rows:
        vendor = next((name for name in tagged if row.get(f"{name}_metadata") == "true"), None)
        scale = read_metadata_scale(tmp_path / row["path"])
        if vendor is None:
            assert scale is None, row["path"]
            continue
        tagged[vendor] += 1
        assert scale is not None and scale.vendor == vendor, row["path"]
        assert scale.nm_per_px == pytest.approx(float(row["nm_per_px"]), rel=1e-6), row["path"]
    assert tagged["fei"], "the corpus should hold FEI-tagged TIFFs"


@pytest.mark.parametrize(
    ("a", "b", "expected", "flagged"),
    [
        (1.00, 1.00, 0.0, False),
        (1.008, 1.00, 0.008, False),  # 0.8 %
        (1.00, 1.008, 0.008, False),  # symmetric
        (1.015, 1.00, 0.015, True),  # 1.5 %
        (1.00, 1.015, 0.015, True),
        (2.0, 1.0, 1.0, True),
        (1.0, 2.0, 1.0, True),
    ],
)
def test_disagreement_table(a, b, expected, flagged):
    assert disagreement(a, b) == pytest.approx(expected)
    assert (disagreement(a, b) > DISAGREEMENT_THRESHOLD) is flagged


def test_threshold_is_one_percent():
    assert DISAGREEMENT_THRESHOLD == 0.01


@pytest.mark.parametrize(("a", "b"), [(0.0, 1.0), (1.0, -1.0)])
def test_disagreement_rejects_non_positive(a, b):
    with pytest.raises(ValueError):
        disagreement(a, b)
