"""The second texture generator: consistent truth, reproducible, and separable by a descriptor that is not ours.

The peer check describes each image with scikit-image's grey-level
co-occurrence properties and a radially averaged power spectrum written here
with numpy's FFT, and cross-validates scikit-learn's linear discriminant
analysis on it (shrinkage LDA: a linear classifier like logistic regression,
ten times faster to fit): the sub-categories must be far better than chance, while the image's mean
and spread alone (the nuisance drawn per image) must not separate them.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold, cross_val_score

from semcurate.datasets.textures import TEXTURE_SUBCATEGORIES, make_textures


@pytest.fixture(scope="module")
def textures():
    return make_textures(10, rng=1, size=80)


def test_truth_is_consistent(textures):
    images, category, subcategory = textures
    assert images.shape == (150, 80, 80) and images.dtype == np.uint8
    assert category.shape == subcategory.shape == (150,)
    paths, counts = np.unique(subcategory, return_counts=True)
    assert sorted(paths.tolist()) == sorted(TEXTURE_SUBCATEGORIES) and set(counts.tolist()) == {10}
    assert [str(path) for path in subcategory[::10]] == list(TEXTURE_SUBCATEGORIES)
    assert all(path.split("/")[0] == name for path, name in zip(subcategory, category, strict=True))
    assert dict(zip(*np.unique(category, return_counts=True), strict=True)) == {
        "fibrous": 30,
        "grains": 30,
        "particles": 40,
        "phase": 30,
        "rough": 20,
    }
    assert all(image.std() > 5 for image in images), "an image is flat"


def test_same_seed_same_images_other_seed_differs():
    first, _, _ = make_textures(1, rng=7, size=48)
    again, _, _ = make_textures(1, rng=np.random.default_rng(7), size=48)
    other, _, _ = make_textures(1, rng=8, size=48)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(("kwargs", "message"), [({"n_per_class": 0}, "n_per_class"), ({"size": 16}, "size")])
def test_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_textures(**{"n_per_class": 1, "rng": 0, "size": 64} | kwargs)


def _peer_descriptor(image: np.ndarray) -> np.ndarray:
    """GLCM properties (scikit-image) and log power in 8 radial bands, independent of the generator."""
    grey = image.astype(np.float64)
    matrix = graycomatrix(image // 16, [1, 2, 4, 8], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=16, normed=True)
    glcm = np.concatenate([graycoprops(matrix, p).mean(axis=1) for p in ("contrast", "homogeneity", "correlation")])
    power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(image.shape[0]), np.fft.fftfreq(image.shape[1]), indexing="ij"))
    edges = np.geomspace(2 / image.shape[0], 0.5, 9)
    bands = [power[(radius >= low) & (radius < high)].mean() for low, high in itertools.pairwise(edges)]
    return np.concatenate([glcm, np.log(np.array(bands) / power.sum())])


def _cv_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    return float(cross_val_score(model, features, labels, cv=StratifiedKFold(5, shuffle=True, random_state=0)).mean())


def test_classes_are_separable_by_a_peer_descriptor_but_not_by_brightness(textures):
    images, category, subcategory = textures
    described = np.array([_peer_descriptor(image) for image in images])
    flat = images.reshape(len(images), -1).astype(np.float64)
    brightness = np.column_stack([flat.mean(axis=1), flat.std(axis=1)])
    assert _cv_accuracy(described, subcategory) >= 0.5  # chance: 1 / 15
    assert _cv_accuracy(described, category) >= 0.7  # chance: 0.27 (the largest category)
    assert _cv_accuracy(brightness, subcategory) <= 0.3  # nuisance: mean and contrast drawn per image
