"""Reading whole scales: every vendor layout, small print, the printed field width, the trust order, bad input.

OCR runs for real (tesserocr, installed with the package); expectations come
from the generator's truth, from bars and labels drawn here with PIL, or from
the values the tests themselves wrote.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import tifffile
from conftest import FONTS, cap_font, convention_length, specimen
from PIL import Image, ImageDraw
from test_databar_geometry import harness_bar

from semcurate.datasets.databar import REFERENCE_WIDTH_MM, burn_data_bar, random_data_bar_spec
from semcurate.ingest.length_text import Length
from semcurate.ingest.ocr import OcrText, get_engine
from semcurate.ingest.scale_bar import (
    PrintedField,
    ScaleReading,
    combine,
    judge,
    read_bar,
    read_scale_bytes,
    reconcile,
)
from semcurate.ingest.vendor_metadata import MetadataScale

NM = {"nm": 1.0, "µm": 1e3, "mm": 1e6}


def outcome(reading: ScaleReading, value: float, unit: str, nm_per_px: float) -> str:
    if reading.status != "ok":
        return "abstained"
    label_right = reading.source != "ocr" or (reading.value, reading.unit) == (value, unit)
    return "right" if label_right and abs(reading.nm_per_px / nm_per_px - 1) <= 0.01 else "wrong"


def test_every_vendor_layout_reads_right_or_abstains(bars):
    engine = get_engine()
    results = Counter()
    for spec, image, truth in bars:
        nm_per_px = truth.value * NM[truth.unit] / convention_length(image, spec, truth)
        result = outcome(read_bar(image, engine), truth.value, truth.unit, nm_per_px)
        results[result] += 1
        assert result != "wrong", (spec.layout, spec.width, spec.font, truth.label_text)
    assert results["right"] >= 0.9 * len(bars), results


def test_stripe_box_is_reported_for_cropping(bars):
    _spec, image, truth = next(bar for bar in bars if bar[0].position != "overlay")
    assert read_bar(image, get_engine()).stripe_box == truth.stripe_box


def zeiss_like(label: str | None, font, *, dark: bool = False, bars=((12, 60),), fields=("EHT = 5.00 kV",)):
    """A 512x384 frame with a Zeiss-like stripe: ``label`` over the first bracket, ``bars`` as (x0, tick centres)."""
    image = specimen(np.random.default_rng(7), 384, 512)
    paper, ink = (0, 255) if dark else (255, 0)
    image[340:] = paper
    picture = Image.fromarray(image)
    pen = ImageDraw.Draw(picture)
    y = 362
    if label is not None:
        pen.text((bars[0][0] if bars else 12, 343), label, font=font, fill=ink)
        y = pen.textbbox((12, 343), label, font=font)[3] + 8
    for x0, centres in bars:  # 2-px ticks: centres `centres` px apart
        pen.rectangle((x0, y, x0 + centres + 1, y), fill=ink)
        pen.rectangle((x0, y - 4, x0 + 1, y + 4), fill=ink)
        pen.rectangle((x0 + centres, y - 4, x0 + centres + 1, y + 4), fill=ink)
    for row, text in enumerate(fields):
        pen.text((200, 346 + 18 * row), text, font=font, fill=ink)
    return np.asarray(picture)


@pytest.mark.parametrize("font", list(FONTS))
def test_small_print_is_read_in_the_instruments_fonts(font):
    """Labels of 7-12 px cap height (512-px frames), both polarities, µ included: all read, none wrong."""
    engine = get_engine()
    for cap in range(7, 13):
        for value, unit, dark in ((200, "nm", cap % 2 == 0), (500, "µm", cap % 2 == 1)):
            image = zeiss_like(f"{value} {unit}", cap_font(FONTS[font], cap), dark=dark)
            reading = read_bar(image, engine)
            assert (reading.status, reading.value, reading.unit) == ("ok", value, unit), (cap, dark, reading)
            assert reading.bar_px == pytest.approx(60, abs=0.1)


class ScriptedEngine:
    """An OCR engine that reads every crop as the same text (to drive the guards)."""

    def __init__(self, text: str):
        self.text = text

    def read_lines(self, crops, whitelist=None):
        return [OcrText(self.text, 90.0) for _ in crops]

    def read_line(self, crop, whitelist=None):
        return OcrText(self.text, 90.0)


def test_nm_read_as_mm_is_rejected_not_returned():
    image = zeiss_like("200 nm", cap_font(FONTS["DejaVu Sans"], 12), fields=())
    reading = read_bar(image, ScriptedEngine("200 mm"))
    assert reading.status == "unreadable" and "field width" in reading.reason


def test_field_width_range():
    one_um = Length(1.0, "µm")
    assert judge(1000.0 / 200, 1024, one_um, [])[0] is None  # 5 nm/px: 5.1 µm field
    assert "outside" in judge(1e6 * 20 / 200, 1024, Length(20, "mm"), [])[0]  # 100 mm field
    assert "outside" in judge(0.01, 1024, Length(2, "nm"), [])[0]  # 10 nm field


def test_unusual_values_need_corroboration():
    odd = Length(7.0, "µm")
    nm_per_px = 7000 / 200
    assert "not a usual" in judge(nm_per_px, 1024, odd, ["WD = 5.1 mm"])[0]
    hfw = f"HFW {nm_per_px * 1024 / 1000:.2f} µm"
    problem, evidence = judge(nm_per_px, 1024, odd, [hfw])
    assert problem is None and evidence[0].startswith("field width")
    for display_mm in (127, 207.2):  # the Polaroid's and Thermo Fisher's reference widths
        magnification = display_mm * 1e6 / (nm_per_px * 1024)
        problem, evidence = judge(nm_per_px, 1024, odd, [f"Mag = {magnification:.1f} x"])
        assert problem is None and evidence[0].startswith("magnification")
    assert "not a usual" in judge(nm_per_px, 1024, odd, [f"Mag = {280e6 / (nm_per_px * 1024):.1f} x"])[0]


def test_a_magnification_that_fits_another_display_does_not_vouch_for_a_misread_label():
    """JEOL's "100nm" over 45 px of 512 (Polaroid display, the generator's reference) read "160nm".

    160 nm over 45 px agrees with the magnification on Thermo Fisher's display (207.2 / 127 = 1.63, within 2 % of
    160 / 100); that coincidence must not make the unusual 160 acceptable, nor vouch for a usual 300 read for 500.
    """
    magnification = REFERENCE_WIDTH_MM["jeol"] * 1e6 / (100 / 45 * 512)  # 111,621 x, printed "X111,621"
    printed = [f"X{magnification:,.0f}"]
    assert "not a usual" in judge(160 / 45, 512, Length(160, "nm"), printed)[0]
    assert judge(100 / 45, 512, Length(100, "nm"), printed) == (None, ["magnification 111621× on the Polaroid display"])
    thermo = REFERENCE_WIDTH_MM["thermo_table"] * 1e6 / (500 / 60 * 1024)  # a Thermo stripe's 500 nm over 60 px
    assert judge(300 / 60, 1024, Length(300, "nm"), [f"{thermo:.0f} x"]) == (None, [])  # usual, but not vouched for


def test_a_label_a_digit_off_a_usual_value_is_refused_whatever_agrees_with_it():
    """At 7 px "500nm" over 106 px of 512 was read "506nm" and "200 nm" over 64 px "208 nm" (its Width too)."""
    hitachi = f"x{REFERENCE_WIDTH_MM['hitachi_ruler'] * 1e3 / (500 / 106 * 512):.1f}k"  # x52.6k on the Polaroid display
    problem, _ = judge(506 / 106, 512, Length(506, "nm"), [f"S-3400N 20.0kV {hitachi} SE(U)"])
    assert "506 nm is not a usual scale-bar value but 500 nm misread" in problem
    assert judge(500 / 106, 512, Length(500, "nm"), [f"S-3400N 20.0kV {hitachi} SE(U)"])[0] is None
    assert "but 200 nm misread" in judge(208 / 64, 512, Length(208, "nm"), ["Width = 1.666 um"])[0]
    # Far from any usual value, agreement still vouches for it: 7 µm beside its field width.
    assert judge(7000 / 200, 1024, Length(7, "µm"), ["HFW 35.84 µm"])[0] is None
    # "100nm" over 142 px read "166nm": x352k fits 166 nm on Thermo Fisher's display and 100 nm on the Polaroid.
    hitachi = f"x{REFERENCE_WIDTH_MM['hitachi_ruler'] * 1e3 / (100 / 142 * 512):.0f}k"
    assert "not a usual" in judge(166 / 142, 512, Length(166, "nm"), [f"S-4800 10.0kV {hitachi} BSE(U)"])[0]


@pytest.mark.parametrize(
    ("seed", "layout", "index", "small"),
    [
        (9, "hitachi_ruler", 5, True),
        (9, "hitachi_ruler", 7, True),
        (8, "jeol", 45, True),
        (11, "zeiss_plain", 10, True),
        (11, "jeol", 78, False),  # "50nm" read "5O0nm" beside "X377,000" read "K377,000"
    ],
)
def test_small_print_misreads_that_were_once_taken_now_abstain(seed, layout, index, small):
    """Bars whose 7-px labels Tesseract misreads ("506nm", "166nm", "160nm", "208 nm"): right or no reading."""
    _spec, image, truth = harness_bar(seed, layout, index, small=small)
    assert image.shape[1] == 512
    reading = read_bar(image, get_engine())
    assert reading.status != "ok" or reading.nm_per_px == pytest.approx(truth.nm_per_px, rel=0.01), reading


@pytest.mark.parametrize(
    ("seed", "layout", "index"),
    [
        (7, "thermo_table", 2),  # HFW "794 nm" read "734 nm" in every look; "261 000 x" over "HFW" says 794
        (7, "generic", 26),  # "4.491 µm" read "4491 um"; "28 277 x" on the Polaroid display says 4.49 µm
    ],
)
def test_tiny_printed_field_widths_misread_yield_to_bar_and_magnification(seed, layout, index):
    _spec, image, truth = harness_bar(seed, layout, index)
    reading = read_bar(image, get_engine())
    assert reading.status == "ok" and reading.nm_per_px == pytest.approx(truth.nm_per_px, rel=1e-6), reading


BAR = ScaleReading("ok", 1.0, "µm", 200.0, 5.0, "ocr", ocr_nm_per_px=5.0, label_text="1 µm")


def printed(value: float, unit: str) -> PrintedField:
    return PrintedField(Length(value, unit), ((0, 0, 10, 10),), f"HFW {value:g} {unit}")


def test_printed_field_width_corroborates_or_conflicts():
    agreeing = reconcile(BAR, printed(5.07, "µm"), 1024)  # 4.95 nm/px, 1.0 % from the bar's 5.0
    assert (agreeing.status, agreeing.nm_per_px, agreeing.source) == ("ok", 5.0, "ocr")
    assert agreeing.field_nm == pytest.approx(5070) and agreeing.field_nm_per_px == pytest.approx(5070 / 1024)
    assert agreeing.candidates == {"ocr": 5.0, "field": pytest.approx(5070 / 1024)}
    assert reconcile(BAR, printed(5.2, "µm"), 1024).status == "ok"  # 5.08 nm/px: 1.6 % apart, within 2 %
    conflict = reconcile(BAR, printed(5.3, "µm"), 1024)  # 5.18 nm/px: 3.5 % apart
    assert (conflict.status, conflict.nm_per_px, conflict.value) == ("conflict", None, None)
    assert conflict.candidates == {"ocr": 5.0, "field": pytest.approx(5300 / 1024)}
    assert "5 nm/px" in conflict.reason and "5.176 nm/px" in conflict.reason


def test_a_printed_field_width_that_the_magnification_contradicts_is_the_misread_one():
    """Bar 1 µm / 200 px = 5 nm/px on a 1024-px Thermo stripe (5.12 µm field); its HFW printed 5.12 µm read 5.62."""
    magnifications = {REFERENCE_WIDTH_MM["thermo_table"] * 1e6 / 5120}
    reading = reconcile(BAR, printed(5.62, "µm"), 1024, magnifications)
    assert (reading.status, reading.nm_per_px, reading.source, reading.field_nm) == ("ok", 5.0, "ocr", None)
    assert "misread" in reading.evidence[-1] and "5.488 nm/px" in reading.evidence[-1]
    assert reconcile(BAR, printed(5.62, "µm"), 1024).status == "conflict"  # no magnification: no way to tell
    # A printed field width that fits the magnification on another display keeps the conflict.
    other_display = REFERENCE_WIDTH_MM["jeol"] * 1e6 / next(iter(magnifications)) / 1e3  # 3.14 µm
    assert reconcile(BAR, printed(round(other_display, 2), "µm"), 1024, magnifications).status == "conflict"


def test_printed_field_width_stands_in_for_an_unreadable_bar():
    no_bar = ScaleReading("no_segment", stripe_box=(0, 700, 1024, 768), reason="no long horizontal marker")
    field = reconcile(no_bar, printed(2.98, "µm"), 1024)
    assert (field.status, field.source, field.value) == ("ok", "field", None)
    assert field.nm_per_px == pytest.approx(2980 / 1024) and "no_segment" in field.reason
    implausible = printed(298, "mm")  # "2.98 µm" misread: no SEM images a 298 mm field
    assert reconcile(no_bar, implausible, 1024) == no_bar
    assert reconcile(BAR, implausible, 1024) == BAR


def test_a_misread_label_is_taken_from_the_field_width_when_its_digits_agree():
    """Tescan's "10 µm" over 64 px read "19 pm"; "View field: 80.0 µm" read "80.9": 10 µm / 64 px = 156.25 nm/px."""
    misread = ScaleReading("unreadable", bar_px=64.0, stripe_box=(0, 347, 512, 384), label_text="19 pm")
    reading = reconcile(misread, printed(80.9, "µm"), 512)  # 158.0 nm/px, 1.1 % from 10 µm over 64 px
    assert (reading.status, reading.source, reading.value, reading.unit) == ("ok", "ocr", 10.0, "µm")
    assert reading.nm_per_px == pytest.approx(156.25) and "19 pm" in reading.evidence[0]
    # "2000m" shows four digits: not 200 nm, so the field width alone gives the scale
    other = reconcile(replace(misread, label_text="2000m", bar_px=59.0), printed(512, "nm"), 512)
    assert (other.source, other.nm_per_px) == ("field", pytest.approx(1.0))
    # a field width that puts 130 µm on the bar (not a value bars show) contradicts the bar: no reading
    conflict = reconcile(misread, printed(1.04, "mm"), 512)
    assert (conflict.status, conflict.nm_per_px) == ("conflict", None) and "not a value" in conflict.reason


