"""The burnt-in SEM data bar: vendor layouts, fonts, the measuring convention, fields consistent with the scale.

Every check reads the burned pixels or parses the printed text with its own
regular expressions; the numbers it compares against (reference display
widths, the thesis' scale counts, the 7-12 px print of a 512 px image) are
written here by hand.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from semcurate.datasets import databar
from semcurate.datasets.databar import (
    FONTS,
    LAYOUTS,
    MissingFontError,
    burn_data_bar,
    random_data_bar_spec,
)

UNIT_NM = {"mm": 1e6, "µm": 1e3, "um": 1e3, "nm": 1.0}
#: The layouts' magnification reference widths in mm, as the module docstring states them.
REFERENCE_MM = {"zeiss": 280.0, "thermo": 207.2, "polaroid": 127.0}
DRAWN_LAYOUTS = [layout for layout in LAYOUTS if layout != "none"]


def _specs(count: int, seed: int = 0, width: int = 1024, height: int = 768, layout: str | None = None):
    rng = np.random.default_rng(seed)
    return [random_data_bar_spec(rng, width, height, layout) for _ in range(count)]


def _burn(spec, fill: int = 128):
    specimen = np.full((spec.specimen_height, spec.width), fill, dtype=np.uint8)
    return burn_data_bar(specimen, spec)


def _stripe_ink(image: np.ndarray, stripe_box) -> tuple[np.ndarray, int]:
    """Ink of the stripe (pixels far from its most common grey) and that grey, from the pixels alone."""
    _x0, y0, _x1, y1 = stripe_box
    stripe = image[y0:y1].astype(int)
    background = int(np.bincount(stripe.ravel(), minlength=256).argmax())
    return np.abs(stripe - background) > 40, background


@pytest.fixture(scope="module")
def burned():
    """Four bars of every drawn layout at each of five widths, burned on a flat grey specimen."""
    rng = np.random.default_rng(20)
    bars = []
    for layout in DRAWN_LAYOUTS:
        for width in (512, 1024, 2048, 3072, 4096):
            for _ in range(4):
                spec = random_data_bar_spec(rng, width, round(width * rng.uniform(0.75, 0.94)), layout)
                bars.append((spec, *_burn(spec)))
    return bars


def test_every_layout_and_font_is_drawn():
    specs = _specs(600, seed=1)
    layouts = Counter(spec.layout for spec in specs)
    assert set(layouts) == set(LAYOUTS)
    assert 0.005 <= layouts["none"] / len(specs) <= 0.07
    assert set(spec.font for spec in specs) <= set(FONTS)
    fonts = Counter(spec.font for spec in specs)
    assert {"DejaVu Sans", "DejaVu Sans Mono", "Liberation Sans", "Liberation Mono", "FreeSans", "FreeMono"} <= set(
        fonts
    )
    assert min(fonts.values()) >= 30
    assert all(spec.layout == "tescan" for spec in _specs(5, layout="tescan"))


def test_scale_frequencies_follow_the_table():
    specs = _specs(3000, seed=2)
    # Thesis Table 2.4 counts 30,107 images at 1 µm and 22,575 at 2 µm of 164,663 (with the added 1-2-5 values).
    micro = sum(1 for s in specs if s.scale_unit == "µm" and s.scale_value in (1, 2))
    assert 0.27 <= micro / len(specs) <= 0.37
    drawn = {(s.scale_value, s.scale_unit) for s in specs}
    assert {(200, "nm"), (500, "µm"), (5, "µm"), (2.5, "µm")} <= drawn
    micrometre = [s for s in specs if s.scale_unit == "µm" and s.layout != "hitachi_ruler"]
    assert 0.20 <= sum(s.micro_text == "um" for s in micrometre) / len(micrometre) <= 0.30
    assert all(s.label_text.endswith(("um", "nm", "mm")) for s in specs if s.layout == "hitachi_ruler")


def test_label_states_the_scale_value_and_unit():
    for spec in _specs(300, seed=3):
        number, unit = re.fullmatch(r"([\d.]+) ?(mm|µm|um|nm)", spec.label_text).groups()
        assert float(number) == spec.scale_value
        assert UNIT_NM[unit] == {"mm": 1e6, "µm": 1e3, "nm": 1.0}[spec.scale_unit]


def test_all_ink_lies_in_the_truth_boxes_and_each_box_holds_ink(burned):
    for spec, image, truth in burned:
        ink, _background = _stripe_ink(image, truth.stripe_box)
        y0 = truth.stripe_box[1]
        covered = np.zeros_like(ink)
        for x0, top, x1, bottom in (truth.label_box, truth.segment_box, *truth.other_boxes):
            assert 0 <= x0 < x1 <= spec.width and y0 <= top < bottom <= truth.stripe_box[3], (spec.layout, spec.width)
            covered[top - y0 : bottom - y0, x0:x1] = True
        assert not (ink & ~covered).any(), (spec.layout, spec.width, np.argwhere(ink & ~covered)[:3])
        for x0, top, x1, bottom in (truth.label_box, truth.segment_box):
            assert ink[top - y0 : bottom - y0, x0:x1].any(), (spec.layout, spec.width)
        if truth.field_box is not None:
            x0, top, x1, bottom = truth.field_box
            assert ink[top - y0 : bottom - y0, x0:x1].any()


def _runs(columns: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` of each run of consecutive column indices."""
    runs, start = [], None
    for index, column in enumerate(columns):
        if start is None:
            start = column
        if index + 1 == len(columns) or columns[index + 1] != column + 1:
            runs.append((int(start), int(column)))
            start = None
    return runs


