"""The classic descriptor's blob block: scale space checked against SciPy, sizes and point patterns against theory.

The truths here do not come from the code under test: the scale-normalised
Laplacian of Gaussian is SciPy's ``gaussian_laplace``; a disc of radius r
answers most strongly at sigma = r / sqrt(2) (Lindeberg); the Clark-Evans
ratio of points thrown at random is 1, of a square lattice 2 and of tight
clusters well below 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, stats

from semcurate.datasets.textures import make_textures
from semcurate.features.classic import _BLOB_SIGMAS, ClassicDescriptor, _neighbourhood_maximum, _scale_space
from semcurate.features.extract import create_extractor

PLAIN, BLOBS = ClassicDescriptor(), ClassicDescriptor(blobs=True)
SIDE = 256  # the working size: images of this side are described as they are


def blob_columns(image: np.ndarray) -> dict[str, float]:
    vector = BLOBS.describe(image)
    return {name: float(value) for name, value in zip(BLOBS.feature_names, vector, strict=True) if name[:5] == "blob_"}


def discs(centres: np.ndarray, radii: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Bright discs (200) on a dark ground (40), uint8."""
    rows, cols = np.mgrid[0:side, 0:side]
    inside = np.zeros((side, side), dtype=bool)
    for (x, y), radius in zip(centres, radii, strict=True):
        inside |= (cols - x) ** 2 + (rows - y) ** 2 <= radius**2
    return np.where(inside, 200, 40).astype(np.uint8)


def spaced_points(rng: np.random.Generator, count: int, gap: float, margin: float) -> np.ndarray:
    """Up to ``count`` uniform random points at least ``gap`` apart (a hard-core process)."""
    points: list[np.ndarray] = []
    for _ in range(50 * count):
        candidate = rng.uniform(margin, SIDE - margin, 2)
        if all(np.hypot(*(candidate - point)) >= gap for point in points):
            points.append(candidate)
            if len(points) == count:
                break
    return np.array(points)


def test_the_block_extends_the_descriptor_by_31_named_columns():
    assert BLOBS.name == "classic_blobs" and PLAIN.name == "classic"
    assert BLOBS.dimension == PLAIN.dimension + 31 == 191
    assert BLOBS.feature_names[: PLAIN.dimension] == PLAIN.feature_names
    assert len(set(BLOBS.feature_names)) == BLOBS.dimension
    image = np.random.default_rng(0).integers(0, 256, (300, 420), dtype=np.uint8)
    assert np.array_equal(BLOBS.describe(image)[: PLAIN.dimension], PLAIN.describe(image))


@pytest.mark.parametrize("shape", [(160, 224), (256, 374), (97, 131)])  # padded: 225 x 288; 320 x 450; 162 x 200
def test_the_scale_space_equals_scipys_laplacian_of_gaussian_inside_the_border(shape):
    rng = np.random.default_rng(1)
    level = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0).astype(np.float32)
    stack = _scale_space(level)
    assert stack.shape == (len(_BLOB_SIGMAS), *shape)
    for sigma, response in zip(_BLOB_SIGMAS, stack, strict=True):
        # the block smooths by 1 px first: a Gaussian of 1 then of sigma is one of sqrt(sigma^2 + 1)
        expected = -(sigma**2) * ndimage.gaussian_laplace(level.astype(np.float64), np.hypot(sigma, 1.0))
        border = int(np.ceil(2 * sigma)) + 4
        inside = (slice(border, -border), slice(border, -border))
        scale = np.abs(expected[inside]).max()
        assert np.abs(response[inside] - expected[inside]).max() < 0.005 * scale


@pytest.mark.parametrize("shape", [(9, 64, 80), (9, 1, 1), (2, 3, 5)])
def test_the_neighbourhood_maximum_equals_scipys_maximum_filter(shape):
    stack = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    stack[0, 0, 0] = stack.max() + 1  # a maximum at the corner, where the edge is repeated
    assert np.array_equal(_neighbourhood_maximum(stack), ndimage.maximum_filter(stack, size=3))


@pytest.mark.parametrize("radius", [4.0, 8.0, 11.0])
def test_discs_of_one_size_are_found_at_sigma_radius_over_root_two(radius):
    centres = spaced_points(np.random.default_rng(2), 20, 4 * radius, 2 * radius)
    columns = blob_columns(discs(centres, np.full(len(centres), radius)))
    shares = np.array([columns[f"blob_peaks_s{sigma:.3g}"] for sigma in _BLOB_SIGMAS])
    nearest = int(np.argmin(np.abs(np.log(np.asarray(_BLOB_SIGMAS) * np.sqrt(2) / radius))))
    assert np.argmax(shares) == nearest
    assert shares[max(0, nearest - 1) : nearest + 2].sum() > 0.8


def test_two_sizes_spread_the_scales_and_one_size_does_not():
    rng = np.random.default_rng(3)
    centres = spaced_points(rng, 24, 36, 18)
    one_size = blob_columns(discs(centres, np.full(len(centres), 6.0)))
    two_sizes = blob_columns(discs(centres, np.where(np.arange(len(centres)) % 2 == 0, 3.0, 14.0)))
    assert one_size["blob_scale_spread"] < 0.2
    assert two_sizes["blob_scale_spread"] > 0.5
    small = two_sizes["blob_peaks_s2"] + two_sizes["blob_peaks_s2.83"]
    large = two_sizes["blob_peaks_s8"] + two_sizes["blob_peaks_s11.3"]
    assert small > 0.25 and large > 0.25


