"""What the benchmarks share about a shared machine: waiting for it to be quiet before a timed run.

The bench scripts run as ``python bench/NAME.py``, so this module is imported
from the script's own folder.
"""

from __future__ import annotations

import argparse
import os
import time


def wait_for_quiet(threshold: float, max_wait_s: float = 300.0) -> float:
    """Wait until the 1-minute load average is below ``threshold`` (at most ``max_wait_s`` seconds); return it.

    Our own previous run keeps the average up for a minute or two after it
    ends (it decays with a 1-minute time constant), so without the wait the
    reading before a run measures us as much as the other users of the
    machine.  ``threshold`` 0 disables the wait.
    """
    deadline = time.monotonic() + max_wait_s
    while threshold > 0 and os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def add_quiet_load_option(parser: argparse.ArgumentParser) -> None:
    """The ``--quiet-load`` option of every timing script (default 1.0 on this 2-core machine)."""
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=1.0,
        help="before each timed run, wait (up to 5 min) for the 1-minute load average to fall below "
        "this (0: do not wait)",
    )
