"""Importing the pure cores loads no matplotlib: it is imported inside the plotting functions only.

A fresh interpreter is needed, since the test session itself has long imported matplotlib.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Cores that draw figures (or, for the data bar, use matplotlib's font) but must not import it to load.
CORES_WITH_PLOTS = (
    "semcurate.features.intrinsic_dimension",
    "semcurate.clustering.density_peaks",
    "semcurate.clustering.n_clusters",
    "semcurate.features.distances",
    "semcurate.evaluation.compare2d",
    "semcurate.datasets.databar",
)


def test_importing_the_cores_loads_no_matplotlib():
    code = (
        f"import sys, {', '.join(CORES_WITH_PLOTS)}\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'matplotlib'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_keras_is_imported_without_tensorflow_start_up_lines():
    env = {key: value for key, value in __import__("os").environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    code = (
        "from semcurate.features.quiet_tensorflow import quiet_tensorflow\n"
        "quiet_tensorflow()\nimport keras\nimport tensorflow as tf\ntf.constant(1)"
    )
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    loud = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf\ntf.constant(1)"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert quiet.returncode == 0 and loud.returncode == 0
    # TensorFlow's CPU build announces its instruction sets on start-up; that line is what must not reach users.
    assert "cpu_feature_guard" in loud.stderr
    assert quiet.stderr == ""


@pytest.mark.slow
def test_the_download_line_of_keras_is_shown_only_when_verbose():
    import os

    # A refused connection on the loopback interface: Keras announces the download, then fails at once.
    code = (
        "import keras\n"
        "from semcurate.features.quiet_tensorflow import quiet_keras_messages, quiet_tensorflow\n"
        "quiet_tensorflow()\n"
        "try:\n"
        "    with quiet_keras_messages(keras):\n"
        "        keras.utils.get_file('w.h5', 'http://127.0.0.1:9/w.h5', cache_dir=__import__('tempfile').mkdtemp())\n"
        "except Exception as error:\n"
        "    print('failed:', type(error).__name__)\n"
        "print('interactive after:', keras.config.is_interactive_logging_enabled())\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "SEMCURATE_VERBOSE"}
    runs = {
        flag: subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=300,
            env={**environment, **({"SEMCURATE_VERBOSE": "1"} if flag else {})},
        )
        for flag in (False, True)
    }
    quiet, loud = runs[False], runs[True]
    assert "failed:" in quiet.stdout and "failed:" in loud.stdout, (quiet.stderr, loud.stderr)
    assert "Downloading data from http://127.0.0.1:9/w.h5" in loud.stdout
    assert "Downloading" not in quiet.stdout + quiet.stderr
    # The switch is restored: progress bars a caller asks for later still reach the terminal.
    assert "interactive after: True" in quiet.stdout


def test_only_tensorflows_start_up_lines_are_held_back(capfd):
    """What the C++ side writes to descriptor 2 during the import passes, except the start-up lines themselves."""
    import os

    from semcurate.features.quiet_tensorflow import _start_up_lines_filtered

    with _start_up_lines_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1.5 26677 port.cc:153] oneDNN custom operations are on. You may see ...\n")
        os.write(2, b"E0000 a real error from a shared library\n")
        print("a Python warning", file=sys.stderr)
    # (pytest's own sys.stderr bypasses descriptor 2, so the Python line may come first)
    assert sorted(capfd.readouterr().err.splitlines()) == [
        "E0000 a real error from a shared library",
        "a Python warning",
    ]
