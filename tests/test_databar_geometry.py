"""Stripe, segment and label-box finding against data bars whose truth is known.

Bars are burned by the demo generator's ``burn_data_bar`` on noisy specimens;
every segment style, stripe polarity and label side is covered, and the
bad inputs of the issue (blank, black, white, tiny, huge, stripe on top) get a
status instead of an exception.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import specimen

from semcurate.datasets.databar import burn_data_bar, random_data_bar_spec
from semcurate.ingest.databar_geometry import (
    GeometryProblem,
    Stripe,
    find_segment,
    find_stripe,
    label_candidates,
    text_boxes,
)


def overlap(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


def test_every_layout_is_found_and_measured(bars):
    for key, image, truth in bars:
        stripe = find_stripe(image)
        assert isinstance(stripe, Stripe), (key, stripe)
        assert stripe.box == truth.stripe_box, key
        assert stripe.dark == (key[1] == "dark")
        segment = find_segment(image, stripe)
        assert not isinstance(segment, GeometryProblem), (key, segment)
        assert abs(segment.length_px - truth.bar_px) <= 0.5, (key, segment.length_px, truth.bar_px)
        candidates = label_candidates(segment, text_boxes(image, stripe, segment))
        side, box = candidates[0]
        assert side == truth.label_position and overlap(box, truth.label_box) > 0.6, (key, candidates[:2])


def test_blurred_segment_ends_are_measured_to_sub_pixel(bars):
    from scipy.ndimage import uniform_filter1d

    for key, image, truth in bars[:12]:
        blurred = uniform_filter1d(image.astype(np.float32), size=3, axis=1).round().astype(np.uint8)
        stripe = find_stripe(blurred)
        segment = find_segment(blurred, stripe)
        assert abs(segment.length_px - truth.bar_px) <= 0.5, (key, segment.length_px, truth.bar_px)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((768, 1024), np.uint8),
        np.full((768, 1024), 255, np.uint8),
        np.full((768, 1024), 128, np.uint8),
        specimen(np.random.default_rng(1), 768, 1024),
        np.zeros((48, 64), np.uint8),
        np.zeros((8, 8), np.uint8),
    ],
    ids=["black", "white", "grey", "no stripe", "64x48 blank", "8x8"],
)
def test_images_without_a_stripe_say_so(image):
    result = find_stripe(image)
    assert isinstance(result, GeometryProblem) and result.status == "no_stripe" and result.reason


def test_stripe_at_the_top_is_not_taken(bars):
    _, image, _ = bars[0]
    flipped = np.ascontiguousarray(image[::-1])
    result = find_stripe(flipped)
    assert isinstance(result, GeometryProblem) and result.status == "no_stripe"


def drawn_stripe(segments: list[tuple[int, int]]) -> np.ndarray:
    """A 1024×768 frame with a dark 60-px stripe, a text-like blob, and white bars over these column spans."""
    image = specimen(np.random.default_rng(9), 768, 1024)
    image[708:] = 20
    image[725:740, 900:912] = 230  # a glyph-sized mark, so the stripe has content
    for start, stop in segments:
        image[735:739, start:stop] = 230
    return image


def test_stripe_with_no_one_or_two_segments():
    assert find_segment(drawn_stripe([]), find_stripe(drawn_stripe([]))).status == "no_segment"
    one = drawn_stripe([(100, 300)])
    assert find_segment(one, find_stripe(one)).length_px == 200
    two = drawn_stripe([(100, 300), (400, 520)])
    assert find_segment(two, find_stripe(two)).status == "multiple_segments"


def test_two_stripes_are_reported_not_guessed(bars):
    _, image, truth = bars[0]
    _x0, y0, _x1, y1 = truth.stripe_box
    stripe_rows = image[y0:y1]
    doubled = np.vstack([image[: y0 - 2 * (y1 - y0)], stripe_rows, image[y0 - (y1 - y0) : y0], stripe_rows])
    assert find_stripe(doubled).status == "multiple_stripes"


@pytest.mark.slow
def test_huge_image_is_handled():
    rng = np.random.default_rng(5)
    spec = random_data_bar_spec(rng, 8192, 6144)
    while not spec.has_stripe:
        spec = random_data_bar_spec(rng, 8192, 6144)
    image, truth = burn_data_bar(np.full((spec.specimen_height, 8192), 90, np.uint8), spec)
    image[: spec.specimen_height] = specimen(rng, spec.specimen_height, 8192)
    stripe = find_stripe(image)
    assert stripe.box == truth.stripe_box
    assert abs(find_segment(image, stripe).length_px - truth.bar_px) <= 0.5