def test_segment_follows_the_measuring_convention(burned):
    """Tick centres for brackets and rulers, cap centres for capped lines, outer edges for filled bars, end to end
    for plain lines: read from pixels."""
    styles = Counter()
    for spec, image, truth in burned:
        ink, _background = _stripe_ink(image, truth.stripe_box)
        y0 = truth.stripe_box[1]
        x0, top, x1, bottom = truth.segment_box
        box = ink[top - y0 : bottom - y0, x0:x1].copy()
        if truth.label_position == "inside":  # blank the label, which sits inside the bar
            lx0, ly0, lx1, ly1 = truth.label_box
            box[max(0, ly0 - top) : ly1 - top, max(0, lx0 - x0) : lx1 - x0] = False
        heights = box.sum(axis=0)
        inked = np.flatnonzero(heights) + x0
        start, end, _row = truth.segment
        assert end - start == truth.bar_px
        stroke = heights[heights > 0].min()  # a stroke column: only the horizontal line
        capped = truth.style == "line" and (heights > stroke).any()  # Helios: a cap one column in from each end
        if truth.style in ("bracket", "ruler") or capped:
            ticks = _runs(np.flatnonzero(heights > stroke) + x0)
            first_centre = (ticks[0][0] + ticks[0][1] + 1) / 2
            last_centre = (ticks[-1][0] + ticks[-1][1] + 1) / 2
            assert (first_centre, last_centre) == (start, end), (spec.layout, truth.style, spec.width)
            if spec.layout == "hitachi_ruler":
                assert len(ticks) in (10, 11)
            if capped:
                styles["capped line"] += 1
                assert len(ticks) == 2 and ticks[0][0] > x0 and ticks[-1][1] + 1 < x1
        else:
            assert (inked[0], inked[-1] + 1) == (start, end), (spec.layout, truth.style, spec.width)
        assert (inked[0], inked[-1] + 1) == (x0, x1)
        styles[spec.layout, truth.style, truth.label_position] += 1
    assert styles.pop("capped line") > 0
    assert {key[1] for key in styles} == {"line", "bracket", "rectangle", "ruler"}
    assert ("thermo_table", "line", "inside") in styles and ("jeol", "bracket", "left") in styles
    assert ("zeiss_framed", "bracket", "above") in styles and ("hitachi_ruler", "ruler", "right") in styles


def test_vendor_layouts_draw_their_vendors_bars(burned):
    expected = {
        "zeiss_framed": {("bracket", "above")},
        "zeiss_plain": {("bracket", "above")},
        "thermo_table": {("line", "inside"), ("rectangle", "above")},
        "jeol": {("bracket", "left")},
        "hitachi_ruler": {("ruler", "right")},
        "tescan": {("rectangle", "right"), ("rectangle", "left")},
    }
    for spec, image, truth in burned:
        if spec.layout in expected:
            assert (truth.style, truth.label_position) in expected[spec.layout], spec.layout
            _ink, background = _stripe_ink(image, truth.stripe_box)
            dark_stripe = spec.layout in ("thermo_table", "jeol") or (
                spec.layout == "hitachi_ruler" and background < 128
            )
            assert (background < 128) == dark_stripe, spec.layout
        label_x0, _y, label_x1, _y1 = truth.label_box
        if truth.label_position == "left":
            assert label_x1 <= truth.segment_box[0]
        elif truth.label_position == "right":
            assert label_x0 >= truth.segment_box[2]
        elif truth.label_position == "inside":
            assert truth.segment_box[0] < label_x0 and label_x1 < truth.segment_box[2]


def _length_nm(text: str) -> float:
    number, unit = re.search(r"([\d.]+) ?(mm|µm|um|nm)$", text).groups()
    return float(number) * UNIT_NM[unit]


