"""Transfer learning and fine-tuning of Inception-V3 on labelled SEM categories, thesis section 3.1.

The prior work retrained Inception-V3 on the ten SEM categories in two ways,
both offered here as ``mode``:

* ``"transfer"`` — the ImageNet-trained convolutional base is frozen and only a
  new classifier head (dropout + dense softmax) is trained;
* ``"finetune"`` — every layer is trained, starting from the same weights, with
  a small learning rate so the pretrained features are adjusted, not erased.

The images are split 80 / 10 / 10 % into train, validation and test sets,
stratified by category; the report holds the test accuracy, the recall per
category and the confusion matrix.  The trained model keeps the layer names of
Keras' InceptionV3 classifier — ``avg_pool`` for the 2048 pooled activations,
``predictions`` for the dense head — so a saved checkpoint can later serve as
feature-extractor weights (:func:`checkpoint_outputs`).

This module is core: arrays in, a model and a :class:`FinetuneReport` out; the
only file it touches is the checkpoint written by :func:`save_checkpoint`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semcurate.features.inception import IMAGENET_WEIGHTS_FILE, WeightsUnavailable, to_inception_input
from semcurate.features.quiet_tensorflow import quiet_keras_messages, quiet_tensorflow

#: Modes of :func:`build_classifier` and their Adam learning rates.
LEARNING_RATES = {"transfer": 1e-3, "finetune": 1e-4}
#: Smallest input side InceptionV3 accepts, px.
MIN_IMAGE_SIZE = 75
#: Fewest images of a category :func:`finetune` accepts (one per split).
MIN_CLASS_SIZE = 3


@dataclass(frozen=True)
class FinetuneReport:
    """What a training run did and how well the model classifies the held-out test split.

    Attributes
    ----------
    classes : list of str
        Category names, sorted; the model's output ``k`` is ``classes[k]``.
    mode : str
        ``"transfer"`` or ``"finetune"``.
    image_size : int
        Side of the square model input, px.
    epochs : int
        Training epochs.
    split_sizes : dict
        ``{"train": n, "validation": n, "test": n}`` image counts.
    test_accuracy : float
        Fraction of test images classified correctly.
    per_class_accuracy : dict
        Recall of each category on the test split; NaN for a category without
        test images (see :func:`stratified_split`).
    confusion : list of list of int
        Test confusion matrix, ``confusion[true][predicted]`` in ``classes`` order.
    history : dict
        Keras' per-epoch ``loss``, ``accuracy`` (and ``val_loss``, ``val_accuracy``
        when there is a validation split).
    """

    classes: list[str]
    mode: str
    image_size: int
    epochs: int
    split_sizes: dict[str, int]
    test_accuracy: float
    per_class_accuracy: dict[str, float]
    confusion: list[list[int]]
    history: dict[str, list[float]]


def stratified_split(
    labels: list[str], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), random_state: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test indices, stratified by label.

    Parameters
    ----------
    labels : list of str
        One label per item.
    fractions : tuple of float
        Train, validation and test fractions, summing to 1.
    random_state : int
        Seed of the shuffles.

    Returns
    -------
    train, validation, test : numpy.ndarray
        Sorted integer indices into ``labels``; together they hold every index once.

    Notes
    -----
    Two calls of :func:`sklearn.model_selection.train_test_split` with
    ``stratify``: train against the rest, then the rest into validation and
    test.  A category needs at least ``ceil(2 / (validation + test))`` members
    (10 with the defaults) so that the rest holds two of it to stratify again;
    smaller categories go to the train split whole, so every category is
    trained on but a small one is not tested.
    """
    from sklearn.model_selection import train_test_split

    if len(fractions) != 3 or min(fractions) <= 0 or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    labels_array = np.asarray(labels, dtype=object)
    rest_fraction = fractions[1] + fractions[2]
    min_members = math.ceil(round(2 / rest_fraction, 9))
    names, counts = np.unique(labels_array, return_counts=True)
    large = np.isin(labels_array, names[counts >= min_members])
    small_indices = np.flatnonzero(~large)
    stratifiable = np.flatnonzero(large)
    if stratifiable.size == 0:
        return small_indices, np.array([], dtype=int), np.array([], dtype=int)
    train, rest = train_test_split(
        stratifiable, test_size=rest_fraction, random_state=random_state, stratify=labels_array[stratifiable]
    )
    validation, test = train_test_split(
        rest, test_size=fractions[2] / rest_fraction, random_state=random_state, stratify=labels_array[rest]
    )
    return np.sort(np.concatenate([train, small_indices])), np.sort(validation), np.sort(test)


