"""Reading whole scales: every layout and polarity, the plausibility guards, metadata, bad input.

OCR runs for real (tesserocr, installed with the package); expectations come
from the generator's truth or from the values the tests themselves wrote.
"""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
import tifffile
from conftest import specimen
from PIL import Image

from semcurate.datasets.databar import burn_data_bar, random_data_bar_spec
from semcurate.ingest.length_text import Length
from semcurate.ingest.ocr import OcrText, get_engine
from semcurate.ingest.scale_bar import ScaleReading, combine, judge, read_bar, read_scale_bytes
from semcurate.ingest.vendor_metadata import MetadataScale


def outcome(reading: ScaleReading, truth) -> str:
    if reading.status != "ok":
        return "abstained"
    right = reading.unit == truth.unit and reading.value == truth.value
    return "right" if right and abs(reading.nm_per_px / truth.nm_per_px - 1) <= 0.01 else "wrong"


def test_every_layout_and_polarity_reads_right_or_abstains(bars):
    engine = get_engine()
    results = Counter()
    for key, image, truth in bars:
        result = outcome(read_bar(image, engine), truth)
        results[result] += 1
        assert result != "wrong", key
    assert results["right"] >= 0.95 * len(bars), results


def test_stripe_box_is_reported_for_cropping(bars):
    _, image, truth = bars[0]
    assert read_bar(image, get_engine()).stripe_box == truth.stripe_box


class ScriptedEngine:
    """An OCR engine that reads every crop as the same text (to drive the guards)."""

    def __init__(self, text: str):
        self.text = text

    def read_lines(self, crops, whitelist=None):
        return [OcrText(self.text, 90.0) for _ in crops]

    def read_line(self, crop, whitelist=None):
        return OcrText(self.text, 90.0)


def test_nm_read_as_mm_is_rejected_not_returned(bars):
    key, image, truth = next(bar for bar in bars if bar[2].unit == "nm")
    reading = read_bar(image, ScriptedEngine(f"{truth.value} mm"))
    assert reading.status == "unreadable" and "field width" in reading.reason, key


def test_field_width_range_and_named_field_contradiction():
    one_um = Length(1.0, "µm")
    assert judge(1000.0 / 200, 1024, one_um, [], [])[0] is None  # 5 nm/px: 5.1 µm field
    assert "outside" in judge(1e6 * 20 / 200, 1024, Length(20, "mm"), [], [])[0]  # 100 mm field
    assert "outside" in judge(0.01, 1024, Length(2, "nm"), [], [])[0]  # 10 nm field
    problem, _ = judge(5.0, 1024, one_um, [], [Length(51.2, "µm")])  # HFW says 50 nm/px
    assert problem and "field width" in problem
    assert judge(5.0, 1024, one_um, [], [Length(5.12, "µm")])[0] is None


def test_unusual_values_need_corroboration():
    odd = Length(7.0, "µm")
    nm_per_px = 7000 / 200
    assert "not a usual" in judge(nm_per_px, 1024, odd, ["WD = 5.1 mm"], [])[0]
    hfw = f"HFW {nm_per_px * 1024 / 1000:.2f} µm"
    problem, evidence = judge(nm_per_px, 1024, odd, [hfw], [])
    assert problem is None and evidence[0].startswith("field width")
    magnification = 127e6 / (nm_per_px * 1024)
    problem, evidence = judge(nm_per_px, 1024, odd, [f"Mag = {magnification:.1f} x"], [])
    assert problem is None and evidence[0].startswith("magnification")