def test_a_label_that_lost_its_decimal_point_contradicts_the_magnification():
    """Hitachi's "5.00um" read "500um" over 80 px of 512: a 3.2 mm field where x3.97k allows at most 75 µm."""
    problem, _ = judge(500_000 / 80, 512, Length(500, "µm"), ["S-4700 20.0kV 8.5mm x3.97k SE(U)"])
    assert "contradicts the magnification 3970" in problem
    assert judge(5000 / 80, 512, Length(5, "µm"), ["S-4700 20.0kV 8.5mm x3.97k SE(U)"])[0] is None
    # a magnification that lost a digit group ("100 x" for "26 100 x") never discredits a right label
    assert judge(5000 / 80, 512, Length(5, "µm"), ["mag 100 x"])[0] is None


def test_a_label_read_with_its_digits_but_not_its_unit_is_settled_by_the_magnification():
    """Demo JEOL bar, FreeSans 7 px: "100nm" over 35 px of 512 read "100mm" in four looks; "X86,800" printed.

    On the Polaroid display 86,800× puts 100.0 nm on the bar (on Thermo Fisher's, 163 nm: no usual value within
    3 %), and "100mm" shows 100's digits.
    """
    misread = ScaleReading("unreadable", bar_px=35.0, stripe_box=(0, 442, 512, 471), label_text="100mm")
    reading = reconcile(misread, None, 512, {86_800.0})
    assert (reading.status, reading.source, reading.value, reading.unit) == ("ok", "ocr", 100.0, "nm")
    assert reading.nm_per_px == pytest.approx(100 / 35) and "86800× on the Polaroid display" in reading.evidence[0]
    assert reconcile(misread, None, 512) == misread  # no magnification: nothing to settle it
    assert reconcile(replace(misread, label_text="400mm"), None, 512, {86_800.0}) == replace(
        misread, label_text="400mm"
    )  # another first digit: not 100 misread
    # A Zeiss display (281 mm) puts 226 nm on the bar: no usual value within 3 % on either known display.
    zeiss = 281e6 / (100 / 35 * 512)
    assert reconcile(misread, None, 512, {zeiss}) == misread


