"""The command line end to end on a tiny corpus: exit codes, JSON keys, one-line errors."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from semcurate.cli import app, spread_multi_value_options
from semcurate.cli.common import Choice
from semcurate.features.store import FeatureStore


def semcurate(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_demo_data_labels_the_share_asked_and_refuses_one_outside_0_to_1(tmp_path):
    import csv

    made = semcurate(
        "demo-data", str(tmp_path / "half"), "--images", "40", "--size-scale", "0.1", "--labelled-share", "0.5"
    )
    assert made.returncode == 0, made.stderr
    with (tmp_path / "half" / "ground_truth.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    images = {row["image_id"] for row in rows if row["kind"] in ("original", "near-duplicate")}
    labelled = {row["image_id"] for row in rows if row["dataset"] == "SEM_Dataset"} & images
    assert 0.5 <= len(labelled) / len(images) <= 0.8  # half of each category, 3 images at least (all of fewer)
    refused = semcurate("demo-data", str(tmp_path / "none"), "--images", "5", "--labelled-share", "0")
    assert refused.returncode == 2 and "--labelled-share" in refused.stderr
    assert not (tmp_path / "none").exists()


def test_two_demo_data_runs_on_one_folder_at_once_leave_one_whole_corpus_and_one_error_line(tmp_path):
    import csv

    out = tmp_path / "shared"
    args = ("demo-data", str(out), "--images", "200", "--size-scale", "0.05", "--workers", "1")
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "semcurate", *args, "--seed", seed],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2")
    ]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    ended = [(run.returncode, error) for run, error in zip(runs, errors, strict=True)]
    assert sorted(status for status, _err in ended) == [0, 2], ended
    error = next(err for status, err in ended if status == 2)
    (line,) = [line for line in error.splitlines() if line.startswith("error:")]  # beside the progress bar, if drawn
    assert "Traceback" not in error
    assert re.fullmatch(
        r"error: (another demo-data is running on .* \(pid \d+\): wait for it to end"
        r"|.* already exists and is not empty; .*)",
        line,
    )
    with (out / "ground_truth.csv").open(newline="", encoding="utf-8") as handle:
        listed = {row["path"] for row in csv.DictReader(handle)}
    written = {str(path.relative_to(out)) for path in out.rglob("*") if path.is_file()} - {"ground_truth.csv"}
    assert written == listed  # one run's files, every one in its truth table: nothing mixed in, nothing lost


def test_demo_over_a_half_drawn_corpus_is_one_line_not_a_traceback(tmp_path):
    stray = tmp_path / "demo" / "corpus" / "new_dati_SEM" / "left.tif"  # a corpus stage killed before its truth table
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"II*\x00")
    ran = semcurate("demo", "--out", str(tmp_path / "demo"), "--images", "5")
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    assert ran.stderr.strip().splitlines()[-1] == (
        f"error: {stray.parent} already exists and is not empty; write the demo corpus into a new folder"
    )
    assert [path.name for path in stray.parent.iterdir()] == ["left.tif"]


@pytest.mark.slow
def test_demo_data_ingest_and_labels_from_the_command_line(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    made = semcurate("demo-data", str(tmp_path / "corpus"), "--images", "24", "--seed", "5", "--size-scale", "0.25")
    assert made.returncode == 0, made.stderr
    again = semcurate("demo-data", str(tmp_path / "corpus"), "--images", "24")
    assert again.returncode == 2 and again.stderr.startswith("error: ") and again.stderr.count("\n") == 1

    ingested = semcurate(
        "ingest",
        str(tmp_path / "corpus" / "new_dati_SEM"),
        "--store",
        str(tmp_path / "store"),
        "--db",
        db,
        "--workers",
        "2",
        "--json",
    )
    assert ingested.returncode == 0, ingested.stderr
    summary = json.loads(ingested.stdout)
    required = {
        "files_seen",
        "images_new",
        "images_total",
        "duplicates",
        "corrupt",
        "unsupported",
        "jpg_only",
        "near_duplicate_groups",
        "by_format",
    }
    assert required <= set(summary)
    assert summary["images_new"] == summary["images_total"] == 24

    imported = semcurate(
        "labels",
        "import",
        str(tmp_path / "corpus" / "datasets" / "Majority"),
        "--name",
        "Majority",
        "--db",
        db,
        "--json",
    )
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
    assert result.returncode == 1 and "ingest" in result.stderr and result.stderr.count("\n") == 1


def choice_options(typer_app, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], tuple[str, ...]]:
    """``{(command words..., option): values}`` for every option of ``typer_app`` that takes one of fixed values."""
    found = {}
    commands = [(info.name, info.callback) for info in typer_app.registered_commands]
    for group in typer_app.registered_groups:
        found.update(choice_options(group.typer_instance, (*prefix, group.name)))
        if group.typer_instance.registered_callback is not None:
            commands.append((None, group.typer_instance.registered_callback.callback))
    for name, callback in commands:
        for parameter in inspect.signature(callback, eval_str=True).parameters.values():
            for info in getattr(parameter.annotation, "__metadata__", ()):
                if isinstance(getattr(info, "parser", None), Choice):
                    words = (*prefix, name) if name else prefix
                    # In Annotated[...] style the option's name is typer.Option's first argument, ``default``.
                    option = next(decl for decl in (info.default, *info.param_decls) if str(decl).startswith("--"))
                    found[(*words, option)] = info.parser.values
    return found


#: Commands that compare rows by distance and scale them first (--preprocessing).
PREPROCESSED_COMMANDS = (("cluster",), ("n-clusters",), ("tree", "build"), ("reduce",), ("outliers",))


def test_every_choice_of_the_command_line_is_the_list_its_core_accepts():
    from semcurate.clustering import agglomerative, flat, n_clusters, runs, splitting
    from semcurate.features import analysis, finetune, preprocessing
    from semcurate.ingest import quality

    extract = importlib.import_module("semcurate.features.extract")  # the package's `extract` is the function

    trees_then_flat = (*agglomerative.LINKAGE_METHODS, "density-peaks", *flat.FLAT_METHODS)
    assert choice_options(app) == {
        ("cluster", "--method"): trees_then_flat,
        ("tree", "build", "--method"): trees_then_flat,
        ("evaluate", "--methods"): trees_then_flat,
        ("tree", "build", "--rule"): splitting.SPLIT_RULES,
        ("n-clusters", "--criterion"): n_clusters.N_CLUSTERS_METHODS,
        ("n-clusters", "--method"): (*n_clusters.K_METHODS, *n_clusters.TREE_ALGORITHMS),
        ("reduce", "--method"): analysis.REDUCE_METHODS,
        ("tree", "export", "--format"): ("json", "newick"),
        ("scale", "read", "--source"): ("auto", "ocr", "metadata"),
        ("features", "extract", "--extractor"): extract.EXTRACTORS,
        ("finetune", "--mode"): tuple(finetune.LEARNING_RATES),
        ("quality", "list", "--flag"): quality.FLAGS,
        ("quality", "exclude", "--flag"): quality.FLAGS,
        **{(*command, "--preprocessing"): preprocessing.PREPROCESSING for command in PREPROCESSED_COMMANDS},
    }
    assert runs.METHODS == trees_then_flat
    assert set(n_clusters.K_METHODS) == set(flat.FLAT_METHODS) - {"hdbscan", "louvain"}


def test_a_value_outside_a_choice_fails_while_parsing_and_help_lists_the_values():
    wide = {**os.environ, "COLUMNS": "200"}  # rich wraps the message in a box as wide as the terminal
    refused = semcurate(
        "tree", "build", "classic", "--rule", "biggest", "--db", "sqlite:////no/such/folder/x.db", env=wide
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "unknown rule 'biggest'; choose one of silhouette, gap, dendrogram-gap" in refused.stderr
    listed = semcurate("n-clusters", "--help", env=wide)
    assert listed.returncode == 0 and "[elbow|silhouette|gap]" in listed.stdout


def test_multi_value_options_are_spread_for_click():
    assert spread_multi_value_options(
        ["evaluate", "--feature-sets", "a", "b", "--methods", "ward", "single", "--k-max", "5"]
    ) == [
        "evaluate",
        "--feature-sets",
        "a",
        "--feature-sets",
        "b",
        "--methods",
        "ward",
        "--methods",
        "single",
        "--k-max",
        "5",
    ]


def one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> bool:
    """Exit status 2 and exactly one ``error:`` line on stderr holding every fragment (so no traceback)."""
    return (
        result.returncode == 2
        and result.stderr.startswith("error: ")
        and result.stderr.count("\n") == 1
        and all(fragment in result.stderr for fragment in fragments)
    )


@pytest.mark.slow
def test_bad_requests_a_core_refuses_are_one_error_line(tmp_path):
    rng = np.random.default_rng(0)
    FeatureStore(tmp_path / "f.h5").append("rows", [f"{index:032x}" for index in range(40)], rng.normal(size=(40, 6)))
    common = ("--db", f"sqlite:///{tmp_path / 'bad.db'}", "--feature-store", str(tmp_path / "f.h5"))
    clusters = ("--cluster-store", str(tmp_path / "c.h5"))
    assert one_error_line(
        semcurate("cluster", "rows", "--method", "ward", "--k-max", "41", *clusters, *common),
        "k_max = 41 but there are 40 points",
    )
    assert one_error_line(
        semcurate("cluster", "rows", "--method", "density-peaks", "--param", "n_neighbours=5", *clusters, *common),
        "density-peaks:",
        "n_neighbours",
    )
    assert one_error_line(
        semcurate("cluster", "rows", "--method", "kmeans", "--k-max", "3", "--param", "n_init=-1", *clusters, *common),
        "kmeans:",
        "n_init",
    )
    assert one_error_line(
        semcurate("n-clusters", "rows", "--k-max", "60", "--out", str(tmp_path / "n"), *common),
        "silhouette of kmeans on rows:",
        "k_range reaches k = 60 but 40 samples allow at most k = 39",
    )
    assert one_error_line(
        semcurate("reduce", "rows", "--tying", "diagonal", "--code-size", "2", *common),
        "tying: unknown pair(s) ['diagonal']",
    )
    assert one_error_line(
        semcurate("reduce", "rows", "--code-size", "many", *common),
        "code size must be a whole number or auto, not 'many'",
    )
    assert one_error_line(
        semcurate("reduce", "rows", "--method", "pca", "--code-size", "6", *common),
        "code size must be between 1 and 5, got 6",
    )
    assert one_error_line(
        semcurate(
            "tree",
            "build",
            "rows",
            "--method",
            "centroid",
            "--rule",
            "dendrogram-gap",
            "--store",
            str(tmp_path),
            *common,
        ),
        "dendrogram-gap rule needs monotone merge heights",
        "'centroid'",
    )
    assert not (tmp_path / "n").exists() and FeatureStore(tmp_path / "f.h5").names() == ["rows"]


def test_the_command_line_loads_no_stage_libraries_until_a_command_runs():
    code = (
        "import sys, semcurate.cli\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & "
        "{'numpy', 'sklearn', 'scipy', 'sqlalchemy', 'alembic', 'matplotlib', 'tensorflow', 'keras', 'h5py'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
