"""The SQLAlchemy-free read path (db/quick_read.py, clustering/tree_catalogue.py) against the ORM's answers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys

import pytest
from sqlalchemy import select

from semcurate.clustering.tree_catalogue import list_trees
from semcurate.db import TreeRow, open_database
from semcurate.db.location import DatabaseOpenError
from semcurate.db.quick_read import _sqlalchemy_rows, select_rows


@pytest.fixture
def two_trees(tmp_path):
    path = tmp_path / "trees.db"
    sessions = open_database(str(path))
    with sessions.begin() as session:
        for index, (method, accuracy) in enumerate((("ward", 0.71), ("density-peaks", None))):
            session.add(
                TreeRow(
                    feature_set=f"classic.ae{index + 6}", method=method, labels_dataset="SEM_Dataset", depth=2,
                    rule="silhouette", parameters=json.dumps({"left_out_flagged": 7} if index else {}),
                    n_images=300 + index, n_labelled=120,
                    classifier_accuracy=accuracy, created_at=dt.datetime(2026, 12, 3, 9, 5 + index, 30, 123456),
                )
            )  # fmt: skip
    return path, sessions


def test_the_catalogue_lists_what_the_orm_stored_newest_first(two_trees):
    path, sessions = two_trees
    with sessions() as session:
        stored = session.scalars(select(TreeRow).order_by(TreeRow.id)).all()
    listed = list_trees(str(path))
    assert [tree["id"] for tree in listed] == [stored[1].id, stored[0].id]
    newest = listed[0]
    assert newest["feature_set"] == "classic.ae7" and newest["method"] == "density-peaks"
    assert newest["images"] == 301 and newest["labelled"] == 120 and newest["depth"] == 2
    assert newest["left_out_flagged"] == 7 and listed[1]["left_out_flagged"] == 0  # built before the flags counted
    assert newest["classifier_accuracy"] is None and listed[1]["classifier_accuracy"] == pytest.approx(0.71)
    assert [tree["created"] for tree in listed] == ["2026-12-03 09:06", "2026-12-03 09:05"]


def test_sqlite3_and_sqlalchemy_answer_the_same_query_alike(two_trees):
    path, _ = two_trees
    query = "SELECT id, method, n_images FROM trees WHERE n_images > :least ORDER BY id"
    url = f"sqlite:///{path}"
    assert select_rows(str(path), query, {"least": 300}) == _sqlalchemy_rows(url, query, {"least": 300})
    assert [row["method"] for row in select_rows(url, query, {"least": 0})] == ["ward", "density-peaks"]


def test_reading_leaves_the_file_as_it_was_and_creates_nothing(two_trees, tmp_path):
    path, _ = two_trees
    before = hashlib.md5(path.read_bytes()).hexdigest()
    list_trees(str(path))
    assert hashlib.md5(path.read_bytes()).hexdigest() == before
    missing = tmp_path / "typo.db"
    with pytest.raises(DatabaseOpenError, match=f"no database at {missing}"):
        list_trees(str(missing))
    assert not missing.exists()


def test_a_listing_loads_no_sqlalchemy(two_trees):
    path, _ = two_trees
    code = (
        "import sys; from semcurate.clustering.tree_catalogue import list_trees; "
        f"assert len(list_trees({str(path)!r})) == 2; "
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('sqlalchemy', 'alembic', 'numpy')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
