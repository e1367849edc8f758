"""The schema comes from Alembic, matches the models, and SQLite runs in WAL mode."""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from semcurate.db import Base, open_database
from semcurate.db.session import DatabaseOpenError, alembic_config, make_engine, upgrade


def test_migrations_create_exactly_the_models(db_url):
    open_database(db_url)
    engine = make_engine(db_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert set(inspect(engine).get_table_names()) >= {"files", "images", "labels", "alembic_version"}


@pytest.mark.backends("sqlite")
def test_sqlite_is_in_wal_mode(db_url, tmp_path):
    sessions = open_database(db_url)
    with sessions() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    raw = sqlite3.connect(tmp_path / "test.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_open_is_idempotent_and_at_head(db_url):
    open_database(db_url)
    sessions = open_database(db_url)
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    with sessions() as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == head


def test_every_revision_downgrades_and_upgrades_again(db_url):
    upgrade(db_url)
    command.downgrade(alembic_config(db_url), "base")
    assert "files" not in inspect(make_engine(db_url)).get_table_names()
    upgrade(db_url)
    assert {"files", "scale_readings", "subsets"} <= set(inspect(make_engine(db_url)).get_table_names())


def test_missing_database_folder_is_a_clear_error(tmp_path):
    import pytest

    with pytest.raises(DatabaseOpenError, match=f"database folder {tmp_path / 'nowhere'} does not exist"):
        open_database(f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}")
