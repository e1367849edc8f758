"""Loading TensorFlow quietly: its C++ start-up lines are not for users.

Every function that needs Keras calls :func:`quiet_tensorflow` just before its
own ``import keras``, so importing :mod:`semcurate.features` stays cheap and
the environment is only touched when TensorFlow is really loaded.
"""

from __future__ import annotations

import os


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up lines (instruction sets, oneDNN) for the import that follows.

    ``TF_CPP_MIN_LOG_LEVEL`` must be set before TensorFlow is first imported;
    a value the user set is kept (``setdefault``), so ``TF_CPP_MIN_LOG_LEVEL=0``
    brings the lines back when debugging.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
