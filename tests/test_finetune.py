"""Transfer learning and fine-tuning of Inception-V3 on tiny synthetic categories, random weights, CPU."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, recall_score

from semcurate.datasets.specimens import draw_specimen
from semcurate.features.finetune import (
    build_classifier,
    checkpoint_outputs,
    finetune,
    load_checkpoint,
    save_checkpoint,
    stratified_split,
)
from semcurate.features.inception import WeightsUnavailable, to_inception_input

pytestmark = pytest.mark.slow  # trains Inception-V3 with TensorFlow

LEAVES = ["Patterned_surface/line_array", "Particles/dispersed", "Porous_Sponge"]
SIDE = 75  # InceptionV3's smallest input
TINY = {"weights": "none", "image_size": SIDE, "batch_size": 8, "random_state": 0}


def corpus(per_class: int = 10) -> tuple[list[np.ndarray], list[str]]:
    rng = np.random.default_rng(0)
    labels = [leaf for leaf in LEAVES for _ in range(per_class)]
    return [draw_specimen(leaf, rng, 96, 128) for leaf in labels], labels


@pytest.fixture(scope="module")
def images_labels():
    return corpus()


@pytest.fixture(scope="module")
def untrained_weights():
    """Weights of the transfer model as built, before training (same seed as in ``finetune``)."""
    return build_classifier(3, mode="transfer", weights="none", image_size=SIDE).get_weights()


@pytest.fixture(scope="module")
def transfer(images_labels):
    return finetune(*images_labels, mode="transfer", epochs=2, **TINY)


def test_split_is_80_10_10_and_stratified():
    labels = ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    train, validation, test = stratified_split(labels)
    # 30 → 24 train + 6 rest (2 per class) → 3 validation + 3 test, one per class each
    assert (train.size, validation.size, test.size) == (24, 3, 3)
    assert sorted(np.concatenate([train, validation, test]).tolist()) == list(range(30))
    labels_array = np.asarray(labels)
    assert sorted(labels_array[validation]) == sorted(labels_array[test]) == ["a", "b", "c"]


def test_a_category_too_small_to_stratify_goes_to_train_whole():
    labels = ["a"] * 10 + ["b"] * 10 + ["c"] * 5
    train, validation, test = stratified_split(labels)
    # a and b: 20 → 16 train + 4 rest → 2 validation + 2 test; all five c in train
    assert (train.size, validation.size, test.size) == (21, 2, 2)
    assert set(range(20, 25)) <= set(train.tolist())


def test_input_is_three_grey_channels_scaled_to_minus_one_one():
    batch = to_inception_input([np.zeros((10, 20), np.uint8), np.full((90, 120), 255, np.uint8)], SIDE)
    assert batch.shape == (2, SIDE, SIDE, 3) and batch.dtype == np.float32
    assert np.all(batch[0] == -1.0) and np.all(batch[1] == 1.0)


def test_report_is_consistent_with_its_confusion_matrix(transfer, images_labels):
    model, report = transfer
    assert report.classes == sorted(LEAVES) and report.mode == "transfer" and report.epochs == 2
    assert report.split_sizes == {"train": 24, "validation": 3, "test": 3}
    confusion = np.array(report.confusion)
    assert confusion.shape == (3, 3) and confusion.sum() == 3
    assert confusion.sum(axis=1).tolist() == [1, 1, 1]  # one test image per category
    # The model's own predictions on the test split, scored by scikit-learn, give the same matrix and recalls.
    images, labels = images_labels
    _, _, test = stratified_split(labels)
    truth = np.asarray(labels)[test]
    probabilities = model.predict(to_inception_input([images[i] for i in test], SIDE), batch_size=8, verbose=0)
    predicted = np.asarray(report.classes)[np.argmax(probabilities, axis=1)]
    assert confusion.tolist() == confusion_matrix(truth, predicted, labels=report.classes).tolist()
    recalls = recall_score(truth, predicted, labels=report.classes, average=None, zero_division=0.0)
    assert report.per_class_accuracy == dict(zip(report.classes, recalls.tolist(), strict=True))
    for k, name in enumerate(report.classes):
        assert report.per_class_accuracy[name] == float(confusion[k, k])  # one image: recall is exactly 0 or 1
    assert report.test_accuracy == pytest.approx(float(np.mean(truth == predicted)), abs=1e-12)
    assert report.test_accuracy == pytest.approx(np.mean(list(report.per_class_accuracy.values())), abs=1e-12)
    assert set(report.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 2 for values in report.history.values())


def test_transfer_trains_the_head_only(transfer, untrained_weights):
    model, _ = transfer
    before, after = untrained_weights, model.get_weights()
    assert len(model.trainable_weights) == 2  # the dense head's kernel and bias
    # every weight but the head's is unchanged, batch norm's moving statistics included
    assert all(np.array_equal(old, new) for old, new in zip(before[:-2], after[:-2], strict=True))
    assert not np.array_equal(before[-2], after[-2])


def test_finetune_trains_the_base_too(images_labels):
    model = build_classifier(3, mode="finetune", weights="none", image_size=SIDE)
    model.run_eagerly = True  # tracing the full backward graph takes ~40 s on CPU, one eager step ~4 s
    before = model.get_weights()
    model.fit(to_inception_input(images_labels[0][::4], SIDE), np.arange(8) % 3, epochs=1, batch_size=8, verbose=0)
    after = model.get_weights()
    assert len(model.trainable_weights) == len(model.weights) - 2 * 94  # all but batch norm's moving statistics
    assert not np.array_equal(before[0], after[0])  # the first convolution's kernel
    assert not np.array_equal(before[-2], after[-2])


def test_checkpoint_round_trip_and_outputs(transfer, images_labels, tmp_path):
    model, _ = transfer
    batch = to_inception_input(images_labels[0][::10], SIDE)
    path = save_checkpoint(model, tmp_path / "head.keras")
    loaded = load_checkpoint(path)
    probabilities = np.asarray(model.predict(batch, verbose=0))
    assert np.array_equal(np.asarray(loaded.predict(batch, verbose=0)), probabilities)
    outputs = checkpoint_outputs(loaded, batch)
    assert outputs["pool"].shape == (3, 2048) and outputs["logits"].shape == (3, 3)
    logits = outputs["logits"].astype(np.float64)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    assert np.allclose(softmax, probabilities, atol=1e-5)


def test_checkpoint_must_be_a_keras_file(transfer, tmp_path):
    with pytest.raises(ValueError, match=r"\.keras"):
        save_checkpoint(transfer[0], tmp_path / "head.h5")


@pytest.mark.parametrize(
    "labels, kwargs, message",
    [
        (["a"] * 30, {}, "at least 2 categories"),
        (["a"] * 14 + ["b"] * 14 + ["c"] * 2, {}, r"fewer than 3 images: c \(2\)"),
        (["a"] * 29, {}, "30 images but 29 labels"),
        (["a"] * 15 + ["b"] * 15, {"mode": "frozen"}, "unknown mode 'frozen'"),
    ],
)
def test_bad_inputs_are_clear_errors(images_labels, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        finetune(images_labels[0], labels, **{**TINY, **kwargs})


def test_unreachable_imagenet_weights_say_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", no_network)  # what keras.applications calls
    with pytest.raises(WeightsUnavailable, match=r"inception_v3_weights_tf_dim_ordering_tf_kernels_notop\.h5"):
        build_classifier(3, weights="imagenet", image_size=SIDE)


def test_checkpoint_is_usable_as_extractor_weights(tmp_path):
    from semcurate.features.inception import InceptionV3Extractor

    model = build_classifier(3, mode="transfer", weights="none", image_size=SIDE, random_state=2)
    path = save_checkpoint(model, tmp_path / "tuned.keras")
    images = [draw_specimen(LEAVES[0], np.random.default_rng(seed), 96, 128) for seed in range(3)]
    extractor = InceptionV3Extractor(weights=path)
    outputs = extractor.transform(images)
    expected = checkpoint_outputs(model, to_inception_input(images, SIDE))
    assert extractor.outputs == {"pool": 2048, "logits": 3} and extractor.weights_tag.startswith("ft")
    assert np.allclose(outputs["pool"], expected["pool"], atol=1e-5)
    assert np.allclose(outputs["logits"], expected["logits"], atol=1e-5)