def test_a_label_and_a_field_width_both_misread_are_settled_by_the_magnification_they_point_to():
    """Demo Tescan bar, DejaVu Sans Mono 7 px: "20 µm" over 73 px of 512 read "28 um", "View field: 140 µm" read
    "146 pm" (4.1 % from 20 µm on the bar), "905 x" right: 140.3 µm on the Polaroid display, 20.0 µm on the bar."""
    misread = ScaleReading("unreadable", bar_px=73.0, stripe_box=(0, 428, 512, 471), label_text="28 um")
    reading = reconcile(misread, printed(146, "µm"), 512, {905.0})
    assert (reading.status, reading.value, reading.unit, reading.field_nm) == ("ok", 20.0, "µm", None)
    assert reading.nm_per_px == pytest.approx(20_000 / 73) and "misread, left out" in reading.evidence[-1]
    assert reconcile(misread, printed(146, "µm"), 512).status == "conflict"  # no magnification
    # a field width that puts another usual value nearest (28.5 µm on the bar: 30 µm, 5 % off) leaves the conflict
    assert reconcile(misread, printed(200, "µm"), 512, {905.0}).status == "conflict"


def test_only_a_magnification_two_looks_read_alike_contradicts_a_bar():
    """Demo Zeiss bar, DejaVu Sans Mono 8 px: "Mag = 1.97 K X" read "197 KX" in the first look of four."""
    asked = []

    def settled(value):
        def magnifications():
            asked.append(value)
            return value

        return magnifications

    ten_um = Length(10, "µm")
    first_look = ["Mag = 197 KX", "WD = 13.9 mm"]
    assert judge(10_000 / 36, 512, ten_um, first_look, settled({1970.0}))[0] is None
    contradicted, _evidence = judge(10_000 / 36, 512, ten_um, first_look, settled({197_000.0}))
    assert "contradicts the magnification 197000" in contradicted
    assert judge(10_000 / 36, 512, ten_um, first_look, settled(set()))[0] is None  # no two looks agree
    assert "contradicts" in judge(10_000 / 36, 512, ten_um, first_look)[0]  # without a second look, as before
    asked.clear()
    judge(10_000 / 36, 512, ten_um, ["Mag = 1.97 K X"], settled({1970.0}))
    assert asked == []  # read again only when the first look contradicts


