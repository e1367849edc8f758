"""One read-only SELECT answered without loading SQLAlchemy when the database is an SQLite file.

Importing SQLAlchemy and the ORM models costs about half a second, longer
than a listing such as ``semcurate tree list`` should take in all.  For an
SQLite file, :func:`select_rows` opens it with the standard library's
``sqlite3`` in ``mode=ro`` after the same checks as
:func:`semcurate.db.open_database` with ``read_only=True`` (the file exists,
is a database, its schema is the newest); any other database goes through
SQLAlchemy.  The query is plain SQL with ``:name`` parameters, which both
``sqlite3`` and SQLAlchemy's ``text()`` accept, so one statement serves every
database.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from typing import Any

from semcurate.db.location import (
    DatabaseOpenError,
    check_location,
    check_revision,
    database_url,
    not_a_database,
    read_only_uri,
    sqlite_path,
)

#: Seconds a reader waits for a writer's lock before giving up (as :mod:`semcurate.db.session`'s busy timeout).
BUSY_TIMEOUT_S = 60.0


def _sqlite_revision(connection: sqlite3.Connection) -> str | None:
    has_table = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    if has_table is None:
        return None
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else row[0]


def _sqlite_rows(url: str, query: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
    path = sqlite_path(url)
    assert path is not None, "only called for SQLite files"
    try:
        connection = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.OperationalError as error:
        raise DatabaseOpenError(f"cannot open database {path}: {error}; check --db") from error
    try:
        connection.row_factory = sqlite3.Row
        try:
            check_revision(_sqlite_revision(connection), url, read_only=True)
        except sqlite3.DatabaseError as error:
            raise not_a_database(url) from error
        return [dict(row) for row in connection.execute(query, dict(parameters))]
    finally:
        connection.close()


def _sqlalchemy_rows(url: str, query: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
    from sqlalchemy import text

    from semcurate.db.session import open_database

    with open_database(url, read_only=True)() as session:
        return [dict(row._mapping) for row in session.execute(text(query), dict(parameters))]


def select_rows(db: str | None, query: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows of one ``SELECT`` against database ``db``, opened for reading only, as dicts by column name.

    Parameters
    ----------
    db : str or None
        Database URL or SQLite path (default from
        :func:`semcurate.db.database_url`).
    query : str
        One SQL ``SELECT`` with ``:name`` placeholders.
    parameters : mapping, optional
        The placeholders' values.

    Returns
    -------
    list of dict
        One dict per row; SQLite returns timestamps as text, which
        :func:`as_datetime` turns into :class:`datetime.datetime`.

    Raises
    ------
    DatabaseOpenError
        The database is missing, not a database, or not at the newest schema
        (reading never creates or migrates).
    """
    url = database_url(db)
    check_location(url, read_only=True)
    if sqlite_path(url) is None:
        return _sqlalchemy_rows(url, query, parameters or {})
    return _sqlite_rows(url, query, parameters or {})


def as_datetime(value: dt.datetime | str) -> dt.datetime:
    """A timestamp column's value as a datetime (SQLite stores ``YYYY-MM-DD HH:MM:SS.ffffff`` text)."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
