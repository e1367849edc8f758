"""Feature learning: CNN activations, 2-NN intrinsic dimension, autoencoder codes (thesis chapter 3).

Modules: :mod:`~semcurate.features.inception` and
:mod:`~semcurate.features.classic` (extractors),
:mod:`~semcurate.features.store` (HDF5 rows keyed by image md5),
:mod:`~semcurate.features.intrinsic_dimension` (``TwoNN``),
:mod:`~semcurate.features.autoencoder` (``TiedAutoencoder``),
:mod:`~semcurate.features.distances` (heatmaps against the label distance).
``TwoNN`` and ``TiedAutoencoder`` are importable from here; TensorFlow is only
loaded when a model is built.
"""

import os

# TensorFlow's C++ start-up chatter (CPU instruction sets, oneDNN) is not for users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def __getattr__(name: str):
    if name == "TwoNN":
        from semcurate.features.intrinsic_dimension import TwoNN

        return TwoNN
    if name == "TiedAutoencoder":
        from semcurate.features.autoencoder import TiedAutoencoder

        return TiedAutoencoder
    raise AttributeError(f"module 'semcurate.features' has no attribute {name!r}")
