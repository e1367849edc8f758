"""Issue 11, cases 8 to 11: a bad ``--db``, reading commands that must not create a database, CLI papercuts.

Each case runs the command line as a user would (a subprocess), in a temp dir, and checks the one ``error:`` line,
the exit status, that no traceback is printed, and that the database afterwards is what it was before (or, for a
missing one, still missing).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sqlite3
import subprocess
import sys
from importlib.metadata import version

import pytest

from semcurate.db import Image, TreeMemberRow, TreeNodeRow, TreeRow, open_database
from semcurate.db.session import DatabaseOpenError, database_url, known_revisions

pytestmark = pytest.mark.slow  # the fault campaign: many CLI processes on real corpora (bench/faults.py)

#: Every command that only reads the database, with the arguments it needs.
READING_COMMANDS = (
    ("tree", "list"),
    ("tree", "show"),
    ("tree", "images", "Fibres"),
    ("tree", "export"),
    ("labels", "list"),
    ("labels", "stats"),
    ("scale", "histogram"),
    ("subset", "list"),
    ("cluster", "--list"),
    ("evaluate", "--feature-sets", "classic"),
    ("report",),
)


def semcurate(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "SEMCURATE_DB"}
    return subprocess.run(
        [sys.executable, "-m", "semcurate", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def in_process(*args: str):
    """The command line run in this process (typer's runner): the lists of commands below, without a start-up each."""
    from typer.testing import CliRunner

    from semcurate.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    result.returncode = result.exit_code
    return result


def one_error_line(result, status: int, fragment: str) -> None:
    """``result`` exited with ``status`` after printing exactly one ``error:`` line that contains ``fragment``."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr, result.stderr


def digest(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def schema_revision(path) -> str:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]


@pytest.fixture
def tiny_tree(tmp_path):
    """A database holding one tree by hand: Fibres (3 images) with children Fibres.1 (2) and Fibres.2 (1)."""
    path = tmp_path / "tree.db"
    sessions = open_database(str(path))
    md5s = [f"{index:032x}" for index in range(3)]
    with sessions.begin() as session:
        for index, md5 in enumerate(md5s):
            session.add(
                Image(
                    md5=md5, source_format="tif", jpg_md5=f"{index + 100:032x}", width=8, height=8, mode="L", phash="0"
                )
            )
        tree = TreeRow(
            feature_set="classic", method="ward", labels_dataset="SEM_Dataset", depth=1, rule="silhouette",
            parameters="{}", n_images=3, n_labelled=3,
        )  # fmt: skip
        session.add(tree)
        session.flush()
        root = TreeNodeRow(tree_id=tree.id, path="Fibres", depth=1, position=0, category="Fibres", size=3)
        session.add(root)
        session.flush()
        children = [
            TreeNodeRow(tree_id=tree.id, parent_id=root.id, path="Fibres.1", depth=2, position=0, category="Fibres",
                        size=2, representative_md5=md5s[0]),
            TreeNodeRow(tree_id=tree.id, parent_id=root.id, path="Fibres.2", depth=2, position=1, category="Fibres",
                        size=1, representative_md5=md5s[2]),
        ]  # fmt: skip
        session.add_all(children)
        session.flush()
        members = [(root, md5) for md5 in md5s] + [(children[0], md5s[0]), (children[0], md5s[1])]
        members.append((children[1], md5s[2]))
        session.add_all(TreeMemberRow(node_id=node.id, image_md5=md5, assigned_by="label") for node, md5 in members)
    return path, md5s


# --- case 8: a bad --db -----------------------------------------------------------------------------------------


def test_a_plain_path_is_an_sqlite_file(tmp_path):
    refused = semcurate("db", "upgrade", "--db", "sub/semcurate.db", cwd=tmp_path)
    one_error_line(refused, 2, "database folder sub does not exist")
    (tmp_path / "sub").mkdir()
    upgraded = semcurate("db", "upgrade", "--db", "sub/semcurate.db", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert schema_revision(tmp_path / "sub" / "semcurate.db") == known_revisions()[1]
    listed = semcurate("tree", "list", "--db", "sub/semcurate.db", cwd=tmp_path)
    one_error_line(listed, 1, "no tree stored yet")
    assert database_url("demo/semcurate.db") == "sqlite:///demo/semcurate.db"
    assert database_url("/abs/x.db") == "sqlite:////abs/x.db"
    assert database_url("postgresql://u@host/db") == "postgresql+psycopg://u@host/db"


def test_a_file_that_is_no_database_is_one_line_and_left_as_it_is(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is a text file, not SQLite\n" * 10)
    before = digest(garbage)
    for command in (("tree", "list"), ("db", "upgrade"), ("labels", "list")):
        result = semcurate(*command, "--db", str(garbage))
        one_error_line(result, 2, f"database file {garbage} is not an SQLite database: pass the right --db")
    assert digest(garbage) == before


def test_a_schema_newer_than_the_code_names_its_revision(tmp_path):
    path = tmp_path / "newer.db"
    open_database(str(path))
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099'")
    for command in (("tree", "list"), ("db", "upgrade")):
        result = semcurate(*command, "--db", f"sqlite:///{path}")
        one_error_line(result, 2, f"database {path} was written by a newer semcurate (schema revision 0099")
    assert schema_revision(path) == "0099"


def test_reading_an_older_schema_migrates_nothing_and_writing_upgrades_it(tmp_path):
    from semcurate.db.session import upgrade

    path = tmp_path / "old.db"
    upgrade(f"sqlite:///{path}", "0003")
    head = known_revisions()[1]
    result = semcurate("tree", "list", "--db", str(path))
    one_error_line(result, 2, f"database {path} is at schema revision 0003, not {head}: run `semcurate db upgrade`")
    assert schema_revision(path) == "0003"
    assert semcurate("db", "upgrade", "--db", str(path)).returncode == 0
    assert schema_revision(path) == head


def test_the_cheap_head_is_alembics_head(tmp_path):
    from alembic.script import ScriptDirectory

    from semcurate.db.session import alembic_config

    revisions, head = known_revisions()
    scripts = ScriptDirectory.from_config(alembic_config(f"sqlite:///{tmp_path / 'x.db'}"))
    assert head == scripts.get_current_head()
    assert revisions == {script.revision for script in scripts.walk_revisions()}


def test_a_read_only_database_serves_every_reading_command(tiny_tree):
    path, _ = tiny_tree
    with sqlite3.connect(path) as connection:  # fold the write-ahead log into the file, as a copied database is
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = digest(path)
    for name in (path.name + "-wal", path.name + "-shm"):
        (path.parent / name).unlink(missing_ok=True)
    path.chmod(0o444)
    try:
        shown = semcurate("tree", "show", "--db", str(path))
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[0].startswith("Fibres  (3 images)")
        listed = semcurate("tree", "list", "--json", "--db", str(path))
        assert [tree["images"] for tree in json.loads(listed.stdout)] == [3]
        if os.geteuid() != 0:  # root may write a read-only file
            refused = semcurate("tree", "rename", "Fibres.1", "thin", "--db", str(path))
            one_error_line(refused, 2, f"database file {path} is read-only: this command writes")
    finally:
        path.chmod(0o644)
    assert digest(path) == before


def test_read_only_open_refuses_to_write(tiny_tree):
    from sqlalchemy.exc import OperationalError

    path, _ = tiny_tree
    sessions = open_database(str(path), read_only=True)
    with pytest.raises(OperationalError, match="readonly database"), sessions.begin() as session:
        session.add(Image(md5="f" * 32, source_format="tif", jpg_md5="e" * 32, width=1, height=1, mode="L", phash="0"))


@pytest.mark.skipif(importlib.util.find_spec("psycopg") is not None, reason="the PostgreSQL driver is installed")
def test_postgresql_without_its_driver_names_the_extra():
    result = semcurate("tree", "list", "--db", "postgresql://user@localhost/semcurate")
    one_error_line(result, 2, "pip install 'semcurate[postgres]'")
    with pytest.raises(DatabaseOpenError, match="module psycopg missing"):
        open_database("postgresql://user@localhost/semcurate")


def test_db_upgrade_in_a_missing_folder_creates_nothing(tmp_path):
    result = semcurate("db", "upgrade", "--db", f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}")
    one_error_line(result, 2, f"database folder {tmp_path / 'no' / 'such'} does not exist: create it")
    assert not (tmp_path / "no").exists()


# --- case 9: silent surprises ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_reading_commands_never_create_a_database(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)  # nor anything else, where the defaults (report.html, results/) would land
    typo = tmp_path / "typo.db"
    result = in_process(*command, "--db", f"sqlite:///{typo}")
    one_error_line(result, 2, f"no database at {typo}: run `semcurate ingest` first or pass --db")
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_scale_group_db_reaches_its_sub_commands(tmp_path):
    typo = tmp_path / "typo.db"
    result = semcurate("scale", "--db", str(typo), "histogram")
    one_error_line(result, 2, f"no database at {typo}")
    empty = tmp_path / "empty.db"
    open_database(str(empty))
    one_error_line(semcurate("scale", "--db", str(empty), "histogram"), 1, "no scale readings yet")
    own = semcurate("scale", "--db", str(empty), "histogram", "--db", str(typo))  # the sub-command's own wins
    one_error_line(own, 2, f"no database at {typo}")


def test_scale_read_of_a_missing_file_exits_non_zero(tmp_path):
    result = semcurate("scale", "read", str(tmp_path / "missing.tif"), "--source", "metadata", "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and str(tmp_path / "missing.tif") in result.stderr
    assert json.loads(result.stdout)["status"] == "error"


def test_a_scale_run_that_read_no_bar_is_told_as_such(tiny_tree):
    from semcurate.db import ScaleReading

    path, md5s = tiny_tree
    sessions = open_database(str(path))
    with sessions.begin() as session:
        session.add_all(ScaleReading(image_md5=md5, status="no_stripe", reader_version="1") for md5 in md5s)
    result = in_process("scale", "histogram", "--db", str(path))
    one_error_line(result, 1, "no image has a scale read from its data bar (3 no_stripe): see `semcurate scale read")
    with sessions.begin() as session:
        for md5, value in zip(md5s[:2], (1.0, 200.0), strict=True):
            row = session.get(ScaleReading, md5)
            row.status, row.value, row.unit = "ok", value, "µm" if value == 1.0 else "nm"
    shown = in_process("scale", "histogram", "--json", "--db", str(path))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {
        "columns": ["images"],
        "rows": [{"scale": "1 µm", "images": 1}, {"scale": "200 nm", "images": 1}],
        "flagged": [],
    }


# --- case 10: papercuts ------------------------------------------------------------------------------------------


def test_version_and_short_help():
    shown = semcurate("--version")
    assert shown.returncode == 0 and shown.stdout == f"semcurate {version('semcurate')}\n"
    for command in ((), ("tree",), ("tree", "list"), ("scale", "histogram")):
        helped = in_process(*command, "-h")
        assert helped.returncode == 0 and "Usage: " in helped.stdout and re.search(r"--help +-h ", helped.stdout)


def test_the_labelled_dataset_option_is_called_dataset():
    for command in (("tree", "build"), ("scale", "histogram"), ("labels", "stats"), ("evaluate",), ("finetune",)):
        helped = in_process(*command, "--help")
        assert "--dataset" in helped.stdout and "--by-label" not in helped.stdout and "--labels" not in helped.stdout


def test_json_of_the_tree_commands_and_export_members(tiny_tree):
    path, md5s = tiny_tree
    db = ("--db", str(path))
    listed = json.loads(semcurate("tree", "list", "--json", *db).stdout)
    assert [(tree["feature_set"], tree["images"]) for tree in listed] == [("classic", 3)]
    shown = json.loads(semcurate("tree", "show", "Fibres", "--json", *db).stdout)
    assert [child["path"] for child in shown["nodes"][0]["children"]] == ["Fibres.1", "Fibres.2"]
    images = json.loads(semcurate("tree", "images", "Fibres.1", "--json", *db).stdout)
    assert images == [md5s[0], md5s[1]]  # no ingest run: md5s; the representative first
    exported = json.loads(semcurate("tree", "export", *db).stdout)
    root = exported["nodes"][0]
    assert root["members"] == md5s
    assert [child["members"] for child in root["children"]] == [md5s[:2], md5s[2:]]


def test_json_of_the_labels_and_subset_lists(tiny_tree):
    from semcurate.db import Label, LabelDataset, Subset, SubsetMember

    path, md5s = tiny_tree
    sessions = open_database(str(path))
    with sessions.begin() as session:
        session.add(
            LabelDataset(name="SEM_Dataset", directory="/ds", n_files=3, n_unique=3, n_matched=3,
                         n_matched_reencoded=0, n_unmatched=0, n_conflicting=0)
        )  # fmt: skip
        session.add(Subset(name="1u-2u", criteria='{"scales": ["1 µm"]}', size=1))
        session.flush()
        for md5, category in zip(md5s, ("Fibres", "Fibres", "Particles"), strict=True):
            session.add(Label(dataset="SEM_Dataset", relpath=f"{category}/{md5}.jpg", file_md5=md5,
                              category_path=category, category=category, image_md5=md5, match="md5"))  # fmt: skip
        session.add(SubsetMember(subset="1u-2u", image_md5=md5s[0]))
    db = ("--db", str(path))
    listed = json.loads(in_process("labels", "list", "--json", *db).stdout)
    assert [(row["name"], row["categories"], row["matched"]) for row in listed] == [("SEM_Dataset", 2, 3)]
    counted = json.loads(in_process("labels", "stats", "--json", "--dataset", "SEM_Dataset", *db).stdout)
    assert counted == {"SEM_Dataset": {"Fibres": 2, "Particles": 1}}
    subsets = json.loads(in_process("subset", "list", "--json", *db).stdout)
    assert [(row["name"], row["size"]) for row in subsets] == [("1u-2u", 1)]


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (("tree", "list", "--json"), "no tree stored yet"),
        (("tree", "show"), "no sub-category tree is stored yet"),
        (("labels", "list", "--json"), "no labelled dataset imported yet"),
        (("labels", "stats", "--json"), "no matched labels to count"),
        (("subset", "list", "--json"), "no subsets yet"),
        (("scale", "histogram", "--json"), "no scale readings yet"),
        (("cluster", "--list", "--json"), "no clusterings stored yet"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_nothing_stored_yet_is_exit_status_1_everywhere(tmp_path, command, fragment):
    path = tmp_path / "empty.db"
    open_database(str(path))
    one_error_line(in_process(*command, "--db", str(path)), 1, fragment)


# --- case 11: latency ---------------------------------------------------------------------------------------------


def test_help_and_tree_list_load_no_database_layer_and_reading_an_up_to_date_database_no_alembic(tiny_tree):
    path, _ = tiny_tree

    def imported(*args: str) -> set[str]:
        run = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "semcurate", *args], capture_output=True, text=True, timeout=120
        )
        return {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}

    helped = imported("--help")
    assert "typer" in helped and not {name for name in helped if name.startswith(("sqlalchemy", "alembic"))}
    listed = imported("tree", "list", "--db", str(path))
    assert "sqlite3" in listed and not {name for name in listed if name.startswith(("sqlalchemy", "alembic"))}
    shown = imported("tree", "show", "--db", str(path))
    assert "sqlalchemy.orm" in shown and not {name for name in shown if name.startswith("alembic")}


def test_four_processes_creating_one_new_database_at_once_all_succeed(tmp_path):
    database = tmp_path / "new.db"
    code = "import sys\nfrom semcurate.db import open_database\nopen_database(sys.argv[1])"
    runs = [
        subprocess.Popen([sys.executable, "-c", code, str(database)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    outcomes = [(run.wait(timeout=120), run.stderr.read().decode()) for run in runs]
    assert outcomes == [(0, "")] * 4
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(known_revisions()[1],)]