def test_metadata_agreement_and_flagged_disagreement():
    bar = ScaleReading("ok", 1.0, "µm", 200.0, 5.0, "ocr", ocr_nm_per_px=5.0)
    agreeing = combine(bar, MetadataScale("fei", 5.04, None, None, "FEI Scan.PixelWidth"))
    assert (agreeing.source, agreeing.flagged, agreeing.value) == ("both", False, 1.0)
    assert agreeing.disagreement == pytest.approx(0.008)
    disagreeing = combine(bar, MetadataScale("zeiss", 5.5, None, None, "CZ_SEM ap_image_pixel_size"))
    assert (disagreeing.source, disagreeing.flagged, disagreeing.nm_per_px) == ("metadata", True, 5.5)
    assert disagreeing.value is None and disagreeing.ocr_nm_per_px == 5.0 and "discarded" in disagreeing.reason
    no_bar = combine(ScaleReading("no_stripe", reason="none"), MetadataScale("fei", 2.0, None, None, "x"))
    assert (no_bar.status, no_bar.source, no_bar.nm_per_px) == ("ok", "metadata", 2.0)


def tiff_bytes(pixels: np.ndarray, extratags=()) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, extratags=list(extratags))
    return buffer.getvalue()


def test_file_with_fei_metadata_reads_from_both_sources(bars):
    _, image, truth = next(bar for bar in bars if bar[0][0] == "line")
    fei = f"[Scan]\r\nPixelWidth={truth.nm_per_px * 1e-9!r}\r\nPixelHeight={truth.nm_per_px * 1e-9!r}\r\n"
    reading = read_scale_bytes(tiff_bytes(image, [(34682, "s", 0, fei, True)]), engine=get_engine())
    assert (reading.status, reading.source, reading.value, reading.unit) == ("ok", "both", truth.value, truth.unit)
    assert reading.metadata_nm_per_px == pytest.approx(truth.nm_per_px)
    metadata_only = read_scale_bytes(tiff_bytes(image, [(34682, "s", 0, fei, True)]), engine=None, source="metadata")
    assert (metadata_only.source, metadata_only.value) == ("metadata", None)
    assert read_scale_bytes(tiff_bytes(image), engine=None, source="metadata").status == "no_metadata"


def test_sixteen_bit_tiff_is_read(bars):
    _, image, truth = next(bar for bar in bars if bar[0][0] == "bracket")
    reading = read_scale_bytes(tiff_bytes(image.astype(np.uint16) * 257), engine=get_engine())
    assert outcome(reading, truth) == "right"


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def stripe_without_text() -> np.ndarray:
    image = specimen(np.random.default_rng(3), 768, 1024)
    image[700:] = 30
    image[730:734, 100:300] = 220
    return image


def huge_with_bar() -> np.ndarray:
    rng = np.random.default_rng(8)
    spec = random_data_bar_spec(rng, 8192, 6144)
    while not spec.has_stripe:
        spec = random_data_bar_spec(rng, 8192, 6144)
    return burn_data_bar(np.full((spec.specimen_height, 8192), 120, np.uint8), spec)[0]


@pytest.mark.parametrize(
    "data, statuses",
    [
        (lambda: tiff_bytes(np.zeros((768, 1024), np.uint8)), {"no_stripe"}),
        (lambda: tiff_bytes(np.full((768, 1024), 255, np.uint8)), {"no_stripe"}),
        (lambda: jpeg(np.full((768, 1024), 128, np.uint8)), {"no_stripe"}),
        (lambda: tiff_bytes(specimen(np.random.default_rng(1), 768, 1024)), {"no_stripe"}),
        (lambda: tiff_bytes(stripe_without_text()), {"unreadable"}),
        (lambda: tiff_bytes(np.ascontiguousarray(huge_with_bar()[::-1])), {"no_stripe"}),
        (lambda: tiff_bytes(np.zeros((48, 64), np.uint8)), {"no_stripe"}),
        (lambda: tiff_bytes(huge_with_bar()), {"ok", "unreadable"}),
        (lambda: b"", {"error"}),
        (lambda: b"II*\x00garbage", {"error"}),
    ],
    ids=[
        "black",
        "white",
        "grey jpeg",
        "no stripe",
        "stripe without text",
        "stripe on top",
        "64x48",
        "8192x6144",
        "empty",
        "garbage",
    ],
)
def test_bad_input_gets_a_status_never_an_exception(data, statuses):
    reading = read_scale_bytes(data(), engine=get_engine())
    assert reading.status in statuses and (reading.status == "ok" or reading.reason)