def build_classifier(
    n_classes: int,
    *,
    mode: str = "transfer",
    weights: str | Path = "imagenet",
    image_size: int = 299,
    random_state: int = 0,
):
    """Compiled Inception-V3 classifier with a new head of ``n_classes`` outputs.

    Parameters
    ----------
    n_classes : int
        Number of categories.
    mode : {"transfer", "finetune"}
        ``"transfer"`` freezes the convolutional base (batch normalisation
        included) and trains the head with Adam at 1e-3; ``"finetune"`` trains
        every layer with Adam at 1e-4.
    weights : str or Path
        Weights of the base: ``"imagenet"`` (downloaded and cached by Keras),
        ``"none"`` (random, seeded by ``random_state``), or the path of a Keras
        weights file of the base without its top
        (``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5``).  To go
        on training a saved classifier, use :func:`load_checkpoint` instead.
    image_size : int
        Side of the square input, at least 75 px.
    random_state : int
        Seed of the head's (and, with ``"none"``, the base's) initialisation.

    Returns
    -------
    keras.Model
        ``input → InceptionV3 base → avg_pool (2048) → dropout → predictions (softmax)``,
        all layers at the top level, compiled with sparse categorical cross-entropy.

    Raises
    ------
    WeightsUnavailable
        If the ImageNet weights cannot be fetched or the weights file cannot be loaded.
    """
    quiet_tensorflow()
    import keras

    if mode not in LEARNING_RATES:
        raise ValueError(f"unknown mode {mode!r}: use one of {sorted(LEARNING_RATES)}")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE} px for InceptionV3, got {image_size}")
    keras.utils.set_random_seed(random_state)
    weights = str(weights)
    source = None if weights == "none" else weights
    if source not in (None, "imagenet") and not Path(source).is_file():
        raise WeightsUnavailable(f"weights file {source} does not exist")
    try:
        with quiet_keras_messages(keras):
            base = keras.applications.InceptionV3(
                include_top=False, weights=source, input_shape=(image_size, image_size, 3)
            )
    except Exception as error:  # Keras raises bare Exception/OSError/ValueError kinds for fetch and file errors
        if source == "imagenet":
            raise WeightsUnavailable(
                f"cannot load the ImageNet weights of InceptionV3 ({type(error).__name__}: no network?): "
                f"put {IMAGENET_WEIGHTS_FILE.replace('.h5', '_notop.h5')} in ~/.keras/models/ "
                "or pass a weights file (or weights 'none' for random weights)"
            ) from None
        raise WeightsUnavailable(f"cannot load weights {source}: {error}") from None
    base.trainable = mode == "finetune"
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    dropped = keras.layers.Dropout(0.5, name="dropout")(pooled)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(dropped)
    model = keras.Model(base.input, outputs, name=f"inception_v3_{mode}")
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATES[mode]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def finetune(
    grey_images: list[np.ndarray],
    labels: list[str],
    *,
    mode: str = "transfer",
    weights: str | Path = "imagenet",
    epochs: int = 5,
    image_size: int = 299,
    batch_size: int = 16,
    random_state: int = 0,
):
    """Train an Inception-V3 classifier on labelled grey images and test it on a held-out split.

    Parameters
    ----------
    grey_images : list of numpy.ndarray
        2-D uint8 images of any size, data bar already cropped.
    labels : list of str
        Category of each image; at least two categories of at least three images.
    mode, weights, image_size, random_state
        As in :func:`build_classifier`.
    epochs, batch_size : int
        Training epochs and mini-batch size.

    Returns
    -------
    model : keras.Model
        The trained classifier.
    report : FinetuneReport
        Split sizes, training history and test scores.

    Notes
    -----
    The split is :func:`stratified_split` at 80 / 10 / 10 %; the validation
    split only feeds the history.  All images are held in memory at
    ``image_size``: ``12 * image_size**2`` bytes each (3.2 MB at 299 px).
    """
    if len(grey_images) != len(labels):
        raise ValueError(f"{len(grey_images)} images but {len(labels)} labels")
    if mode not in LEARNING_RATES:
        raise ValueError(f"unknown mode {mode!r}: use one of {sorted(LEARNING_RATES)}")
    classes, targets, counts = np.unique(np.asarray(labels, dtype=object), return_inverse=True, return_counts=True)
    classes = [str(name) for name in classes]
    if len(classes) < 2:
        raise ValueError(f"need at least 2 categories to classify, got {classes}")
    too_small = [f"{name} ({count})" for name, count in zip(classes, counts, strict=True) if count < MIN_CLASS_SIZE]
    if too_small:
        raise ValueError(f"cannot stratify categories with fewer than {MIN_CLASS_SIZE} images: {', '.join(too_small)}")
    train, validation, test = stratified_split(list(labels), random_state=random_state)
    if test.size == 0:
        raise ValueError("no test split: at least one category needs 10 images or more")
    batch = to_inception_input(grey_images, image_size)
    model = build_classifier(len(classes), mode=mode, weights=weights, image_size=image_size, random_state=random_state)
    validation_data = (batch[validation], targets[validation]) if validation.size else None
    history = model.fit(
        batch[train], targets[train], epochs=epochs, batch_size=batch_size, validation_data=validation_data, verbose=0
    )
    predicted = np.argmax(model.predict(batch[test], batch_size=batch_size, verbose=0), axis=1)
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(confusion, (targets[test], predicted), 1)
    totals = confusion.sum(axis=1)
    per_class = {name: float(confusion[k, k] / totals[k]) if totals[k] else math.nan for k, name in enumerate(classes)}
    report = FinetuneReport(
        classes=classes,
        mode=mode,
        image_size=image_size,
        epochs=epochs,
        split_sizes={"train": int(train.size), "validation": int(validation.size), "test": int(test.size)},
        test_accuracy=float(np.trace(confusion) / test.size),
        per_class_accuracy=per_class,
        confusion=confusion.tolist(),
        history={key: [float(value) for value in values] for key, values in history.history.items()},
    )
    return model, report