def test_a_field_value_three_fixed_width_advances_right_of_its_name_is_its_value():
    """Demo Zeiss bar resized to 574 px, FreeMono 7 px: "Width = 3.471 µm", its "=" too faint to be a box."""
    from semcurate.ingest.scale_bar import _value_boxes

    name, value, unit, under = (80, 396, 120, 405), (149, 396, 187, 405), (198, 399, 213, 407), (80, 415, 95, 423)
    far = (170, 396, 200, 405)  # 50 px right of the name: 6.2 advances, 5.6 name heights
    assert _value_boxes(name, [name, value, unit, under], "Width") == [value, under]
    assert _value_boxes(name, [name, far], "Width") == []
    # a proportional "HFW" three heights wide keeps the reach of three heights
    assert _value_boxes((0, 0, 20, 10), [(49, 0, 80, 10), (51, 0, 80, 10)], "HFW") == [(49, 0, 80, 10)]


def test_metadata_is_trusted_first_and_pixels_are_kept():
    agreeing = combine(BAR, MetadataScale("fei", 5.04, None, None, "FEI Scan.PixelWidth"))  # 0.8 % apart
    assert (agreeing.source, agreeing.flagged, agreeing.value, agreeing.nm_per_px) == ("both", False, 1.0, 5.04)
    assert agreeing.disagreement == pytest.approx(0.008)
    assert agreeing.candidates == {"metadata": 5.04, "ocr": 5.0}
    disagreeing = combine(BAR, MetadataScale("zeiss", 5.08, None, None, "CZ_SEM ap_image_pixel_size"))  # 1.6 %
    assert (disagreeing.source, disagreeing.flagged, disagreeing.nm_per_px) == ("metadata", True, 5.08)
    assert disagreeing.value is None and disagreeing.ocr_nm_per_px == 5.0
    assert "5 nm/px" in disagreeing.reason and "5.08" in disagreeing.reason
    no_bar = combine(ScaleReading("no_stripe", reason="none"), MetadataScale("fei", 2.0, None, None, "x"))
    assert (no_bar.status, no_bar.source, no_bar.nm_per_px, no_bar.flagged) == ("ok", "metadata", 2.0, False)
    assert no_bar.candidates == {"metadata": 2.0}


