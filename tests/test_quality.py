"""The quality core, checked against truth from outside it: scipy's blur, hand-made streaks, hand-computed numbers."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from scipy import ndimage

from semcurate.datasets.defects import apply_defect
from semcurate.datasets.specimens import draw_specimen
from semcurate.datasets.taxonomy import leaf_paths
from semcurate.ingest.quality import (
    FLAG_RULES,
    colourfulness,
    derived_scores,
    estimate_noise,
    flags_of,
    score_image,
    set_thresholds,
)

LEAVES = leaf_paths()


@pytest.fixture(scope="module")
def pictures():
    """Twelve drawn specimens of different categories, 512 × 384 (no data bar)."""
    rng = np.random.default_rng(5)
    return [draw_specimen(LEAVES[index], rng, 384, 512) for index in range(0, 36, 3)]


def test_gaussian_blur_of_a_focusing_shot_lowers_the_sharpness_below_the_threshold(pictures):
    # the demo's focusing shots are blurred by 2.5-4 % of the shorter side; a specimen's own focus stays under 1.5 %.
    # Fine periodic arrays are left out: blurred, their pitch survives as a sinusoid whose gradients look like those
    # of a crisp edge (the score's known blind spot, see the module docstring).
    noise = np.random.default_rng(0).normal(0, 3, (384, 512))
    threshold = FLAG_RULES["blurred"]["bounds"][1]  # the threshold when a repository's sharpness barely varies
    for leaf, picture in zip(LEAVES[0:36:3], pictures, strict=True):
        scores = [score_image(picture, (0, 384, 512, 384)).sharpness]
        for share in (0.025, 0.04):
            blurred = ndimage.gaussian_filter(picture.astype(float), share * 384) + noise  # fresh detector noise
            scores.append(score_image(np.clip(blurred, 0, 255).astype(np.uint8), (0, 384, 512, 384)).sharpness)
        if leaf.endswith("_array"):
            continue
        assert scores[0] > threshold > scores[2] and scores[0] > scores[1] > scores[2], leaf


@pytest.mark.parametrize("sigma", [3.0, 6.0, 10.0])
def test_edge_width_is_the_sigma_of_a_blurred_step_whatever_its_contrast_and_noise(sigma):
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:384, 0:512]
    disk = np.where((x - 250) ** 2 + (y - 190) ** 2 < 120**2, 150.0, 40.0)
    for contrast in (1.0, 0.3):
        picture = ndimage.gaussian_filter(40 + contrast * (disk - 40), sigma) + rng.normal(0, 2, disk.shape)
        grey = np.clip(np.rint(picture), 0, 255).astype(np.uint8)
        width = 10 ** -score_image(grey, (0, 384, 512, 384)).sharpness  # as a share of the shorter side, 384 px
        assert width * 384 == pytest.approx(sigma, rel=0.25)  # noise lifts the 90th percentile ratio: reads narrower


def test_a_smooth_specimen_is_not_blurred_but_its_gaussian_blur_is():
    # close-ups of one nanowire or one particle: large smooth bodies with crisp rims (the old score called
    # them blurred); blurred by scipy as the demo's focusing shots are, they are
    rng = np.random.default_rng(11)
    threshold = FLAG_RULES["blurred"]["bounds"][1]
    for leaf in ("Nanowires/individual", "Particles/individal_NP", "Biological"):
        leaf = next(path for path in LEAVES if path.startswith(leaf))
        for _ in range(3):
            picture = draw_specimen(leaf, rng, 384, 512)
            assert score_image(picture).sharpness > threshold, leaf
            blurred = ndimage.gaussian_filter(picture.astype(float), 0.03 * 384) + rng.normal(0, 3, picture.shape)
            assert score_image(np.clip(blurred, 0, 255).astype(np.uint8)).sharpness < threshold, leaf


def test_flat_rows_cut_beside_the_bar_narrow_the_picture_not_the_field():
    # A field of 600 rows whose last 200 are one flat grey (an instrument's uniform picture bottom) is measured on
    # the 400 rows above them, but its edges' width is a share of the field's shorter side (512 px), not of the
    # picture's: the same edges in a field of 400 rows give the same width in px, a larger share of a smaller field.
    rng = np.random.default_rng(4)
    sigma = 6.0
    y, x = np.mgrid[0:400, 0:512]
    disk = np.where((x - 250) ** 2 + (y - 190) ** 2 < 120**2, 150.0, 40.0)
    content = np.clip(np.rint(ndimage.gaussian_filter(disk, sigma) + rng.normal(0, 2, disk.shape)), 0, 255)
    content = content.astype(np.uint8)
    stripe = np.zeros((24, 512), np.uint8)
    short = score_image(np.vstack([content, stripe]), (0, 400, 512, 424))
    tall = score_image(np.vstack([content, np.full((200, 512), 200, np.uint8), stripe]), (0, 600, 512, 624))
    assert "rows of one grey level next to the data bar cut away" in tall.reason
    assert abs(tall.picture_height - short.picture_height) <= 2 and short.picture_height < 400
    assert 10**-tall.sharpness * 512 == pytest.approx(sigma, rel=0.25)  # the disk's blur, read from the field
    assert 10**-tall.sharpness * 512 == pytest.approx(10**-short.sharpness * short.picture_height, rel=0.03)


def test_sharpness_does_not_depend_on_contrast(pictures):
    picture = pictures[0]
    halved = np.asarray(ImageEnhance.Contrast(Image.fromarray(picture)).enhance(0.5))
    assert score_image(halved).sharpness == pytest.approx(score_image(picture).sharpness, abs=0.15)


def test_a_charging_streak_drawn_by_hand_is_found_at_its_rows(pictures):
    picture = pictures[1]
    clean = score_image(picture)
    streaked = picture.astype(np.int16)
    streaked[200:202, 150:] += 90  # two scan lines from column 150 to the right edge
    streaked[100:140] += 50  # a band of 40 lines with sharp edges
    scores = score_image(np.clip(streaked, 0, 255).astype(np.uint8))
    threshold = FLAG_RULES["charging"]["bounds"][0]
    assert clean.charging < threshold < scores.charging
    assert {100, 140, 200, 202} <= set(scores.charging_rows)
    assert all(min(abs(row - edge) for edge in (100, 140, 200, 202)) <= 1 for row in scores.charging_rows)


def test_the_demo_defects_move_their_scores_the_right_way(pictures):
    rng = np.random.default_rng(9)
    for picture in pictures[:6]:
        sound = score_image(picture)
        assert score_image(apply_defect(picture, "dark", rng)[0]).brightness < min(sound.brightness, 40)
        assert score_image(apply_defect(picture, "light", rng)[0]).brightness > max(sound.brightness, 180)
        assert score_image(apply_defect(picture, "blank", rng)[0]).structure < 0.3 < sound.structure
        colour = score_image(apply_defect(picture, "colour", rng)[0])
        assert colour.colourfulness > 5 and sound.colourfulness == 0.0


def test_brightness_follows_pillow_brightness_enhancement(pictures):
    picture = pictures[2]
    darker = np.asarray(ImageEnhance.Brightness(Image.fromarray(picture)).enhance(0.25))
    assert score_image(darker).brightness == pytest.approx(darker.mean(), abs=1e-9)
    assert score_image(darker).brightness == pytest.approx(0.25 * picture.mean(), abs=1.0)


def test_noise_estimate_recovers_the_deviation_of_added_gaussian_noise():
    rng = np.random.default_rng(1)
    smooth = ndimage.gaussian_filter(rng.random((400, 400)) * 200, 8) + 20  # a smooth field: no noise of its own
    for sigma in (2.0, 5.0, 10.0):
        assert estimate_noise(smooth + rng.normal(0, sigma, smooth.shape)) == pytest.approx(sigma, rel=0.08)


def test_entropy_and_saturation_against_hand_counts():
    uniform = np.arange(256, dtype=np.uint8).repeat(64).reshape(128, 128)  # every grey level equally often
    scores = score_image(uniform)
    assert scores.entropy == pytest.approx(8.0)
    assert scores.clipped_low == pytest.approx(1 / 256) and scores.clipped_high == pytest.approx(1 / 256)
    half = np.zeros((64, 64), np.uint8)
    half[:, 32:] = 255
    assert score_image(half).entropy == pytest.approx(1.0)


def test_colourfulness_is_hasler_and_susstrunk_by_hand():
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], dtype=float)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    expected = math.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * math.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    assert colourfulness(rgb) == pytest.approx(expected)
    grey_rgb = np.repeat(np.arange(100, dtype=np.uint8).reshape(10, 10)[..., None], 3, axis=2)
    assert score_image(grey_rgb).colourfulness == 0.0


def test_the_data_bar_is_left_out_and_its_absence_is_said():
    picture = np.full((100, 80), 40, np.uint8)
    picture[90:] = 255  # a white stripe at the bottom
    cut = score_image(picture, (0, 90, 80, 100))
    whole = score_image(picture)
    # the rows of the bar and a margin of 4 rows above it (where the reader's stripe may start too low) are cut
    assert cut.brightness == 40.0 and cut.picture_height == 86 and not cut.bar_included
    assert whole.brightness == pytest.approx(0.9 * 40 + 0.1 * 255) and whole.median_brightness == 40
    assert whole.bar_included and "no data bar was found" in whole.reason
    on_top = score_image(picture[::-1], (0, 0, 80, 10))  # a stripe on top: the rows under it
    assert on_top.brightness == 40.0 and on_top.picture_height == 86


def test_a_blank_band_of_the_bar_above_the_stripe_found_is_cut_away_with_it(pictures):
    picture = pictures[4]
    image = np.vstack([picture[:300], np.full((60, 512), 6, np.uint8), np.full((24, 512), 200, np.uint8)])
    stripe = (0, 360, 512, 384)  # the reader found the text part of the bar only, not its black band
    scores = score_image(image, stripe)
    # the stripe's margin (4 rows) falls in the band; its other 56 rows and a margin of 4 past it are cut
    assert scores.picture_height == 296 and "56 rows of one grey level" in scores.reason
    assert scores.brightness == pytest.approx(picture[:296].mean())
    assert scores.charging < FLAG_RULES["charging"]["bounds"][0]  # the band's edge is no charging streak
    blank, _ = apply_defect(picture[:300], "blank", np.random.default_rng(0))
    banded = score_image(np.vstack([blank, np.full((60, 512), 230, np.uint8), np.full((24, 512), 0, np.uint8)]), stripe)
    assert banded.structure < FLAG_RULES["low_information"]["bounds"][0]


@pytest.mark.parametrize(
    ("pixels", "reason_part"),
    [
        (np.full((64, 64), 128, np.uint8), "no contrast"),
        (np.arange(300, dtype=np.uint8).reshape(1, 300), "too small to measure sharpness"),
        (np.full((64, 64), np.nan), "no finite pixel value"),
        (np.zeros((0, 5), np.uint8), "empty image"),
        (np.zeros((4, 4, 4, 4), np.uint8), "cannot score an array"),
        (np.array(["a", "b"]).reshape(1, 2), "cannot score pixels of type"),
    ],
)
def test_bad_pixels_give_a_reason_not_an_exception(pixels, reason_part):
    scores = score_image(pixels)
    assert reason_part in scores.reason


def test_wide_and_odd_types_are_read_on_the_8_bit_scale(pictures):
    picture = pictures[3]
    reference = score_image(picture)
    sixteen = score_image(picture.astype(np.uint16) * 257)
    assert sixteen.brightness == pytest.approx(reference.brightness)
    assert sixteen.sharpness == pytest.approx(reference.sharpness, abs=1e-6)
    assert "16-bit" in sixteen.reason
    unit_float = score_image(picture / 255.0)
    assert unit_float.brightness == pytest.approx(reference.brightness) and "float image in 0..1" in unit_float.reason
    wide_float = score_image(picture * 1000.0 - 7.0)
    assert "stretched" in wide_float.reason and wide_float.sharpness == pytest.approx(reference.sharpness, abs=0.05)
    holes = (picture / 255.0).copy()
    holes[0, :10] = np.nan
    assert "NaN or infinite pixels replaced" in score_image(holes).reason
    assert score_image(picture > 128).brightness == pytest.approx(255 * (picture > 128).mean())
    rgba = np.dstack([picture, picture, picture, np.full_like(picture, 255)])
    assert score_image(rgba).brightness == pytest.approx(reference.brightness)


def test_thresholds_are_the_robust_z_of_hand_computed_quantiles():
    rng = np.random.default_rng(3)
    brightness = np.concatenate([rng.normal(110, 20, 500), [3.0, 5.0, 250.0]])
    median = statistics.median(brightness)
    mad = statistics.median(abs(value - median) for value in brightness)
    rules = {
        "dark": {"score": "brightness", "direction": "below", "z": 2.5, "bounds": (0.0, 200.0)},
        "light": {"score": "brightness", "direction": "above", "z": 2.5, "bounds": (0.0, 300.0)},
        "held": {"score": "brightness", "direction": "below", "z": 2.5, "bounds": (20.0, 50.0)},
    }
    thresholds = set_thresholds({"brightness": brightness}, rules=rules)
    assert thresholds["dark"].value == pytest.approx(median - 2.5 * 1.4826 * mad)
    assert thresholds["light"].value == pytest.approx(median + 2.5 * 1.4826 * mad)
    assert thresholds["dark"].how == "robust z"
    assert thresholds["held"].value == 50.0 and thresholds["held"].how == "upper bound"
    assert flags_of({"brightness": 3.0}, thresholds) == ["dark", "held"]
    assert set_thresholds({"brightness": brightness}, {"dark": 7.5}, rules)["dark"].value == 7.5
    with pytest.raises(ValueError, match="no flag named"):
        set_thresholds({"brightness": brightness}, {"blurry": 1.0}, rules)


def test_odd_size_and_aspect_as_cleanvision_defines_them():
    widths = np.array([1024.0] * 20 + [60.0, 1024.0])
    heights = np.array([768.0] * 20 + [45.0, 1.0])
    table = {"clipped_low": np.zeros(22), "clipped_high": np.zeros(22), "width": widths, "height": heights}
    ratios = derived_scores(table)["size_ratio"]
    assert ratios[20] == pytest.approx(math.sqrt(1024 * 768) / math.sqrt(60 * 45))  # the median side is 1024 × 768's
    assert ratios[21] == pytest.approx(math.sqrt(1024 * 768) / math.sqrt(1024))
    odd = set_thresholds(table)["odd_size"].raised_many(ratios)
    assert odd.tolist() == [False] * 20 + [True, True]
    assert score_image(np.zeros((1, 1024), np.uint8)).aspect == pytest.approx(1 / 1024)
    assert set_thresholds(table)["odd_aspect"].raised(1 / 1024)
