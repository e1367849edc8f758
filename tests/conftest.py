"""Shared fixtures: a fresh database per test, in a temporary folder."""

from __future__ import annotations

import pytest

from semcurate.db import open_database


@pytest.fixture
def db_url(tmp_path) -> str:
    """URL of a new, empty SQLite database for one test."""
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def sessions(db_url):
    """A session factory over the migrated test database."""
    return open_database(db_url)
