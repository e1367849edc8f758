"""Opening the database: URL resolution, SQLite pragmas, Alembic upgrade.

The URL is, in order of precedence, the ``--db`` option, the ``SEMCURATE_DB``
environment variable, or ``sqlite:///semcurate.db`` in the working directory.
SQLite runs in WAL mode so that readers (a researcher browsing the tree) are
not blocked while an ingest writes.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import sessionmaker

DEFAULT_URL = "sqlite:///semcurate.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def database_url(explicit: str | None = None) -> str:
    """Resolve the database URL from ``explicit``, ``$SEMCURATE_DB`` or the default."""
    return explicit or os.environ.get("SEMCURATE_DB") or DEFAULT_URL


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite connections get WAL, foreign keys and a busy timeout."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def alembic_config(url: str) -> Config:
    """An Alembic configuration pointing at the packaged migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` with Alembic."""
    command.upgrade(alembic_config(url), revision)


def open_database(url: str | None = None) -> sessionmaker:
    """Upgrade the schema to the newest revision and return a session factory."""
    resolved = database_url(url)
    if resolved.startswith("sqlite:///"):
        parent = Path(resolved.removeprefix("sqlite:///")).expanduser().parent
        if not parent.is_dir():
            raise FileNotFoundError(f"database folder {parent} does not exist")
    upgrade(resolved)
    return sessionmaker(make_engine(resolved), expire_on_commit=False)
