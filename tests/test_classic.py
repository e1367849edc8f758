"""The weight-free "classic" descriptor: shape and validity for any input, invariances, and informativeness.

Expected values are reasoned by hand from the images drawn here (a half black,
half white image; a sine grating of known period; a constant image) or taken
from an independent implementation (scikit-image's LBP), never from the code
under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from skimage.feature import local_binary_pattern
from sklearn.preprocessing import StandardScaler

from semcurate.datasets.specimens import draw_specimen
from semcurate.datasets.taxonomy import leaf_paths, top_categories
from semcurate.features.classic import ClassicDescriptor, _lbp_histogram

DESCRIPTOR = ClassicDescriptor()
# one leaf from each of the 10 top categories: 10 visually distinct classes
LEAVES = [next(leaf for leaf in leaf_paths() if leaf.split("/")[0] == category) for category in top_categories()]
PER_CLASS = 10


def column(vector: np.ndarray, name: str) -> float:
    return float(vector[DESCRIPTOR.feature_names.index(name)])


@pytest.fixture(scope="module")
def labelled_set() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """10 specimens of each of 10 leaves at 192 x 256, their class numbers and their descriptors."""
    images, labels = [], []
    for label, leaf in enumerate(LEAVES):
        for index in range(PER_CLASS):
            images.append(draw_specimen(leaf, np.random.default_rng(1000 * label + index), 192, 256))
            labels.append(label)
    return images, np.array(labels), DESCRIPTOR.transform(images)


def test_names_and_dimension_agree():
    assert DESCRIPTOR.name == "classic"
    assert len(DESCRIPTOR.feature_names) == DESCRIPTOR.dimension
    assert len(set(DESCRIPTOR.feature_names)) == DESCRIPTOR.dimension
    assert {"lbp_l0_03", "spectrum_band_07", "intensity_mean"} <= set(DESCRIPTOR.feature_names)


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8),
        np.random.default_rng(1).integers(0, 256, (8, 300), dtype=np.uint8),  # 37 : 1, centre-cropped to 4 : 1
        np.random.default_rng(2).integers(0, 256, (700, 1024), dtype=np.uint8),
        draw_specimen("Patterned_surface/square_array", np.random.default_rng(3), 61, 300),
        np.zeros((8, 8), dtype=np.uint8),
        np.zeros((192, 256), dtype=np.uint8),
        np.full((192, 256), 255, dtype=np.uint8),
        np.full((50, 40), 128, dtype=np.uint8),
    ],
    ids=["noise-8x8", "noise-8x300", "noise-700x1024", "specimen-61x300", "black-8x8", "black", "white", "grey"],
)
def test_any_accepted_image_gives_a_finite_float32_vector(image):
    vector = DESCRIPTOR.describe(image)
    assert vector.dtype == np.float32
    assert vector.shape == (DESCRIPTOR.dimension,)
    assert np.isfinite(vector).all()


def test_other_real_dtypes_are_read_as_grey_levels():
    image = draw_specimen("Fibres", np.random.default_rng(4), 64, 96)
    assert np.array_equal(DESCRIPTOR.describe(image.astype(np.float64)), DESCRIPTOR.describe(image))


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros(100, dtype=np.uint8), "2-D"),
        (np.zeros((64, 64, 3), dtype=np.uint8), "2-D"),  # colour is refused: the caller converts to grey
        (np.zeros((4, 4), dtype=np.uint8), "at least 8"),
        (np.zeros((7, 64), dtype=np.uint8), "at least 8"),
    ],
)
def test_refuses_non_grey_and_tiny_images(image, message):
    with pytest.raises(ValueError, match=message):
        DESCRIPTOR.describe(image)


def test_refuses_a_tiny_working_size():
    with pytest.raises(ValueError, match="working_size"):
        ClassicDescriptor(working_size=16).describe(np.zeros((64, 64), dtype=np.uint8))


def test_transform_stacks_describe():
    rng = np.random.default_rng(5)
    images = [
        draw_specimen(leaf, rng, height, width)
        for leaf, (height, width) in zip(LEAVES[:3], [(64, 64), (100, 150), (192, 256)], strict=True)
    ]
    stacked = DESCRIPTOR.transform(images)
    assert stacked.dtype == np.float32
    assert np.array_equal(stacked, np.stack([DESCRIPTOR.describe(image) for image in images]))
    assert DESCRIPTOR.transform([]).shape == (0, DESCRIPTOR.dimension)


def test_intensity_of_a_half_black_half_white_image():
    image = np.zeros((64, 64), dtype=np.uint8)
    image[:, 32:] = 255
    vector = DESCRIPTOR.describe(image)
    # two equal spikes at 0 and 1: mean 1/2, std 1/2, symmetric, excess kurtosis 1 - 3, one bit of entropy
    assert column(vector, "intensity_mean") == pytest.approx(0.5)
    assert column(vector, "intensity_std") == pytest.approx(0.5)
    assert column(vector, "intensity_skew") == pytest.approx(0.0, abs=1e-6)
    assert column(vector, "intensity_kurtosis") == pytest.approx(-2.0)
    assert column(vector, "intensity_entropy") == pytest.approx(1 / 8)
    assert column(vector, "intensity_p05") == 0.0
    assert column(vector, "intensity_p95") == 1.0
    # the bright half is exactly half the image and Otsu separates the two halves perfectly
    assert column(vector, "shape_foreground") == pytest.approx(0.5, abs=0.02)
    assert column(vector, "shape_separability") > 0.9


def test_a_constant_image_has_no_texture():
    vector = DESCRIPTOR.describe(np.full((96, 128), 77, dtype=np.uint8))
    assert column(vector, "intensity_mean") == pytest.approx(77 / 255)
    assert column(vector, "intensity_std") == 0.0
    for level in range(3):
        # every neighbour equals the centre, so every bit is set: uniform code 8 everywhere
        assert column(vector, f"lbp_l{level}_08") == pytest.approx(1.0)
        assert column(vector, f"edge_l{level}_mean") == 0.0


def test_lbp_matches_scikit_image_inside_the_border():
    rng = np.random.default_rng(6)
    blocky = np.kron(rng.integers(0, 4, (12, 15)), np.ones((4, 4)))  # many ties between neighbours
    for image in (rng.integers(0, 256, (40, 50)).astype(np.float64), blocky):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # scikit-image warns about float input
            codes = local_binary_pattern(image, 8, 1, method="uniform")[1:-1, 1:-1].astype(int)
        expected = np.bincount(codes.ravel(), minlength=10) / codes.size
        np.testing.assert_allclose(_lbp_histogram(image.astype(np.float32)), expected)


def grating(period: float, height: int = 256, width: int = 256, angle: float = 0.0) -> np.ndarray:
    rows, cols = np.mgrid[:height, :width]
    phase = 2 * np.pi * (cols * np.cos(angle) + rows * np.sin(angle)) / period
    return np.rint(127.5 + 100 * np.sin(phase)).astype(np.uint8)


def test_a_grating_peaks_in_its_band_and_has_one_orientation():
    # at the working size (256 px short side) a 20 px period is 0.05 cycle/px; bands are log-spaced from
    # 2/256 to 1/2 in 16 steps, so 0.05 lies in band floor(16 * log(0.05 * 128) / log(64)) = floor(7.14) = 7
    vector = DESCRIPTOR.describe(grating(20.0))
    bands = [column(vector, f"spectrum_band_{band:02d}") for band in range(16)]
    assert int(np.argmax(bands)) == 7
    # all gradients are parallel: the first orientation harmonic is 1; random noise has none
    assert column(vector, "orientation_l1_h1") > 0.95
    noise = DESCRIPTOR.describe(np.random.default_rng(7).integers(0, 256, (256, 256), dtype=np.uint8))
    assert column(noise, "orientation_l1_h1") < 0.1


def test_a_quarter_turn_barely_moves_the_descriptor(labelled_set):
    images, labels, features = labelled_set
    scaler = StandardScaler().fit(features)
    original = scaler.transform(features)
    turned = scaler.transform(DESCRIPTOR.transform([np.rot90(image) for image in images]))
    moved = np.linalg.norm(turned - original, axis=1)
    distances = np.linalg.norm(original[:, None] - original[None], axis=2)
    between = distances[labels[:, None] != labels[None]]
    # rotation invariance: a turned image lies far closer to itself than images of two classes lie to each other
    assert np.median(moved) < 0.15 * np.median(between)
    nearest = np.linalg.norm(turned[:, None] - original[None], axis=2).argmin(axis=1)
    assert np.mean(labels[nearest] == labels) >= 0.9


def test_leave_one_out_nearest_neighbour_recognises_the_classes(labelled_set):
    _, labels, features = labelled_set
    features = StandardScaler().fit_transform(features)
    distances = np.linalg.norm(features[:, None] - features[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    accuracy = np.mean(labels[distances.argmin(axis=1)] == labels)
    assert accuracy >= 0.7  # chance is 1 in 10
