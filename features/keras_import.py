"""Importing Keras once, quietly: TensorFlow's C++ start-up lines are not for users.

Every module that needs Keras calls :func:`import_keras` inside the function
that needs it, so importing :mod:`semcurate.features` stays cheap and the
environment is only touched when TensorFlow is really loaded.
"""

from __future__ import annotations

import os
from types import ModuleType


def import_keras() -> ModuleType:
    """Import and return ``keras`` with TensorFlow's C++ log level at warnings-and-above hidden.

    ``TF_CPP_MIN_LOG_LEVEL`` must be set before TensorFlow is first imported;
    a value the user set is kept (``setdefault``), so ``TF_CPP_MIN_LOG_LEVEL=0``
    brings the start-up lines back when debugging.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras
