"""Opening the database: URL resolution, SQLite pragmas, Alembic upgrade.

The URL is, in order of precedence, the ``--db`` option, the ``SEMCURATE_DB``
environment variable, or ``sqlite:///semcurate.db`` in the working directory;
a plain path (no ``://``) is an SQLite file. SQLite runs in WAL mode so that
readers (a researcher browsing the tree) are not blocked while an ingest
writes.

Reading never creates or migrates a database: :func:`open_database` with
``read_only=True`` opens an SQLite file with ``mode=ro`` and refuses a missing
file or a schema other than the newest. Writing upgrades the schema, but loads
Alembic only when the stored revision differs from the newest one, which is
read from the migration files' text (Alembic's machinery costs a second).
Every failure to open is a :class:`DatabaseOpenError` whose message names the
database and the fix.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DatabaseError, OperationalError, ProgrammingError
from sqlalchemy.orm import sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

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
    psycopg 3 driver that the ``postgres`` extra installs.
    """
    url = explicit or os.environ.get("SEMCURATE_DB") or DEFAULT_URL
    if "://" not in url:
        return f"sqlite:///{url}"
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite ``url``, or None for another database or an in-memory one."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    return Path(path).expanduser()


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _set_read_only_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """Create an engine; SQLite connections get WAL, foreign keys and a busy timeout.

    With ``read_only`` an SQLite file is opened with ``mode=ro``: it is never
    created and nothing can be written through the engine.
    """
    path = sqlite_path(url)
    if read_only and path is not None:
        # A WAL reader needs the -shm file: where nobody can create it (a read-only folder), nobody writes either,
        # and SQLite reads the file as immutable.
        shm_possible = path.with_name(path.name + "-shm").exists() or os.access(path.parent, os.W_OK)
        immutable = "" if shm_possible else "&immutable=1"
        engine = create_engine(f"sqlite:///file:{quote(str(path))}?mode=ro{immutable}&uri=true")
        event.listen(engine, "connect", _set_read_only_pragmas)
        return engine
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def alembic_config(url: str) -> Config:
    """An Alembic configuration pointing at the packaged migrations and ``url``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` with Alembic."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


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


def stored_revision(engine: Engine) -> str | None:
    """The schema revision recorded in ``alembic_version``, or None for a database without one (new or empty)."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            has_table = connection.execute(
                text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
            ).first()
            if has_table is None:
                return None
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except ProgrammingError:
            return None


def _check_location(url: str, read_only: bool) -> None:
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


def _schema_revision(engine: Engine, url: str) -> str | None:
    """:func:`stored_revision`, with a missing driver, a file that is no database or a refused connection as one
    :class:`DatabaseOpenError`."""
    where = sqlite_path(url) or url
    try:
        return stored_revision(engine)
    except OperationalError as error:
        raise DatabaseOpenError(f"cannot open database {where}: {error.orig}; check --db") from error
    except DatabaseError as error:
        raise DatabaseOpenError(
            f"database file {where} is not an SQLite database: pass the right --db or move it away"
        ) from error


def open_database(url: str | None = None, *, read_only: bool = False) -> sessionmaker:
    """Return a session factory of the database at ``url``, its schema at the newest revision.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL or SQLite path; default from :func:`database_url`.
    read_only : bool
        Open for reading only: a missing database is an error rather than
        created, nothing is migrated, and an SQLite file may be read-only.
        Otherwise the schema is upgraded when it is older than the code's.

    Raises
    ------
    DatabaseOpenError
        A missing database (reading), a missing or read-only folder or file
        (writing), a file that is not a database, a schema written by a newer
        semcurate or (reading) an older one, or no PostgreSQL driver.
    """
    resolved = database_url(url)
    _check_location(resolved, read_only)
    try:
        engine = make_engine(resolved, read_only=read_only)
    except ModuleNotFoundError as error:
        raise DatabaseOpenError(
            f"no driver for {resolved.split('://', 1)[0]} (module {error.name} missing): {POSTGRES_INSTALL}"
        ) from error
    current = _schema_revision(engine, resolved)
    revisions, head = known_revisions()
    where = sqlite_path(resolved) or resolved
    if current != head:
        if current is not None and current not in revisions:
            raise DatabaseOpenError(
                f"database {where} was written by a newer semcurate (schema revision {current}, this one knows up to "
                f"{head}): upgrade semcurate or pass another --db"
            )
        if read_only:
            state = "has no semcurate schema" if current is None else f"is at schema revision {current}, not {head}"
            raise DatabaseOpenError(f"database {where} {state}: run `semcurate db upgrade` or `semcurate ingest` first")
        engine.dispose()
        with _migration_lock(resolved):
            # Another process may have migrated while this one waited for the lock.
            if _schema_revision(engine, resolved) != head:
                upgrade(resolved)
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<file>.migrate.lock`` next to an SQLite database while its schema is migrated.

    Two processes that open a brand-new database at once would otherwise both
    create ``alembic_version`` and one of them fail.  The kernel drops the lock
    when its holder exits, so a killed process leaves no stale lock.  Other
    databases migrate inside one transaction of their own and need no file.
    """
    path = sqlite_path(url)
    if path is None:
        yield
        return
    with open(path.with_name(path.name + ".migrate.lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
