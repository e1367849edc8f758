"""Ordered parallel map over worker processes, and batching for database writes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor


def parallel_map(function: Callable, items: list, workers: int, initializer=None, initargs=()) -> Iterator:
    """Map ``function`` over ``items`` in ``workers`` processes, yielding results in order.

    With one worker (or one item) everything runs in this process, which is
    the baseline the benchmarks compare against.  ``function`` and
    ``initializer`` must be module-level so they pickle.
    """
    if workers <= 1 or len(items) <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(function, items)
        return
    chunksize = max(1, min(16, len(items) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers, initializer=initializer, initargs=initargs) as pool:
        yield from pool.map(function, items, chunksize=chunksize)


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