def _magnification(text: str) -> tuple[float, str] | None:
    """``(magnification, reference)`` printed in a field cell, or None."""
    patterns = (
        (r"Mag = ([\d.]+) ([KM]) X", "zeiss", lambda m: float(m[1]) * {"K": 1e3, "M": 1e6}[m[2]]),
        (r"Mag = (\d+) X", "zeiss", lambda m: float(m[1])),
        (r"(\d{1,3}(?: \d{3})*) x", "thermo", lambda m: float(m[1].replace(" ", ""))),
        (r"X(\d{1,3}(?:,\d{3})*)", "polaroid", lambda m: float(m[1].replace(",", ""))),
        (r"x([\d.]+)(k?)", "polaroid", lambda m: float(m[1]) * (1e3 if m[2] else 1)),
        (r"SEM MAG: ([\d.]+) (kx|x)", "polaroid", lambda m: float(m[1]) * (1e3 if m[2] == "kx" else 1)),
    )
    for pattern, reference, value in patterns:
        match = re.fullmatch(pattern, text)
        if match:
            return value(match), reference
    return None


def test_printed_field_width_and_magnification_agree_with_the_scale():
    checked = Counter()
    rng = np.random.default_rng(5)
    for layout in ("zeiss_framed", "zeiss_plain", "thermo_table", "jeol", "hitachi_ruler", "tescan"):
        for _ in range(40):
            spec = random_data_bar_spec(rng, 1024, 768, layout)
            field_nm = spec.width * spec.nm_per_px
            if spec.field_text:
                assert _length_nm(spec.field_text) == pytest.approx(field_nm, rel=5.01e-3), spec.field_text
                assert spec.field_nm == pytest.approx(_length_nm(spec.field_text), rel=1e-12)
                assert spec.field_text in {cell.text for cell in spec.field_cells}
                checked[layout, "field"] += 1
            else:
                assert spec.field_nm is None
            for cell in spec.field_cells:
                for part in cell.text.split(" ") if layout == "hitachi_ruler" else [cell.text]:
                    found = _magnification(part)
                    if found:
                        magnification, reference = found
                        expected_reference = {"zeiss_framed": "zeiss", "zeiss_plain": "zeiss"}.get(
                            layout, "thermo" if layout == "thermo_table" else "polaroid"
                        )
                        assert reference == expected_reference, (layout, part)
                        # 3 significant digits, and never a fraction where the vendor prints an integer ("16 X")
                        expected = REFERENCE_MM[reference] * 1e6 / field_nm
                        assert magnification == pytest.approx(expected, rel=5.01e-3, abs=0.5), (layout, part)
                        checked[layout, "mag"] += 1
    for layout in ("zeiss_framed", "zeiss_plain", "thermo_table", "tescan"):
        assert checked[layout, "field"] >= 15, checked
    for layout in ("zeiss_framed", "thermo_table", "jeol", "hitachi_ruler", "tescan"):
        assert checked[layout, "mag"] >= 15, checked


def test_sizes_scale_with_the_image(burned):
    for spec, image, truth in burned:
        _x0, y0, _x1, y1 = truth.stripe_box
        assert 0.049 <= (y1 - y0) / image.shape[0] <= 0.152, (spec.layout, spec.width)  # 5-15 %, rounded to px
    # A 512 px image prints 7-12 px capitals: measured on the label's digits (no descender in "nm"/"mm" labels).
    heights = []
    for spec in _specs(150, seed=6, width=512, height=384):
        if spec.has_stripe and re.fullmatch(r"[\d.]+ ?[nm]m", spec.label_text):
            _image, truth = _burn(spec)
            heights.append(truth.label_box[3] - truth.label_box[1])
    assert len(heights) > 30 and 6 <= min(heights) and max(heights) <= 13
    assert np.median(heights) >= 8


def test_overlay_puts_the_stripe_under_a_flat_picture():
    overlays = [spec for spec in _specs(600, seed=7, width=256, height=200) if spec.position == "overlay"]
    assert 10 <= len(overlays) <= 60
    rng = np.random.default_rng(0)
    for spec in overlays:
        specimen = rng.integers(0, 256, (spec.specimen_height, spec.width), dtype=np.uint8)
        image, truth = burn_data_bar(specimen, spec)
        top = truth.stripe_box[1]
        flat = image[top - spec.flat_rows : top]
        assert spec.flat_rows >= 1 and (flat == flat[0, 0]).all()
        assert np.array_equal(image[: top - spec.flat_rows], specimen[: top - spec.flat_rows])
        _ink, background = _stripe_ink(image, truth.stripe_box)
        if abs(int(flat[0, 0]) - background) < 40:  # a flat picture as grey as the stripe: a line marks the edge
            assert (np.abs(image[top].astype(int) - background) > 40).mean() > 0.9, spec.layout
    assert {spec.flat_grey < 16 for spec in overlays} == {True, False}