def test_conflicting_pixels_under_metadata_are_flagged_with_every_value():
    conflict = reconcile(BAR, printed(5.3, "µm"), 1024)
    reading = combine(conflict, MetadataScale("fei", 5.0, None, None, "FEI Scan.PixelWidth"))
    assert (reading.status, reading.source, reading.nm_per_px, reading.flagged) == ("ok", "metadata", 5.0, True)
    assert set(reading.candidates) == {"metadata", "ocr", "field"}
    assert "printed field width" in reading.reason


def tiff_bytes(pixels: np.ndarray, extratags=()) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, extratags=list(extratags))
    return buffer.getvalue()


def test_file_with_fei_metadata_reads_from_both_sources():
    image = zeiss_like("200 nm", cap_font(FONTS["Liberation Sans"], 12))
    nm_per_px = 200 / 60 * 1.004  # the instrument's pixel size, 0.4 % from the bar's
    fei = f"[Scan]\r\nPixelWidth={nm_per_px * 1e-9!r}\r\nPixelHeight={nm_per_px * 1e-9!r}\r\n"
    data = tiff_bytes(image, [(34682, "s", 0, fei, True)])
    reading = read_scale_bytes(data, engine=get_engine())
    assert (reading.status, reading.source, reading.value, reading.unit) == ("ok", "both", 200, "nm")
    assert reading.nm_per_px == pytest.approx(nm_per_px, rel=1e-9)
    assert reading.ocr_nm_per_px == pytest.approx(200 / 60)
    metadata_only = read_scale_bytes(data, engine=None, source="metadata")
    assert (metadata_only.source, metadata_only.value) == ("metadata", None)
    assert read_scale_bytes(tiff_bytes(image), engine=None, source="metadata").status == "no_metadata"


