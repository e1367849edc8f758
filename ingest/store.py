"""The flat store: ``<md5>.tif`` and ``<md5>.jpg`` once each, written atomically.

Files are first written under ``.incoming/`` with a unique temporary name and
then renamed into place with :func:`os.replace`, so a crash (even SIGKILL)
never leaves a half-written file under a final name.  Staged files that
were never committed are removed by :meth:`FlatStore.clear_incoming` at the
start of the next run, by the one ingest that holds the store's lock
(:meth:`FlatStore.locked`).  A write that fails (a full disk, a read-only
mount) removes its staged file and raises :class:`StoreError` with one line
naming the store and the fix.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Lock file in the store that one ingest at a time holds (an exclusive ``flock``; it records the holder's pid).
LOCK_NAME = ".ingest.lock"


class StoreError(Exception):
    """The store folder cannot be used (one clear line for the admin)."""


class FlatStore:
    """A folder of ``<md5>.<ext>`` files named by image identity."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.incoming = self.root / ".incoming"

    def prepare(self) -> None:
        """Create the folders and check they are writable (call :meth:`clear_incoming` once the lock is held)."""
        try:
            self.incoming.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create store {self.root}: {error.strerror}") from None
        if not os.access(self.root, os.W_OK) or not os.access(self.incoming, os.W_OK):
            raise StoreError(f"store {self.root} is not writable")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's ingest lock for the ``with`` block, or raise :class:`StoreError` at once.

        The lock is an exclusive ``flock`` on ``.ingest.lock``, released by the
        kernel when the holder exits, even by SIGKILL, so it never goes stale.
        """
        with hold_lock(self.root / LOCK_NAME, f"store {self.root}"):
            yield

    def clear_incoming(self) -> None:
        """Remove every staged file that was never committed (a crashed or failed run's leftovers)."""
        for stale in self.incoming.glob("*"):
            stale.unlink(missing_ok=True)

    def write_error(self, error: OSError) -> StoreError:
        """The one-line :class:`StoreError` for a failed write to this store."""
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreError(f"store {self.root} is full ({error.strerror}): free space there or pass another --store")
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return StoreError(f"store {self.root} is not writable ({error.strerror}): fix it or pass another --store")
        return StoreError(f"cannot write to store {self.root} ({error.strerror or error}): fix it and re-run")

    def path(self, md5: str, extension: str) -> Path:
        """Final path of an image's file, ``extension`` being ``tif`` or ``jpg``."""
        return self.root / f"{md5}.{extension}"

    def stage(self, data: bytes, md5: str, extension: str) -> Path:
        """Write ``data`` to a unique temporary file under ``.incoming/`` and return its path."""
        staged = self.incoming / f"{md5}.{extension}.{uuid.uuid4().hex}.part"
        try:
            with open(staged, "wb") as handle:
                handle.write(data)
        except OSError as error:
            staged.unlink(missing_ok=True)
            raise self.write_error(error) from None
        return staged

    def commit(self, staged: Path, md5: str, extension: str) -> Path:
        """Atomically move a staged file to its final name (replacing an identical one)."""
        final = self.path(md5, extension)
        try:
            os.replace(staged, final)
        except OSError as error:
            staged.unlink(missing_ok=True)
            raise self.write_error(error) from None
        return final

    @staticmethod
    def discard(staged: Path) -> None:
        """Remove a staged file that will not be committed."""
        staged.unlink(missing_ok=True)


#: Longest wait, in seconds, for the holder of a lock to write its pid: it writes it just after taking the lock.
LOCK_HOLDER_WAIT_S = 0.5


def lock_holder(descriptor: int) -> str:
    """The pid written in a lock file another process holds, or ``"unknown"``.

    The holder writes its pid just after it takes the lock, so a process that
    finds the lock taken in between would read an empty file: it reads again
    for up to :data:`LOCK_HOLDER_WAIT_S`.
    """
    deadline = time.monotonic() + LOCK_HOLDER_WAIT_S
    while (
        not (holder := os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()) and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    return holder or "unknown"


#: Seconds a PostgreSQL ingest waits for the store's shared lock: another PostgreSQL ingest holds it exclusively
#: only while it clears staged leftovers (milliseconds); an SQLite ingest holds it for its whole run.
SHARED_LOCK_WAIT_S = 5.0


def shared_lock_within(descriptor: int, wait_s: float) -> bool:
    """Take a shared ``flock`` on ``descriptor``, retrying every 50 ms for up to ``wait_s`` seconds; whether it
    was taken.  Without the wait, an ingest that starts while another is still clearing its leftovers was refused
    as if that one were an SQLite ingest (a race seen in ``tests/test_postgres.py``)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def open_lock_file(path: Path) -> int:
    """A read-write descriptor of the lock file ``path``, created (mode 0644) if missing and closed on ``exec``.

    Raises
    ------
    StoreError
        One line naming the file and the system's reason when it cannot be opened or created.
    """
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as error:
        raise StoreError(f"cannot create lock file {path} ({error.strerror}): check the folder's permissions") from None


@contextmanager
def hold_lock(path: Path, what: str, activity: str = "ingest") -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``path`` (created if missing) for the ``with`` block.

    Raises
    ------
    StoreError
        ``another ACTIVITY is running on WHAT (pid N)`` when another process
        holds the lock, or one line when the lock file cannot be created.
    """
    descriptor = open_lock_file(path)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(descriptor)
            raise StoreError(f"another {activity} is running on {what} (pid {holder}): wait for it to end") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(descriptor)
