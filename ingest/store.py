"""The flat store: ``<md5>.tif`` and ``<md5>.jpg`` once each, written atomically.

Files are first written under ``.incoming/`` with a unique temporary name and
then renamed into place with :func:`os.replace`, so a crash (even SIGKILL)
never leaves a half-written file under a final name.  Staged files that
were never committed are removed by :meth:`FlatStore.clear_incoming` at the
start of the next run.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


class StoreError(Exception):
    """The store folder cannot be used (one clear line for the admin)."""


class FlatStore:
    """A folder of ``<md5>.<ext>`` files named by image identity."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.incoming = self.root / ".incoming"

    def prepare(self) -> None:
        """Create the folders, check they are writable, and drop stale staged files."""
        try:
            self.incoming.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create store {self.root}: {error.strerror}") from None
        if not os.access(self.root, os.W_OK) or not os.access(self.incoming, os.W_OK):
            raise StoreError(f"store {self.root} is not writable")
        self.clear_incoming()

    def clear_incoming(self) -> None:
        for stale in self.incoming.glob("*"):
            stale.unlink(missing_ok=True)

    def path(self, md5: str, extension: str) -> Path:
        """Final path of an image's file, ``extension`` being ``tif`` or ``jpg``."""
        return self.root / f"{md5}.{extension}"

    def stage(self, data: bytes, md5: str, extension: str) -> Path:
        """Write ``data`` to a unique temporary file under ``.incoming/`` and return its path."""
        staged = self.incoming / f"{md5}.{extension}.{uuid.uuid4().hex}.part"
        with open(staged, "wb") as handle:
            handle.write(data)
        return staged

    def commit(self, staged: Path, md5: str, extension: str) -> Path:
        """Atomically move a staged file to its final name (replacing an identical one)."""
        final = self.path(md5, extension)
        os.replace(staged, final)
        return final

    @staticmethod
    def discard(staged: Path) -> None:
        staged.unlink(missing_ok=True)
