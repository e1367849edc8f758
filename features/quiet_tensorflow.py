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
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

#: Environment variable that ``semcurate --verbose`` sets: TensorFlow's and Keras' own messages are shown.
VERBOSE_VARIABLE = "SEMCURATE_VERBOSE"


def verbose() -> bool:
    """Whether the user asked for TensorFlow's and Keras' own messages (``semcurate --verbose``)."""
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


#: TensorFlow's start-up lines that ``TF_CPP_MIN_LOG_LEVEL`` does not hide: on CPUs with AMX (Sapphire Rapids)
#: TensorFlow 2.21 announces oneDNN through absl before absl's logging is set up, twice per import.
_START_UP_LINE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|\] oneDNN custom operations are on|cpu_feature_guard"
)


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up lines (instruction sets, oneDNN) and import it.

    ``TF_CPP_MIN_LOG_LEVEL`` must be set before TensorFlow is first imported;
    a value the user set is kept (``setdefault``), so ``TF_CPP_MIN_LOG_LEVEL=0``
    brings the lines back when debugging, as does ``--verbose``.  The lines
    it does not hide (:data:`_START_UP_LINE`) are filtered out of what the
    import writes to the standard error; anything else it writes is passed on.
    """
    if verbose() or os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2") not in ("2", "3"):
        return
    if "tensorflow" in sys.modules:
        return
    with _start_up_lines_filtered():
        import tensorflow  # noqa: F401  (imported here, under the filter, for the caller's import to find)


@contextmanager
def _start_up_lines_filtered() -> Iterator[None]:
    """Within the block, what is written to file descriptor 2 (C++ and Python alike) is held back, then written
    to ``sys.stderr`` without the lines :data:`_START_UP_LINE` matches."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _START_UP_LINE.search(line)))


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