def test_sixteen_bit_and_palette_tiffs_are_read():
    image = zeiss_like("500 µm", cap_font(FONTS["DejaVu Sans"], 10))
    sixteen = read_scale_bytes(tiff_bytes(image.astype(np.uint16) * 257), engine=get_engine())
    assert (sixteen.status, sixteen.value, sixteen.unit, sixteen.bar_px) == ("ok", 500, "µm", 60)
    buffer = io.BytesIO()
    Image.fromarray(image).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(buffer, format="TIFF")
    palette = read_scale_bytes(buffer.getvalue(), engine=get_engine())
    assert (palette.status, palette.value, palette.unit, palette.bar_px) == ("ok", 500, "µm", 60)


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
    spec = random_data_bar_spec(rng, 8192, 6144, layout="generic")
    return burn_data_bar(np.full((spec.specimen_height, 8192), 120, np.uint8), spec)[0]


FONT = cap_font(FONTS["DejaVu Sans"], 10)


@pytest.mark.parametrize(
    "data, statuses, reason",
    [
        (lambda: tiff_bytes(np.zeros((768, 1024), np.uint8)), {"no_stripe"}, ""),
        (lambda: tiff_bytes(np.full((768, 1024), 255, np.uint8)), {"no_stripe"}, ""),
        (lambda: jpeg(np.full((768, 1024), 128, np.uint8)), {"no_stripe"}, ""),
        (lambda: tiff_bytes(specimen(np.random.default_rng(1), 768, 1024)), {"no_stripe"}, ""),
        (lambda: tiff_bytes(stripe_without_text()), {"unreadable"}, "no text"),
        (lambda: tiff_bytes(zeiss_like("200 nm", FONT, bars=())), {"no_segment"}, "marker"),
        (lambda: tiff_bytes(zeiss_like(None, FONT)), {"unreadable"}, "next to the segment"),
        (lambda: tiff_bytes(zeiss_like("200 nm", FONT, bars=((12, 60), (110, 40)))), {"multiple_segments"}, "2 "),
        (lambda: tiff_bytes(zeiss_like("200 Å", FONT)), {"unreadable"}, "no length next to the segment"),
        (lambda: tiff_bytes(zeiss_like("200 nm", FONT, fields=("HFW 5.00 µm",))), {"conflict"}, "apart"),
        (lambda: tiff_bytes(np.ascontiguousarray(huge_with_bar()[::-1])), {"no_stripe"}, ""),
        (lambda: tiff_bytes(np.zeros((48, 64), np.uint8)), {"no_stripe"}, ""),
        (lambda: tiff_bytes(huge_with_bar()), {"ok", "unreadable", "conflict"}, ""),
        (lambda: b"", {"error"}, ""),
        (lambda: b"II*\x00garbage", {"error"}, ""),
    ],
    ids=[
        "black",
        "white",
        "grey jpeg",
        "no stripe",
        "stripe without text",
        "stripe with no bar",
        "bar with no label",
        "two bars",
        "unknown unit",
        "field width contradicting the bar",
        "stripe on top",
        "64x48",
        "8192x6144",
        "empty",
        "garbage",
    ],
)
def test_bad_input_gets_a_status_never_an_exception(data, statuses, reason):
    reading = read_scale_bytes(data(), engine=get_engine(), source="ocr")
    assert reading.status in statuses and (reading.status == "ok" or reason in reading.reason), reading
    assert reading.status == "ok" or reading.nm_per_px is None
