r"""Walking a source tree without ever changing it or looping forever.

:func:`walk_tree` yields one :class:`WalkEntry` per file, and one per thing
that could not be walked (an unreadable folder, a broken link, a link back
to a folder already walked), each with the reason.  Folder symlinks are
followed once: a link to a folder already visited (a loop, or an alias of
the same folder) is reported and not entered, identified by the target's
device and inode numbers.  Only ``os.scandir``/``os.stat`` are used, so the
tree's access times are the only thing a walk can touch.

File names are bytes on POSIX, and old lab shares hold names that are not
UTF-8 (``\xb5``, Latin-1 µ).  Python hands those bytes over as lone
surrogates (``os.fsdecode``, surrogateescape: ``\xb5`` → ``'\udcb5'``), which
no database or terminal accepts.  Every relpath a walk yields is therefore
*text*: :func:`name_to_text` writes each undecodable byte as the four
characters ``\xNN`` and a backslash as ``\\``, so the text is printable,
storable and reversible; :func:`text_to_name` gives back the exact name to
open.  A UTF-8 name without a backslash is its own text.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Largest file read whole into memory, in bytes (2 GiB: far above any SEM frame, far below the machine's memory).
MAX_FILE_BYTES = 2 << 30

#: A lone surrogate U+DC80..U+DCFF stands for the undecodable byte 0x80..0xFF (PEP 383).
_SURROGATE_LOW, _SURROGATE_HIGH = 0xDC80, 0xDCFF


def name_to_text(name: str) -> str:
    """The printable, storable text of a file name as ``os`` returns it.

    Each undecodable byte (a lone surrogate ``'\\udcNN'``) becomes ``\\xNN`` and
    each backslash ``\\\\``; every other character is kept.  :func:`text_to_name`
    reverses it exactly.

    Examples
    --------
    >>> name_to_text("odd\\udcb5.tif")
    'odd\\\\xb5.tif'
    >>> name_to_text("µm\\\\x.tif")
    'µm\\\\\\\\x.tif'
    """
    if "\\" not in name and not any(_SURROGATE_LOW <= ord(character) <= _SURROGATE_HIGH for character in name):
        return name
    return "".join(
        "\\\\"
        if character == "\\"
        else f"\\x{ord(character) - 0xDC00:02x}"
        if _SURROGATE_LOW <= ord(character) <= _SURROGATE_HIGH
        else character
        for character in name
    )


def _is_byte(digits: str) -> bool:
    """Whether ``digits`` are the two hex digits of an undecodable byte (80..ff)."""
    return len(digits) == 2 and all(digit in "0123456789abcdef" for digit in digits) and digits[0] in "89abcdef"


def text_to_name(text: str) -> str:
    """The file name (with surrogates for undecodable bytes) that :func:`name_to_text` wrote as ``text``.

    Examples
    --------
    >>> text_to_name("odd\\\\xb5.tif") == "odd\\udcb5.tif"
    True
    >>> text_to_name(name_to_text("a\\\\xb5\\udcff")) == "a\\\\xb5\\udcff"
    True
    """
    if "\\" not in text:
        return text
    characters, index = [], 0
    while index < len(text):
        if text[index] == "\\" and text.startswith("\\\\", index):
            characters.append("\\")
            index += 2
        elif text.startswith("\\x", index) and _is_byte(text[index + 2 : index + 4]):
            characters.append(chr(0xDC00 + int(text[index + 2 : index + 4], 16)))
            index += 4
        else:
            characters.append(text[index])
            index += 1
    return "".join(characters)


@dataclass(frozen=True)
class WalkEntry:
    """A file found under the root, or a place the walk had to skip.

    ``relpath`` uses ``/`` separators relative to the root and is text
    (:func:`name_to_text`); open it with :func:`text_to_name`.  For files,
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
            relpath = prefix + name_to_text(entry.name)
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


class FileSkipped(Exception):
    """A file that is not read, and why: not a regular file (a pipe would block, a device never end) or too large."""


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    kinds = (
        (stat.S_ISFIFO, "a pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def open_regular(path: Path | str) -> BinaryIO:
    """Open ``path`` for binary reading if, and only if, it is a regular file (symlinks followed).

    The file is opened without blocking and checked with ``fstat`` on the open
    descriptor, so a named pipe never hangs the caller and a file swapped for a
    device between a walk and the read is still refused.

    Raises
    ------
    FileSkipped
        When ``path`` is a pipe, a device, a socket or a folder.
    OSError
        When it cannot be opened (missing, permissions).
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise FileSkipped(f"{_kind(mode)}, not a regular file: skipped")
        os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def read_regular(path: Path | str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of regular file ``path``, at most ``max_bytes`` of them (the size is checked before reading).

    Raises
    ------
    FileSkipped
        When ``path`` is not a regular file or holds more than ``max_bytes`` bytes.
    OSError
        When it cannot be opened or read.
    """
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise FileSkipped(f"{size} bytes, more than the {max_bytes} read at most: skipped")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while being read
        raise FileSkipped(f"more than the {max_bytes} bytes read at most: skipped")
    return data
