"""Inception-V3 activations with Keras (TensorFlow backend), thesis section 3.1 and Table 3.1.

Two outputs per image:

* ``pool`` — the 2048 activations of the global average pool, the layer the
  thesis calls ``Logits/Dropout_1b`` (dropout is the identity at inference);
* ``logits`` — the pre-softmax scores of the classifier (the thesis'
  ``SpatialSqueeze``), 1000 with the ImageNet head.  They are computed as
  ``pool @ W + b`` with the weights of the model's last dense layer, so the
  same code serves any head.

Weights are ``"imagenet"`` (Keras downloads and caches them; on a machine
without network the download fails and :class:`WeightsUnavailable` says where
to put the file), ``"none"`` (random initialisation from ``random_state``, for
tests and machines without weights), the path of a local weights file
(``.h5``/``.weights.h5`` for the full ImageNet-shaped model), or a ``.keras``
checkpoint written by ``semcurate finetune`` (its ``avg_pool`` layer and its
``predictions`` head, at the checkpoint's own input size).

Grey images are replicated to three channels, resized to 299 × 299 px
(bilinear) and scaled to [-1, 1] as Inception expects
(``keras.applications.inception_v3.preprocess_input``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

from semcurate.features.quiet_tensorflow import quiet_keras_messages, quiet_tensorflow

#: Side of the square input, px.
INPUT_SIDE = 299
#: Keras' file name of the ImageNet weights, where ``keras.applications`` caches it.
IMAGENET_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"


class WeightsUnavailable(RuntimeError):
    """The requested weights cannot be loaded; the message says what to do instead."""


def keras_home() -> Path:
    """Where Keras caches downloads: ``$KERAS_HOME`` or ``~/.keras``."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def to_inception_input(grey_images: list[np.ndarray], side: int = INPUT_SIDE) -> np.ndarray:
    """``(n, side, side, 3)`` float32 in [-1, 1] from 2-D uint8 grey images of any size."""
    batch = np.empty((len(grey_images), side, side, 3), dtype=np.float32)
    for index, grey in enumerate(grey_images):
        resized = Image.fromarray(grey).resize((side, side), Image.Resampling.BILINEAR)
        batch[index] = np.asarray(resized, dtype=np.float32)[..., None]
    return batch / 127.5 - 1.0  # keras.applications.inception_v3.preprocess_input, without the import


class InceptionV3Extractor:
    """Pool and logit activations of Keras' InceptionV3.

    Parameters
    ----------
    weights : str or Path
        ``"imagenet"``, ``"none"`` or a local weights file.
    random_state : int
        Seed of the random initialisation when ``weights="none"``.
    """

    name = "inception_v3"

    def __init__(self, *, weights: str | Path = "imagenet", random_state: int = 0):
        quiet_tensorflow()
        import keras

        self.weights = str(weights)
        if self.weights == "none":
            keras.utils.set_random_seed(random_state)
            self.weights_tag, self.weights_digest = "random", f"random-init-seed-{random_state}"
            source = None
        elif self.weights == "imagenet":
            self.weights_tag, self.weights_digest, source = "imagenet", "keras-imagenet", "imagenet"
        else:
            path = Path(self.weights)
            if not path.is_file():
                raise WeightsUnavailable(f"weights file {path} does not exist")
            self.weights_digest = file_digest(path)
            finetuned = path.suffix == ".keras"
            self.weights_tag = f"{'ft' if finetuned else 'w'}{self.weights_digest[:8]}"
            source = str(path)
        try:
            with quiet_keras_messages(keras):
                if source is not None and source.endswith(".keras"):
                    model = keras.saving.load_model(source, compile=False)  # a `semcurate finetune` checkpoint
                else:
                    model = keras.applications.InceptionV3(weights=source, include_top=True)
        except Exception as error:  # Keras raises bare Exception/OSError/ValueError kinds for fetch and file errors
            raise WeightsUnavailable(self._advice(error)) from None
        self.side = int(model.input_shape[1])
        self.input_size = (self.side, self.side)
        if source == "imagenet":
            cached = keras_home() / "models" / IMAGENET_WEIGHTS_FILE
            self.weights_digest = file_digest(cached) if cached.is_file() else self.weights_digest
        classifier = model.layers[-1]
        self._kernel, self._bias = (np.asarray(weight) for weight in classifier.get_weights())
        self._pool_model = keras.Model(model.input, model.get_layer("avg_pool").output)
        self.outputs = {"pool": int(self._kernel.shape[0]), "logits": int(self._kernel.shape[1])}

    def _advice(self, error: Exception) -> str:
        if self.weights == "imagenet":
            return (
                f"cannot load the ImageNet weights of InceptionV3 ({type(error).__name__}: no network?): "
                f"put {IMAGENET_WEIGHTS_FILE} in ~/.keras/models/ or pass --weights PATH "
                "(or --weights none for random weights, or --extractor classic)"
            )
        return f"cannot load weights {self.weights}: {error}"

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs for a preprocessed batch ``(n, 299, 299, 3)``."""
        pool = np.asarray(self._pool_model.predict_on_batch(batch), dtype=np.float32)
        return {"pool": pool, "logits": (pool @ self._kernel + self._bias).astype(np.float32)}

    def prepare(self, grey_images: list[np.ndarray]) -> np.ndarray:
        """The network's input batch for 2-D uint8 grey images of any size (no TensorFlow involved)."""
        return to_inception_input(grey_images, self.side)

    def transform(self, grey_images: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs for 2-D uint8 grey images of any size."""
        return self.predict(self.prepare(grey_images))
