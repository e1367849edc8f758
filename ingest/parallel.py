"""Ordered parallel map over worker processes, and batching for database writes."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

#: ``prctl`` option that delivers a signal to a process when its parent exits (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def _die_with_parent(initializer, initargs) -> None:
    """Worker start-up: ask Linux to kill this worker when its parent dies, then run ``initializer``.

    Without this, a parent killed with SIGKILL leaves its pool's workers
    waiting for work forever.  Elsewhere only the initializer runs.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
    if initializer is not None:
        initializer(*initargs)


def parallel_map(function: Callable, items: list, workers: int, initializer=None, initargs=()) -> Iterator:
    """Map ``function`` over ``items`` in ``workers`` processes, yielding results in order.

    With one worker (or one item) everything runs in this process, which is
    the baseline the benchmarks compare against.  ``function`` and
    ``initializer`` must be module-level so they pickle.  The first exception
    an item raises is raised here, once the items already running have ended;
    the items not yet started are cancelled.
    """
    if workers <= 1 or len(items) <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(function, items)
        return
    chunksize = max(1, min(16, len(items) // (workers * 8)))
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_die_with_parent, initargs=(initializer, initargs)
    ) as pool:
        try:
            yield from pool.map(function, items, chunksize=chunksize)
        except BaseException:
            # A failed item (a full store) or an abandoned map: start nothing more, let the running items end.
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def batched(items: Iterable, size: int, max_seconds: float = 1.0) -> Iterator[list]:
    """Consecutive lists of up to ``size`` items, cut early once ``max_seconds`` have passed.

    Each list becomes one database transaction, so the time bound caps how
    much finished work a crash can lose when items are slow to produce.
    """
    batch: list = []
    started = time.monotonic()
    for item in items:
        batch.append(item)
        if len(batch) == size or time.monotonic() - started >= max_seconds:
            yield batch
            batch = []
            started = time.monotonic()
    if batch:
        yield batch
