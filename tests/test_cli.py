"""The command line end to end on a tiny corpus: exit codes, JSON keys, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def semcurate(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, text=True,
                          cwd=cwd, env=env)


def test_demo_data_ingest_and_labels_from_the_command_line(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    made = semcurate("demo-data", str(tmp_path / "corpus"), "--images", "24", "--seed", "5", "--size-scale", "0.25")
    assert made.returncode == 0, made.stderr
    again = semcurate("demo-data", str(tmp_path / "corpus"), "--images", "24")
    assert again.returncode == 2 and again.stderr.startswith("error: ") and again.stderr.count("\n") == 1

    ingested = semcurate("ingest", str(tmp_path / "corpus" / "new_dati_SEM"), "--store", str(tmp_path / "store"),
                         "--db", db, "--workers", "2", "--json")
    assert ingested.returncode == 0, ingested.stderr
    summary = json.loads(ingested.stdout)
    required = {"files_seen", "images_new", "images_total", "duplicates", "corrupt", "unsupported", "jpg_only",
                "near_duplicate_groups", "by_format"}
    assert required <= set(summary)
    assert summary["images_new"] == summary["images_total"] == 24

    imported = semcurate("labels", "import", str(tmp_path / "corpus" / "datasets" / "Majority"),
                         "--name", "Majority", "--db", db, "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["n_files"] > 0
    listed = semcurate("labels", "list", "--db", db)
    assert listed.returncode == 0 and "Majority" in listed.stdout
    stats = semcurate("labels", "stats", "--db", db)
    assert stats.returncode == 0 and "total" in stats.stdout


def test_database_url_comes_from_the_environment(tmp_path):
    env = {**os.environ, "SEMCURATE_DB": f"sqlite:///{tmp_path / 'from_env.db'}"}
    result = semcurate("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 0
    assert (tmp_path / "from_env.db").exists() and not (tmp_path / "semcurate.db").exists()
    default = semcurate("db", "upgrade", cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "SEMCURATE_DB"})
    assert default.returncode == 0 and (tmp_path / "semcurate.db").exists()


def test_labels_before_any_ingest_is_a_clear_error(tmp_path):
    (tmp_path / "ds" / "Fibres").mkdir(parents=True)
    db = f"sqlite:///{tmp_path / 'e.db'}"
    result = semcurate("labels", "import", str(tmp_path / "ds"), "--name", "x", "--db", db)
    assert result.returncode == 2 and "ingest" in result.stderr and result.stderr.count("\n") == 1
