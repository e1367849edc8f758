"""Loading TensorFlow and Keras quietly: their start-up and download lines are not for users.

Every function that needs Keras calls :func:`quiet_tensorflow` just before its
own ``import keras``, so importing :mod:`semcurate.features` stays cheap and
the environment is only touched when TensorFlow is really loaded; weights are
loaded inside :func:`quiet_keras_messages`.  ``semcurate --verbose`` sets
:data:`VERBOSE_VARIABLE` (inherited by worker processes), which brings every
line back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

#: Environment variable that ``semcurate --verbose`` sets: TensorFlow's and Keras' own messages are shown.
VERBOSE_VARIABLE = "SEMCURATE_VERBOSE"


def verbose() -> bool:
    """Whether the user asked for TensorFlow's and Keras' own messages (``semcurate --verbose``)."""
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up lines (instruction sets, oneDNN) for the import that follows.

    ``TF_CPP_MIN_LOG_LEVEL`` must be set before TensorFlow is first imported;
    a value the user set is kept (``setdefault``), so ``TF_CPP_MIN_LOG_LEVEL=0``
    brings the lines back when debugging, as does ``--verbose``.
    """
    if not verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextmanager
def quiet_keras_messages(keras: ModuleType) -> Iterator[None]:
    """Within the block, Keras' messages to the terminal (``Downloading data from …``) are off unless verbose.

    Keras then sends them to absl's log at INFO level, which is not shown by
    default; the previous setting is restored afterwards so that training
    progress bars a caller asked for still appear.
    """
    if verbose() or not keras.config.is_interactive_logging_enabled():
        yield
        return
    keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        keras.config.enable_interactive_logging()
