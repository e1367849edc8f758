"""A small CNN trained on the repository's own images without labels (SimCLR-style contrastive learning).

ImageNet weights cannot be downloaded on every machine, and a randomly
initialised Inception-V3 describes SEM textures poorly.  A network can still
learn from the unlabelled images themselves: SimCLR [1]_ shows each image
twice, each time through a different random augmentation, and trains the
network so that the two views of one image are closer to each other than to
the views of every other image of the batch (the normalised temperature-scaled
cross-entropy, NT-Xent).  What survives the augmentations -- the texture's
kind, not where it was cut, which way up it lies, its contrast or its noise --
is what the embedding keeps.

:class:`ContrastiveExtractor` is CPU-sized: four convolution blocks
(3 x 3 convolution, batch normalisation, ReLU, 2 x 2 max pooling; 32, 64, 128
and 128 filters), global average pooling to the embedding (128 values), and
a two-layer projection head used only by the loss.  Images are centre-cropped
square, resampled to ``size`` px (96) and standardised; training views are
random ``crop`` px (64) windows at the same pixel scale (no resized crops:
sub-categories differ in feature size, which the embedding must keep), a
random quarter turn and mirror, a random contrast (x 0.6-1.4) and brightness
(+- 0.4 standard deviations) and Gaussian noise (0-0.3 standard deviations).
The embedding of an image is computed on its whole ``size`` px square (the
network is fully convolutional up to the pooling).

The augmentations come from a NumPy generator seeded with ``random_state``
and the weights from ``keras.utils.set_random_seed(random_state)``, so one
seed gives one embedding on one machine.

References
----------
.. [1] T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A simple framework
   for contrastive learning of visual representations", ICML 2020, 1597-1607.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from semcurate.features.quiet_tensorflow import quiet_tensorflow

#: Smallest accepted image side, px.
MIN_SIDE = 8
_FILTERS = (32, 64, 128, 128)
_PROJECTION = 64


def to_network_input(grey_images: list[np.ndarray], size: int) -> np.ndarray:
    """``(n, size, size, 1)`` float32: each 2-D grey image centre-cropped square, resampled and standardised.

    Resampling averages areas when shrinking and is bilinear when growing;
    each image then has zero mean and unit variance (a flat image becomes
    zeros), so brightness and contrast do not reach the network.

    Raises
    ------
    ValueError
        If an image is not 2-D or a side is shorter than 8 px.
    """
    batch = np.empty((len(grey_images), size, size, 1), dtype=np.float32)
    for index, grey in enumerate(grey_images):
        grey = np.asarray(grey)
        if grey.ndim != 2:
            raise ValueError(f"expected a 2-D grey image, got shape {grey.shape}; convert colour images to grey first")
        if min(grey.shape) < MIN_SIDE:
            raise ValueError(f"image of shape {grey.shape} is too small; both sides must be at least {MIN_SIDE} px")
        side = min(grey.shape)
        top, left = (grey.shape[0] - side) // 2, (grey.shape[1] - side) // 2
        pixels = np.clip(np.nan_to_num(grey[top : top + side, left : left + side].astype(np.float32)), 0, 255)
        square = Image.fromarray(pixels, mode="F")
        method = Image.Resampling.BOX if side >= size else Image.Resampling.BILINEAR
        pixels = np.asarray(square.resize((size, size), method))
        centred = pixels - pixels.mean()
        spread = centred.std()
        batch[index, ..., 0] = centred / spread if spread > 1e-3 else 0.0
    return batch


def augment(batch: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """One random view of each image of ``batch`` ``(n, size, size, 1)``: ``(n, crop, crop, 1)`` float32.

    A ``crop`` px window at a random place, a random multiple of 90 degrees,
    a random mirror, contrast x U(0.6, 1.4), brightness + U(-0.4, 0.4) and
    Gaussian noise of standard deviation U(0, 0.3) (units: the image's own
    standard deviation).
    """
    count, size = batch.shape[0], batch.shape[1]
    views = np.empty((count, crop, crop, 1), dtype=np.float32)
    for index in range(count):
        top, left = rng.integers(0, size - crop + 1, 2)
        view = np.rot90(batch[index, top : top + crop, left : left + crop], int(rng.integers(0, 4)))
        if rng.random() < 0.5:
            view = view[:, ::-1]
        noise = rng.standard_normal(view.shape, dtype=np.float32) * np.float32(rng.uniform(0.0, 0.3))
        views[index] = view * np.float32(rng.uniform(0.6, 1.4)) + np.float32(rng.uniform(-0.4, 0.4)) + noise
    return views


def nt_xent(projections, temperature: float):
    """SimCLR's loss for a batch ``(2 B, d)`` holding the first views of B images, then their second views.

    Each row's positive is its other view; the other ``2 B - 2`` rows are its
    negatives.  Returns the per-row cross-entropy of the positive among all
    others, on cosine similarities divided by ``temperature``.
    """
    from keras import ops

    normalised = projections / (ops.norm(projections, axis=1, keepdims=True) + 1e-8)
    rows = ops.shape(normalised)[0]
    logits = ops.matmul(normalised, ops.transpose(normalised)) / temperature
    logits = logits - 1e9 * ops.eye(rows, dtype=logits.dtype)  # a row is not its own positive
    partner = (ops.arange(rows) + rows // 2) % rows
    return ops.sparse_categorical_crossentropy(partner, logits, from_logits=True)


class ContrastiveExtractor:
    """Embedding of a small CNN trained by contrasting augmented views of unlabelled images (extractor ``contrastive``).

    Parameters
    ----------
    size : int, default 96
        Side, px, of the square each image is resampled to.
    crop : int, default 64
        Side, px, of the training views cut from it (at most ``size``, at least 16).
    epochs : int, default 30
        Passes over the images; 0 leaves the network at its random
        initialisation (a baseline).
    batch_size : int, default 64
        Images per step (each seen twice: 2 x ``batch_size`` views, every
        other image's views being the negatives).
    temperature : float, default 0.2
        Of the NT-Xent loss.
    learning_rate : float, default 1e-3
        Of Adam.
    random_state : int, default 0
        Seeds the weights and the augmentations.

    Attributes
    ----------
    name : str
        ``"contrastive"``.
    outputs : dict
        ``{"contrastive": 128}``.
    encoder_ : keras.Model
        The trained network up to the pooled embedding (after :meth:`fit`).
    loss_ : list of float
        Mean NT-Xent loss per epoch.
    weights_digest : str
        SHA-256 of the trained weights (after :meth:`fit`); ``weights_tag`` is
        ``ssl`` and its first 8 hex digits.

    Notes
    -----
    Training costs about ``epochs x n x 2`` forward and backward passes of a
    64 px view (about 40 MFLOP forward): roughly 0.1 s per image and epoch on
    two CPU cores, so 540 images x 30 epochs take a few minutes.  Memory is
    the ``n x size^2 x 4`` bytes of the resampled images plus one batch.
    """

    name = "contrastive"
    weights = "self-supervised"

    def __init__(
        self,
        *,
        size: int = 96,
        crop: int = 64,
        epochs: int = 30,
        batch_size: int = 64,
        temperature: float = 0.2,
        learning_rate: float = 1e-3,
        random_state: int = 0,
    ):
        self.size, self.crop, self.epochs, self.batch_size = size, crop, epochs, batch_size
        self.temperature, self.learning_rate, self.random_state = temperature, learning_rate, random_state
        self.input_size = (size, size)
        self.outputs = {"contrastive": _FILTERS[-1]}

    def _build(self):
        quiet_tensorflow()
        import keras

        keras.utils.set_random_seed(self.random_state)
        inputs = keras.Input((None, None, 1))
        hidden = inputs
        for filters in _FILTERS:
            hidden = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(hidden)
            hidden = keras.layers.BatchNormalization()(hidden)
            hidden = keras.layers.ReLU()(hidden)
            hidden = keras.layers.MaxPooling2D(2)(hidden)
        embedding = keras.layers.GlobalAveragePooling2D(name="embedding")(hidden)
        encoder = keras.Model(inputs, embedding, name="contrastive_encoder")
        projected = keras.layers.Dense(_FILTERS[-1], activation="relu")(embedding)
        projected = keras.layers.Dense(_PROJECTION)(projected)
        trainer = keras.Model(inputs, projected, name="contrastive_trainer")
        temperature = self.temperature
        trainer.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss=lambda _unused, projections: nt_xent(projections, temperature),
        )
        return encoder, trainer

    def fit(self, grey_images: list[np.ndarray]) -> ContrastiveExtractor:
        """Train on unlabelled grey images (2-D, any size, at least 2 of them); return ``self``.

        Raises
        ------
        ValueError
            If fewer than 2 images are given, an image is not 2-D or too
            small, or ``crop`` is not within 16 .. ``size``.
        """
        if not 16 <= self.crop <= self.size:
            raise ValueError(f"crop must be between 16 and size={self.size} px, got {self.crop}")
        if len(grey_images) < 2:
            raise ValueError(f"need at least 2 images to contrast, got {len(grey_images)}")
        images = to_network_input(grey_images, self.size)
        self.encoder_, trainer = self._build()
        rng = np.random.default_rng(self.random_state)
        per_step = min(self.batch_size, len(images))
        steps = len(images) // per_step
        self.loss_ = []
        for _ in range(self.epochs):
            order = rng.permutation(len(images))[: steps * per_step].reshape(steps, per_step)
            # each block of 2 x per_step rows: first views of a chunk of images, then their second views
            views = np.concatenate([view for chunk in order for view in self._two_views(images[chunk], rng)])
            history = trainer.fit(
                views, np.zeros(len(views), np.float32), batch_size=2 * per_step, shuffle=False, epochs=1, verbose=0
            )
            self.loss_.append(float(history.history["loss"][0]))
        digest = hashlib.sha256()
        for weight in self.encoder_.get_weights():
            digest.update(np.ascontiguousarray(weight).tobytes())
        self.weights_digest = digest.hexdigest()
        self.weights_tag = f"ssl{self.weights_digest[:8]}"
        return self

    def _two_views(self, images: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Two independent random views of each image (:func:`augment`)."""
        return augment(images, self.crop, rng), augment(images, self.crop, rng)

    def transform(self, grey_images: list[np.ndarray]) -> dict[str, np.ndarray]:
        """``{"contrastive": rows}``: ``float32`` embeddings of shape ``(len(grey_images), 128)``.

        Raises
        ------
        RuntimeError
            If :meth:`fit` has not been called.
        """
        if not hasattr(self, "encoder_"):
            raise RuntimeError("ContrastiveExtractor is not fitted: call fit(images) first")
        batch = to_network_input(grey_images, self.size)
        rows = [
            np.asarray(self.encoder_.predict_on_batch(batch[start : start + 64]), dtype=np.float32)
            for start in range(0, len(batch), 64)
        ]
        return {"contrastive": np.concatenate(rows) if rows else np.empty((0, _FILTERS[-1]), np.float32)}
