"""Where the database is and whether its schema fits this code, without loading SQLAlchemy.

The URL is, in order of precedence, the ``--db`` option, the ``SEMCURATE_DB``
environment variable, or ``sqlite:///semcurate.db`` in the working directory;
a plain path (no ``://``) is an SQLite file.  The newest schema revision is
read from the migration files' text (Alembic's machinery costs a second).
:mod:`semcurate.db.session` opens databases with SQLAlchemy on top of these;
:mod:`semcurate.db.quick_read` reads SQLite files with the standard library's
``sqlite3`` so that a listing answers in a fraction of a second.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_URL = "sqlite:///semcurate.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The extra that installs the PostgreSQL driver (psycopg 3).
POSTGRES_INSTALL = "pip install 'semcurate[postgres]'"
_REVISION_LINE = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*['"]?([\w-]+|None)['"]?""", re.MULTILINE)


class DatabaseOpenError(Exception):
    """The database cannot be opened as asked (missing, not a database, a newer schema, read-only, no driver).

    The message is one line that names the database and the fix.
    """


def database_url(explicit: str | None = None) -> str:
    """Resolve the database URL from ``explicit``, ``$SEMCURATE_DB`` or the default.

    A value without ``://`` is a path to an SQLite file (``demo/semcurate.db``
    means ``sqlite:///demo/semcurate.db``); ``postgresql://`` means the
    psycopg 3 driver that the ``postgres`` extra installs (``postgres://`` too).
    """
    url = explicit or os.environ.get("SEMCURATE_DB") or DEFAULT_URL
    if "://" not in url:
        return f"sqlite:///{url}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def shown(url: str) -> str:
    """How a database is named in messages: an SQLite file by its path, another URL with its password hidden."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    return re.sub(r"^([\w+.-]+://[^/:@]*):[^/@]*@", r"\1:***@", url)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite ``url``, or None for another database or an in-memory one."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    return Path(path).expanduser()


def read_only_uri(path: Path) -> str:
    """The ``sqlite3`` URI that opens ``path`` for reading only (``mode=ro``): never created, never written.

    A WAL reader needs the ``-shm`` file: where nobody can create it (a
    read-only folder), nobody writes either, and SQLite reads the file as
    immutable.
    """
    from urllib.parse import quote

    shm_possible = path.with_name(path.name + "-shm").exists() or os.access(path.parent, os.W_OK)
    return f"file:{quote(str(path))}?mode=ro{'' if shm_possible else '&immutable=1'}"


def known_revisions() -> tuple[set[str], str]:
    """Every revision of the packaged migrations and the newest one, read from the files' text without Alembic.

    Returns
    -------
    revisions : set of str
        The ``revision`` identifiers of ``migrations/versions/*.py``.
    head : str
        The one revision that no other names as its ``down_revision``.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        fields = dict(_REVISION_LINE.findall(script.read_text(encoding="utf-8")))
        if "revision" in fields:
            revisions.add(fields["revision"])
            parents.add(fields.get("down_revision", "None"))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations in {MIGRATIONS_DIR} have {len(heads)} heads, not one")
    return revisions, heads.pop()


def check_location(url: str, read_only: bool) -> None:
    """One clear error for an SQLite file that is missing (reading), in a missing folder, or not writable (writing)."""
    path = sqlite_path(url)
    if path is None:
        return
    if read_only and not path.is_file():
        raise DatabaseOpenError(f"no database at {path}: run `semcurate ingest` first or pass --db")
    if not path.parent.is_dir():
        raise DatabaseOpenError(f"database folder {path.parent} does not exist: create it or pass another --db")
    if not read_only and path.exists() and not os.access(path, os.W_OK):
        raise DatabaseOpenError(
            f"database file {path} is read-only: this command writes; make it writable or pass another --db"
        )
    if not read_only and not os.access(path.parent, os.W_OK):
        raise DatabaseOpenError(
            f"database folder {path.parent} is read-only: this command writes; make it writable or pass another --db"
        )


def check_revision(current: str | None, url: str, *, read_only: bool) -> bool:
    """Whether the schema at revision ``current`` needs upgrading; a newer one, or an old one read, is an error.

    Returns
    -------
    bool
        True when ``current`` is older than the code's newest revision (or
        None: no schema yet) and the caller may migrate; False when it is the
        newest.

    Raises
    ------
    DatabaseOpenError
        ``current`` is unknown to this code (a newer semcurate wrote it), or
        ``read_only`` and it is not the newest (reading never migrates).
    """
    revisions, head = known_revisions()
    if current == head:
        return False
    where = shown(url)
    if current is not None and current not in revisions:
        raise DatabaseOpenError(
            f"database {where} was written by a newer semcurate (schema revision {current}, this one knows up to "
            f"{head}): upgrade semcurate or pass another --db"
        )
    if read_only:
        state = "has no semcurate schema" if current is None else f"is at schema revision {current}, not {head}"
        raise DatabaseOpenError(f"database {where} {state}: run `semcurate db upgrade` or `semcurate ingest` first")
    return True


def not_a_database(url: str) -> DatabaseOpenError:
    """The error for a file that SQLite cannot read as a database."""
    where = shown(url)
    return DatabaseOpenError(f"database file {where} is not an SQLite database: pass the right --db or move it away")


def write_failure(where: str, reason: str, *, disk_full: bool = False) -> str:
    """One line for a database write that failed: which database, what happened, what to do.

    Parameters
    ----------
    where : str
        The database as the user named it (path or URL without password).
    reason : str
        The driver's message, e.g. ``database or disk is full``.
    disk_full : bool
        The caller saw the disk full (SQLite reports some full-disk writes
        only as ``disk I/O error``).
    """
    if disk_full or "full" in reason:
        fix = "free space there and re-run (finished work is kept)"
    elif "readonly" in reason or "read-only" in reason:
        fix = "make it writable or pass another --db"
    elif "locked" in reason:
        fix = "another process holds it: wait for it to end and re-run"
    else:
        fix = "fix it and re-run"
    return f"database {where} cannot be written ({reason}): {fix}"
