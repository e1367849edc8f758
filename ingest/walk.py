"""Walking a source tree without ever changing it or looping forever.

:func:`walk_tree` yields one :class:`WalkEntry` per file, and one per thing
that could not be walked (an unreadable folder, a broken link, a link back
to a folder already walked), each with the reason.  Folder symlinks are
followed once: a link to a folder already visited (a loop, or an alias of
the same folder) is reported and not entered, identified by the target's
device and inode numbers.  Only ``os.scandir``/``os.stat`` are used, so the
tree's access times are the only thing a walk can touch.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WalkEntry:
    """A file found under the root, or a place the walk had to skip.

    ``relpath`` uses ``/`` separators relative to the root.  For files,
    ``size`` is in bytes and ``mtime_ns`` in nanoseconds; ``problem`` is
    ``None``.  Places the walk could not or would not enter have ``problem``
    set to a human-readable reason, ``is_folder`` telling whether a folder
    was skipped, and ``status``: ``unreadable`` (permissions, broken links)
    or ``skipped`` (loops, devices, pipes).
    """

    relpath: str
    size: int | None = None
    mtime_ns: int | None = None
    problem: str | None = None
    is_folder: bool = False
    status: str = "unreadable"


def walk_tree(root: Path) -> Iterator[WalkEntry]:
    """Yield every file under ``root`` in sorted, depth-first order."""
    root_stat = os.stat(root)
    visited = {(root_stat.st_dev, root_stat.st_ino)}
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as iterator:
                entries = sorted(iterator, key=lambda entry: entry.name)
        except OSError as error:
            yield WalkEntry(prefix.rstrip("/") or ".", problem=f"folder not readable: {error.strerror}", is_folder=True)
            continue
        subfolders = []
        for entry in entries:
            relpath = prefix + entry.name
            try:
                info = entry.stat(follow_symlinks=True)
            except OSError as error:
                reason = "broken symlink" if entry.is_symlink() else f"cannot stat: {error.strerror}"
                yield WalkEntry(relpath, problem=reason)
                continue
            if stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in visited:
                    yield WalkEntry(
                        relpath,
                        problem="symlink to a folder already walked (loop or alias): not followed",
                        is_folder=True,
                        status="skipped",
                    )
                    continue
                visited.add(key)
                subfolders.append((Path(entry.path), relpath + "/"))
            elif stat.S_ISREG(info.st_mode):
                yield WalkEntry(relpath, size=info.st_size, mtime_ns=info.st_mtime_ns)
            else:
                yield WalkEntry(relpath, problem="not a regular file (device, socket or pipe)", status="skipped")
        stack.extend(reversed(subfolders))
