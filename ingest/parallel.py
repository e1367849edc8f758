"""Ordered parallel map over worker processes or Dask workers, and batching for database writes.

Per-image work (hash, convert, read the scale, score, compute features) is a
pure function of one file, so it runs anywhere that sees the store: in a
local process pool by default, or on the workers of a ``dask.distributed``
scheduler (``--scheduler ADDRESS``, or ``--scheduler local:N`` for a
LocalCluster of N worker processes on this machine).  Results come back in
order to this process, which alone writes the database and the feature
store.  Dask is the optional ``distributed`` extra.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

#: ``prctl`` option that delivers a signal to a process when its parent exits (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: How to install Dask when ``--scheduler`` is asked for without it.
DISTRIBUTED_INSTALL = "pip install 'semcurate[distributed]'"
#: Seconds a scheduler address may take to answer before the run stops with one line: a TCP connect and a
#: handshake, so a few seconds even across a network; short enough that the whole command, start-up included,
#: says so within 10 s on a loaded 2-core machine.
SCHEDULER_TIMEOUT = 3
#: Times a Dask task that raised is tried again (a worker that dies is handled by Dask itself: its
#: tasks are moved to the other workers, up to ``distributed.scheduler.allowed-failures`` deaths per task).
RETRIES = 2
#: Items per Dask task: enough that the scheduler's per-task cost (about a millisecond) stays small.
TASK_ITEMS = 8
#: Dask tasks in flight per worker thread: keeps every worker busy while results stream back in order,
#: without holding the whole run's results in memory.
IN_FLIGHT_PER_THREAD = 4
_LOCAL = re.compile(r"local:(\d+)")
#: Dask configuration for the workers of ``local:N``.  Dask's nannies set ``MALLOC_TRIM_THRESHOLD_=65536`` in
#: every worker's environment; setting it at all turns off glibc's dynamic mmap threshold, so each large
#: temporary array of the per-image work is mapped and page-faulted afresh: the classic descriptor then took
#: 2.8x the CPU time it takes in a plain process (``bench/scale_out.py``).  ``None`` leaves it unset.
LOCAL_WORKER_ENVIRONMENT = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


class SchedulerError(Exception):
    """``--scheduler`` cannot be used: Dask is not installed, the value is malformed, or nothing answers there."""


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


def parallel_map(
    function: Callable, items: list, workers: int, initializer=None, initargs=(), scheduler: str | None = None
) -> Iterator:
    """Map ``function`` over ``items`` in ``workers`` processes or on Dask workers, yielding results in order.

    With one worker (or one item) and no scheduler everything runs in this
    process, which is the baseline the benchmarks compare against.
    ``function`` and ``initializer`` must be module-level so they pickle.  The
    first exception an item raises is raised here, once the items already
    running have ended; the items not yet started are cancelled.

    Parameters
    ----------
    function : callable
        Applied to each item; pure (it may write the flat store atomically).
    items : list
        The work, one item per file (or per batch of files).
    workers : int
        Local worker processes; ignored with ``scheduler``.
    initializer, initargs
        Run once in each worker process before its first item.
    scheduler : str, optional
        A ``dask.distributed`` scheduler address (``tcp://host:8786``) or
        ``local:N`` for a LocalCluster of N worker processes here; see
        :func:`dask_map`.

    Raises
    ------
    SchedulerError
        ``scheduler`` is given but cannot be used.
    """
    if scheduler is not None:
        yield from dask_map(function, items, scheduler, initializer, initargs)
        return
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


# --------------------------------------------------------------------------- Dask

_CLIENTS: dict[str, Any] = {}
#: Keys of the initializers this (worker) process has run: each runs once per process.
_INITIALISED: set[str] = set()


def scheduler_client(scheduler: str):
    """The ``distributed.Client`` of ``scheduler``, connected once per process and closed at exit.

    ``local:N`` starts a LocalCluster of N single-threaded worker processes
    on this machine (no dashboard); anything else is a scheduler address.

    Raises
    ------
    SchedulerError
        Dask is not installed, ``local:N`` has N < 1, or the address does not
        answer within :data:`SCHEDULER_TIMEOUT` seconds.
    """
    if scheduler in _CLIENTS:
        return _CLIENTS[scheduler]
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise SchedulerError(f"--scheduler needs Dask: {DISTRIBUTED_INSTALL}") from None
    local = _LOCAL.fullmatch(scheduler)
    if local is not None:
        n_workers = int(local.group(1))
        if n_workers < 1:
            raise SchedulerError(f"--scheduler {scheduler}: a local cluster needs at least one worker (local:2)")
        try:
            with dask.config.set(LOCAL_WORKER_ENVIRONMENT):
                cluster = LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
        except (RuntimeError, OSError) as error:  # a worker process that cannot start (memory, a script on stdin)
            raise SchedulerError(f"--scheduler {scheduler}: the local Dask cluster did not start ({error})") from None
        client = Client(cluster)
        atexit.register(cluster.close)
    elif scheduler.startswith("local"):
        raise SchedulerError(f"--scheduler {scheduler}: write local:N, N the number of worker processes")
    else:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            raise SchedulerError(
                f"Dask scheduler {scheduler} does not answer ({reason}): start it (`dask scheduler`) "
                "or pass another --scheduler, or none for the local process pool"
            ) from None
    atexit.register(client.close)
    _CLIENTS[scheduler] = client
    return client


def _nearest_existing(folder: Path) -> Path:
    """``folder`` or, when it does not exist yet, its nearest ancestor that does."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _folders_visible(folders: list[str]) -> list[bool]:
    """Dask worker: whether each folder exists here as a directory."""
    return [os.path.isdir(folder) for folder in folders]


def check_workers_see(scheduler: str, folders: list) -> None:
    """Stop with one line unless every worker of ``scheduler`` sees every folder at the same path.

    Workers read the source and read and write the flat store by path, so
    each of them must mount them where this process does.  A folder that does
    not exist yet (a new store, which the run creates) is checked through its
    nearest existing ancestor.  Checked once, before any work is sent (one
    call to every worker).

    Raises
    ------
    SchedulerError
        Naming the first worker and folder that do not match.
    """
    paths = [str(_nearest_existing(Path(folder).resolve())) for folder in folders]
    client = scheduler_client(scheduler)
    for worker, visible in sorted(client.run(_folders_visible, paths).items()):
        for path, seen in zip(paths, visible, strict=True):
            if not seen:
                raise SchedulerError(
                    f"Dask worker {worker} cannot see {path}: mount it at the same path on every worker "
                    "(or run without --scheduler)"
                )


def _run_task(function: Callable, key: str | None, initializer, initargs, items: list) -> list:
    """Dask task: run the initializer once in this worker process, then ``function`` over ``items``."""
    if initializer is not None and key not in _INITIALISED:
        initializer(*initargs)
        _INITIALISED.add(key)
    return [function(item) for item in items]


def dask_map(function: Callable, items: list, scheduler: str, initializer=None, initargs=()) -> Iterator:
    """:func:`parallel_map` on Dask: tasks of :data:`TASK_ITEMS` items, results in order, retried on failure.

    The initializer's arguments (the JPG candidate index of an ingest) are
    sent to every worker once (``scatter(broadcast=True)``), not with each
    task.  At most :data:`IN_FLIGHT_PER_THREAD` tasks per worker thread are
    submitted ahead of the result being waited for, so a run of millions of
    files streams.  A task whose worker dies is run again on another (Dask's
    own bookkeeping); one that raises is tried :data:`RETRIES` more times,
    then its exception is raised here and the tasks not yet run are
    cancelled.
    """
    client = scheduler_client(scheduler)
    if not items:
        return
    threads = max(1, sum(client.nthreads().values()))
    size = max(1, min(TASK_ITEMS, len(items) // (threads * 2) or 1))
    chunks = [items[start : start + size] for start in range(0, len(items), size)]
    key = None
    if initializer is not None:
        initargs = client.scatter(list(initargs), broadcast=True) if initargs else []
        key = f"{initializer.__module__}.{initializer.__qualname__}:{time.time_ns()}"
    pending: deque = deque()
    submitted = 0
    try:
        while submitted < len(chunks) or pending:
            while submitted < len(chunks) and len(pending) < threads * IN_FLIGHT_PER_THREAD:
                pending.append(
                    client.submit(
                        _run_task,
                        function,
                        key,
                        initializer,
                        initargs,
                        chunks[submitted],
                        retries=RETRIES,
                        pure=False,
                    )
                )
                submitted += 1
            yield from pending.popleft().result()
    finally:
        if pending:
            client.cancel(list(pending))


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