def test_clark_evans_ratio_tells_lattices_random_and_clustered_points_apart():
    lattice = np.array([(x, y) for x in range(16, SIDE, 32) for y in range(16, SIDE, 32)], dtype=float)
    rng = np.random.default_rng(4)
    scattered = rng.uniform(8, SIDE - 8, (120, 2))
    parents = rng.uniform(40, SIDE - 40, (6, 2))
    clustered = parents[np.arange(96) % 6] + rng.normal(0, 9, (96, 2))
    ratio = {
        name: blob_columns(discs(points, np.full(len(points), 3.0)))
        for name, points in {"lattice": lattice, "scattered": scattered, "clustered": clustered}.items()
    }
    # a square lattice: every nearest neighbour at the spacing, 2 * sqrt(density) * spacing = 2 (edges lower it)
    assert ratio["lattice"]["blob_clark_evans"] > 1.7
    assert 0.75 < ratio["scattered"]["blob_clark_evans"] < 1.25  # overlapping discs merge a few close pairs
    assert ratio["clustered"]["blob_clark_evans"] < 0.75
    # crowding: 1 for points at random (edges lower it a little), above for clusters, below for a lattice
    assert ratio["clustered"]["blob_crowding"] > 1.2 > ratio["scattered"]["blob_crowding"] > 0.9
    assert ratio["lattice"]["blob_crowding"] < 0.85


def test_contrast_and_brightness_barely_move_the_block():
    """Half the contrast and a brighter ground on the independent generator's particles: the size spectra and the
    skewnesses (of order 1) change only by the grey levels' rounding, and a blob or two more or less moves the
    counts by about 0.01."""
    images, _categories, leaves = make_textures(1, np.random.default_rng(7), SIDE)
    for image in images[np.char.startswith(leaves.astype(str), "particles")]:
        dimmer = np.rint(0.5 * image.astype(float) + 60).astype(np.uint8)
        first, second = blob_columns(image), blob_columns(dimmer)
        spectra = [name for name in first if name.startswith("blob_bright")]
        skews = [name for name in first if name.startswith("blob_skew")]
        assert max(abs(first[name] - second[name]) for name in spectra) < 1e-3
        assert max(abs(first[name] - second[name]) for name in skews) < 0.01
        assert max(abs(first[name] - second[name]) for name in first) < 0.03


def test_skewness_says_bright_particles_and_changes_sign_when_the_image_is_inverted():
    """Inverting the grey levels negates the response, so its skewness changes sign (a truth of symmetry), and
    sparse bright discs make the response at their own scale skewed to the positive side; the value is checked
    against SciPy's (uncentred: the response's mean is zero up to the border)."""
    centres = spaced_points(np.random.default_rng(8), 20, 32, 16)
    image = discs(centres, np.full(len(centres), 8.0))
    columns, inverted = blob_columns(image), blob_columns(255 - image)
    names = [f"blob_skew_s{sigma:.3g}" for sigma in _BLOB_SIGMAS]
    for name in names:
        assert inverted[name] == pytest.approx(-columns[name], abs=1e-4)
    own_scale = int(np.argmin(np.abs(np.log(np.asarray(_BLOB_SIGMAS) * np.sqrt(2) / 8.0))))
    assert columns[names[own_scale]] > 1.0
    level = (image.astype(np.float64) - image.mean()) / image.std()
    response = _scale_space(level.astype(np.float32))[own_scale].astype(np.float64).ravel()
    assert columns[names[own_scale]] == pytest.approx(stats.skew(response), rel=0.02)


def test_the_negative_response_would_only_repeat_the_positive_one():
    """Why the block has no dark spectrum: ``-sigma^2 LoG`` integrates to zero, so on a mirrored level the mean
    negative response at each scale equals the mean positive one, well within 5 % on natural-looking noise."""
    level = ndimage.gaussian_filter(np.random.default_rng(9).standard_normal((192, 256)), 3.0).astype(np.float32)
    stack = _scale_space(level).astype(np.float64)
    positive, negative = np.clip(stack, 0, None).mean(axis=(1, 2)), np.clip(-stack, 0, None).mean(axis=(1, 2))
    assert np.allclose(positive, negative, rtol=0.05)


def test_an_image_with_no_blobs_takes_the_no_pattern_values():
    columns = blob_columns(np.full((192, 256), 90, dtype=np.uint8))
    assert [columns[name] for name in ("blob_clark_evans", "blob_crowding", "blob_crowding_cv")] == [1.0, 1.0, 0.0]
    assert columns["blob_scale_spread"] == 0.0
    assert all(columns[f"blob_skew_s{sigma:.3g}"] == 0.0 for sigma in _BLOB_SIGMAS)
    assert all(np.isfinite(list(columns.values())))


def test_the_extractor_names_its_outputs_after_the_two_descriptors():
    extractor = create_extractor("classic_blobs")
    assert (extractor.name, extractor.outputs) == ("classic_blobs", {"classic_blobs": 191, "classic": 160})
    image = np.random.default_rng(6).integers(0, 256, (96, 128), dtype=np.uint8)
    rows = extractor.transform([image])
    assert rows["classic_blobs"].shape == (1, 191)
    assert np.array_equal(rows["classic"], PLAIN.transform([image]))
