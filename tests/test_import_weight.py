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
