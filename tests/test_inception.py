"""Inception-V3 activations without ImageNet weights: shapes, a saved-weights cross-check, clear errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from semcurate.features.inception import (
    INPUT_SIDE,
    InceptionV3Extractor,
    WeightsUnavailable,
    to_inception_input,
)

pytestmark = pytest.mark.slow  # builds Inception-V3 with TensorFlow


def greys(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random((120 + 10 * index, 160)) * 255).astype(np.uint8) for index in range(n)]


def test_input_is_three_grey_channels_scaled_to_minus_one_one():
    batch = to_inception_input([np.zeros((10, 20), np.uint8), np.full((300, 500), 255, np.uint8)])
    assert batch.shape == (2, INPUT_SIDE, INPUT_SIDE, 3)
    assert np.all(batch[0] == -1.0) and np.all(batch[1] == 1.0)


def test_saved_weights_reproduce_keras_own_predictions(tmp_path):
    keras.utils.set_random_seed(3)
    reference = keras.applications.InceptionV3(weights=None)
    path = tmp_path / "random.weights.h5"
    reference.save_weights(path)
    extractor = InceptionV3Extractor(weights=path)
    images = greys(3)
    outputs = extractor.transform(images)
    assert outputs["pool"].shape == (3, 2048) and outputs["logits"].shape == (3, 1000)
    probabilities = np.asarray(reference.predict(to_inception_input(images), verbose=0))
    logits = outputs["logits"].astype(np.float64)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    assert np.allclose(softmax, probabilities, atol=1e-5)
    assert extractor.weights_tag.startswith("w") and len(extractor.weights_digest) == 64


def test_random_weights_are_reproducible_from_the_seed():
    images = greys(2, seed=1)
    first = InceptionV3Extractor(weights="none", random_state=5).transform(images)["pool"]
    second = InceptionV3Extractor(weights="none", random_state=5).transform(images)["pool"]
    assert np.allclose(first, second)


def test_unreachable_imagenet_weights_say_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    # keras.applications calls the implementation module's get_file, not the public alias
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", no_network)
    with pytest.raises(WeightsUnavailable, match=r"inception_v3_weights_tf_dim_ordering_tf_kernels\.h5"):
        InceptionV3Extractor(weights="imagenet")


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        InceptionV3Extractor(weights=tmp_path / "nope.h5")
