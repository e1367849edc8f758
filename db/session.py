"""Opening the database with SQLAlchemy: SQLite pragmas, read-only opens, Alembic upgrade.

SQLite runs in WAL mode so that readers (a researcher browsing the tree) are
not blocked while an ingest writes.  Reading never creates or migrates a
database: :func:`open_database` with ``read_only=True`` opens an SQLite file
with ``mode=ro`` and refuses a missing file or a schema other than the newest.
Writing upgrades the schema, but loads Alembic only when the stored revision
differs from the newest one.  Where the database is, and the checks that need
no SQLAlchemy, are in :mod:`semcurate.db.location`; every failure to open is
a :class:`~semcurate.db.location.DatabaseOpenError` whose message names the
database and the fix.

PostgreSQL (``postgresql://`` or ``postgresql+psycopg://``, the ``postgres``
extra) serves a shared deployment: the schema is migrated under an advisory
lock, a server that does not answer within :data:`CONNECT_TIMEOUT` seconds is
one error line, and :func:`insert_ignoring_duplicates` and
:func:`serialise_writers` let several processes write one database at once
without duplicate rows or deadlocks.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine, Insert, Table, create_engine, event, text
from sqlalchemy.exc import DatabaseError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from semcurate.db.location import (
    MIGRATIONS_DIR,
    POSTGRES_INSTALL,
    DatabaseOpenError,
    check_location,
    check_revision,
    database_url,
    known_revisions,
    not_a_database,
    read_only_uri,
    shown,
    sqlite_path,
    write_failure,
)

if TYPE_CHECKING:
    from alembic.config import Config

#: Seconds a PostgreSQL server may take to accept a connection before opening fails with one line.
CONNECT_TIMEOUT = 10


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
        engine = create_engine(f"sqlite:///{read_only_uri(path)}&uri=true")
        event.listen(engine, "connect", _set_read_only_pragmas)
        return engine
    if url.startswith("postgresql"):
        # psycopg logs the pipeline it abandons when the server goes away ("error ignored terminating ...") on
        # top of the error it raises, which the caller reports as one line: that echo is not shown.
        logging.getLogger("psycopg").addHandler(logging.NullHandler())
        return create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT}, pool_pre_ping=True)
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


def _schema_revision(engine: Engine, url: str) -> str | None:
    """:func:`stored_revision`, with a missing driver, a file that is no database or a refused connection as one
    :class:`DatabaseOpenError`."""
    where = shown(url)
    try:
        return stored_revision(engine)
    except OperationalError as error:
        if _disk_full(url):  # opening in WAL mode writes: SQLite says "disk I/O error"
            raise _write_failure(url, error) from None
        reason = " ".join(str(error.orig).split())  # libpq's message spans lines
        raise DatabaseOpenError(f"cannot open database {where}: {reason}; check --db") from error
    except DatabaseError as error:
        raise not_a_database(url) from error


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
    check_location(resolved, read_only)
    try:
        engine = make_engine(resolved, read_only=read_only)
    except ModuleNotFoundError as error:
        raise DatabaseOpenError(
            f"no driver for {resolved.split('://', 1)[0]} (module {error.name} missing): {POSTGRES_INSTALL}"
        ) from error
    if check_revision(_schema_revision(engine, resolved), resolved, read_only=read_only):
        engine.dispose()
        with _migration_lock(resolved, engine):
            # Another process may have migrated while this one waited for the lock.
            if _schema_revision(engine, resolved) != known_revisions()[1]:
                try:
                    upgrade(resolved)
                except OperationalError as error:  # a full disk, a lock held too long: Alembic rolls back
                    raise _write_failure(resolved, error) from None
    return sessionmaker(engine, expire_on_commit=False)


#: Free bytes under which a failed write is taken for a full disk (SQLite may only say "disk I/O error").
_NEARLY_FULL_BYTES = 1 << 20


def _disk_full(url: str) -> bool:
    path = sqlite_path(url)
    return path is not None and shutil.disk_usage(path.parent).free < _NEARLY_FULL_BYTES


def _write_failure(url: str, error: OperationalError) -> DatabaseOpenError:
    where = shown(url)
    return DatabaseOpenError(write_failure(where, str(error.orig).splitlines()[0], disk_full=_disk_full(url)))


def lock_key(name: str) -> int:
    """A stable 63-bit key for the PostgreSQL advisory lock named ``name``."""
    return zlib.crc32(f"semcurate:{name}".encode()) & 0x7FFF_FFFF


@contextmanager
def _migration_lock(url: str, engine: Engine) -> Iterator[None]:
    """Hold an exclusive lock while the schema is migrated: a file next to an SQLite database, else an advisory lock.

    Two processes that open a brand-new database at once would otherwise both
    create ``alembic_version`` and one of them fail.  The kernel drops the file
    lock when its holder exits, and PostgreSQL the advisory lock when its
    session ends, so a killed process leaves no stale lock.
    """
    path = sqlite_path(url)
    if path is None:
        if engine.dialect.name != "postgresql":
            yield
            return
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock_key("migrate")})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key("migrate")})
                connection.commit()
        return
    with open(path.with_name(path.name + ".migrate.lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def insert_ignoring_duplicates(table: Table, dialect: str) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` into ``table`` for SQLite and PostgreSQL (a plain insert elsewhere).

    A row whose primary key or unique column another writer stored first is
    left out rather than failing the transaction, so concurrent writers of the
    same rows (two ingests of overlapping sources) end with each row once.
    The statement's ``rowcount`` says how many rows were new.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy import insert

        return insert(table)
    return dialect_insert(table).on_conflict_do_nothing()


def serialise_writers(session: Session, name: str) -> None:
    """Make the transaction of ``session`` the only one named ``name`` writing at a time, until it ends.

    On PostgreSQL it takes the transaction-scoped advisory lock ``name``
    (``pg_advisory_xact_lock``), so concurrent writers that read, decide and
    write (is this image known yet?) see each other's committed rows and never
    wait on each other's row locks in opposite orders: no deadlock.  SQLite
    serialises writers anyway and needs nothing.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