def test_no_stripe_returns_the_specimen_unchanged():
    spec = next(s for s in _specs(400, seed=8, width=256, height=200) if not s.has_stripe)
    specimen = np.random.default_rng(0).integers(0, 256, (spec.specimen_height, spec.width), dtype=np.uint8)
    image, truth = burn_data_bar(specimen, spec)
    assert image is specimen and spec.specimen_height == spec.height and spec.layout == "none"
    assert not truth.has_stripe and truth.nm_per_px == spec.nm_per_px and truth.segment is None


def test_micro_sign_is_drawn_and_differs_from_u():
    spec = next(
        s
        for s in _specs(300, seed=9, layout="zeiss_plain")
        if s.scale_unit == "µm" and s.micro_text == "µm" and s.font == "DejaVu Sans"
    )
    image, truth = _burn(spec)
    x0, y0, x1, y1 = truth.label_box
    text_mask = np.abs(image[y0:y1, x0:x1].astype(int) - spec.stripe_grey) > 60
    # the µ descender reaches below the digits' baseline: the lowest ink rows hold only the stem
    lowest = np.flatnonzero(text_mask.any(axis=1))[-1]
    assert text_mask[lowest].sum() <= max(3, spec.font_size // 5)


def test_same_rng_same_bar():
    a, b = _specs(30, seed=10), _specs(30, seed=10)
    assert a == b
    assert all(np.array_equal(_burn(x)[0], _burn(y)[0]) for x, y in zip(a, b, strict=True))
    assert _specs(30, seed=11) != a


def test_tiny_and_huge_images_still_fit():
    for width, height in ((64, 48), (100, 80), (8192, 6144)):
        for layout in DRAWN_LAYOUTS:
            spec = random_data_bar_spec(np.random.default_rng(width), width, height, layout)
            assert 0 <= spec.bar.x0 < spec.bar.x1 <= width and spec.bar_px >= 16


def test_bad_requests_are_refused_with_a_reason():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 64 x 48"):
        random_data_bar_spec(rng, 40, 30)
    with pytest.raises(ValueError, match="unknown layout 'leica'"):
        random_data_bar_spec(rng, 1024, 768, "leica")
    spec = random_data_bar_spec(rng, 1024, 768, "jeol")
    with pytest.raises(ValueError, match="specimen must be uint8"):
        burn_data_bar(np.zeros((10, 10), np.uint8), spec)


@pytest.fixture
def font_dirs(monkeypatch, tmp_path):
    """Point the font lookup at ``tmp_path`` (empty until a test links fonts there), with fresh caches."""
    monkeypatch.setattr(databar, "FONT_DIRS", (tmp_path,))
    for cached in (databar.font_file, databar.drawn_font):
        cached.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    for cached in (databar.font_file, databar.drawn_font):
        cached.cache_clear()


def test_a_missing_font_names_its_debian_package(font_dirs):
    with pytest.raises(MissingFontError) as raised:
        databar.require_fonts()
    message = str(raised.value)
    assert "\n" not in message and "fonts-dejavu-core" in message and "apt-get install" in message


def test_liberation_sans_narrow_falls_back_when_absent(font_dirs):
    for name, (folder, file_name, _package) in FONTS.items():
        if name != "Liberation Sans Narrow":
            (font_dirs / folder).mkdir(exist_ok=True)
            (font_dirs / folder / file_name).symlink_to(f"/usr/share/fonts/truetype/{folder}/{file_name}")
    databar.require_fonts()
    assert databar.drawn_font("Liberation Sans Narrow") == "Liberation Sans"
    assert databar.drawn_font("FreeMono") == "FreeMono"


def test_drawn_scales_keep_the_field_within_what_an_sem_images(monkeypatch):
    """With 1 nm drawn half of the time, no bar makes a field under 50 nm (a 1 nm bar on 100 px of 2048 is 20 nm)."""
    weights = np.array([1.0 if (value, unit) == (1, "nm") else 0.01 for value, unit, _weight in databar.SCALE_CHOICES])
    weights[[value for value, unit, _ in databar.SCALE_CHOICES].index(1)] = 1.0  # 1 mm as well: fields up to 10 mm
    monkeypatch.setattr(databar, "_SCALE_CUMULATIVE", np.cumsum(weights) / weights.sum())
    fields_nm, scales = [], Counter()
    for seed in range(60):
        rng = np.random.default_rng(seed)
        for width, height in ((512, 384), (2048, 1768), (4096, 3072)):
            spec = databar.random_data_bar_spec(rng, width, height, "generic")
            fields_nm.append(spec.width * spec.nm_per_px)
            scales[spec.scale_value, spec.scale_unit] += 1
    assert 50.0 <= min(fields_nm) and max(fields_nm) <= 30e6
    assert scales[1, "nm"] == 0 and scales[1, "mm"] > 0  # 1 nm never fits; 1 mm does
