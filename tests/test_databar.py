"""The burnt-in SEM data bar: geometry, consistency of the fields, scale frequencies."""

from __future__ import annotations

import re

import numpy as np
import pytest

from semcurate.datasets.databar import (
    NM_PER_UNIT,
    SCALE_CHOICES,
    burn_data_bar,
    random_data_bar_spec,
)

UNIT_NM = {"mm": 1e6, "µm": 1e3, "um": 1e3, "nm": 1.0}


def _specs(count: int, seed: int = 0, width: int = 1024, height: int = 768):
    rng = np.random.default_rng(seed)
    return [random_data_bar_spec(rng, width, height) for _ in range(count)]


def _burn(spec, fill: int = 128):
    specimen = np.full((spec.specimen_height, spec.width), fill, dtype=np.uint8)
    return burn_data_bar(specimen, spec)


def test_scale_frequencies_follow_table_2_4():
    rng = np.random.default_rng(1)
    specs = [random_data_bar_spec(rng, 1024, 768) for _ in range(20_000)]
    micro = sum(1 for s in specs if s.scale_unit == "µm" and s.scale_value in (1, 2))
    assert 0.33 <= micro / len(specs) <= 0.41
    assert len(SCALE_CHOICES) == 19
    drawn = {(s.scale_value, s.scale_unit) for s in specs}
    assert (200, "nm") in drawn and (1, "mm") in drawn
    assert 0.01 <= sum(not s.has_stripe for s in specs) / len(specs) <= 0.05
    micrometre_bars = [s for s in specs if s.scale_unit == "µm"]
    assert 0.20 <= sum(s.micro_text == "um" for s in micrometre_bars) / len(micrometre_bars) <= 0.30


def test_bar_length_times_pixel_size_is_the_value_and_segment_is_plausible():
    for spec in _specs(300):
        assert spec.bar_px * spec.nm_per_px == pytest.approx(spec.scale_value * NM_PER_UNIT[spec.scale_unit], rel=1e-12)
        assert 0.08 * spec.width - 1 <= spec.bar_px <= 0.35 * spec.width + 1


def test_segment_is_exactly_bar_px_long_for_every_style():
    seen = set()
    for spec in _specs(200, seed=2):
        if not spec.has_stripe:
            continue
        image, truth = _burn(spec)
        x0, x1, y = truth.segment
        assert x1 - x0 == spec.bar_px
        row = image[y]
        ink = row == spec.text_grey
        assert ink[x0:x1].all(), spec.segment_style
        assert not ink[x0 - 1] and not ink[x1], spec.segment_style
        seen.add(spec.segment_style)
    assert seen == {"line", "bracket", "rectangle", "ruler"}


def test_stripe_box_and_label_box_lie_where_drawn():
    for spec in _specs(100, seed=3):
        image, truth = _burn(spec, fill=128)
        assert image.shape == (spec.height, spec.width)
        if not spec.has_stripe:
            assert truth.stripe_box is None and truth.segment is None
            continue
        x0, y0, x1, y1 = truth.stripe_box
        assert (x0, x1, y1) == (0, spec.width, spec.height)
        assert (image[:y0] == 128).all()
        stripe = image[y0:y1]
        assert np.mean(stripe == spec.stripe_grey) > 0.6
        lx0, ly0, lx1, ly1 = truth.label_box
        assert y0 <= ly0 < ly1 <= y1 and 0 <= lx0 < lx1 <= spec.width
        label_ink = np.abs(image[ly0:ly1, lx0:lx1].astype(int) - spec.stripe_grey) > 60
        assert label_ink.mean() > 0.1


def test_no_stripe_returns_the_specimen_unchanged():
    spec = next(s for s in _specs(400, seed=4) if not s.has_stripe)
    specimen = np.random.default_rng(0).integers(0, 256, (spec.specimen_height, spec.width), dtype=np.uint8)
    image, truth = burn_data_bar(specimen, spec)
    assert image is specimen and spec.specimen_height == spec.height
    assert not truth.has_stripe and truth.nm_per_px == spec.nm_per_px


def _length_nm(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+) (mm|µm|um|nm)", text).groups()
    return float(number) * UNIT_NM[unit]


def test_hfw_and_magnification_fields_agree_with_the_scale():
    checked_hfw = checked_mag = 0
    for spec in _specs(300, seed=5):
        hfw_nm = spec.width * spec.nm_per_px
        for cell in spec.field_cells:
            text = cell.text
            if text.startswith(("HFW: ", "Width = ")):
                assert _length_nm(text.split(" ", 1)[1].lstrip("= ").strip()) == pytest.approx(hfw_nm, rel=2e-3)
                checked_hfw += 1
            if match := re.fullmatch(r"Mag(?: = |: )([\d.]+)( K)? X", text):
                mag = float(match.group(1)) * (1000 if match.group(2) else 1)
                assert mag == pytest.approx(127e6 / hfw_nm, rel=5e-3)
                checked_mag += 1
    assert checked_hfw > 20 and checked_mag > 20


def test_micro_sign_is_drawn_and_differs_from_u():
    spec = next(s for s in _specs(200, seed=6) if s.has_stripe and s.scale_unit == "µm" and s.micro_text == "µm")
    image, truth = _burn(spec)
    x0, y0, x1, y1 = truth.label_box
    text_mask = np.abs(image[y0:y1, x0:x1].astype(int) - spec.stripe_grey) > 60
    # the µ descender reaches below the digits' baseline: the lowest ink rows hold only the stem
    lowest = np.flatnonzero(text_mask.any(axis=1))[-1]
    assert text_mask[lowest].sum() <= max(3, spec.font_size // 5)


def test_same_rng_same_bar():
    a, b = _specs(20, seed=7), _specs(20, seed=7)
    assert a == b
    assert all(np.array_equal(_burn(x)[0], _burn(y)[0]) for x, y in zip(a, b, strict=True))


def test_text_is_large_enough_for_ocr_at_1024_wide():
    for spec in _specs(100, seed=8):
        if spec.has_stripe:
            _image, truth = _burn(spec)
            assert truth.label_box[3] - truth.label_box[1] >= 10