def save_checkpoint(model, path: str | Path) -> Path:
    """Write the whole model (architecture, weights, optimiser state) to a ``.keras`` file; return its path."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"checkpoint path must end with .keras, got {path.name}")
    model.save(path)
    return path


def load_checkpoint(path: str | Path):
    """The model saved by :func:`save_checkpoint`."""
    quiet_tensorflow()
    import keras

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return keras.models.load_model(path)


def checkpoint_outputs(model, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Pooled activations and pre-softmax scores of a trained classifier.

    Parameters
    ----------
    model : keras.Model
        A model from :func:`build_classifier`, :func:`finetune` or :func:`load_checkpoint`.
    batch : numpy.ndarray
        Preprocessed input ``(n, side, side, 3)``, see :func:`to_inception_input`.

    Returns
    -------
    dict
        ``"pool"`` — ``(n, 2048)`` activations of layer ``avg_pool``;
        ``"logits"`` — ``(n, n_classes)`` scores ``pool @ W + b`` of layer ``predictions``.
    """
    quiet_tensorflow()
    import keras

    pool_model = keras.Model(model.inputs, model.get_layer("avg_pool").output)
    pool = np.asarray(pool_model.predict_on_batch(batch), dtype=np.float32)
    kernel, bias = (np.asarray(weight) for weight in model.get_layer("predictions").get_weights())
    return {"pool": pool, "logits": (pool @ kernel + bias).astype(np.float32)}
