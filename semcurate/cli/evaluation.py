"""``semcurate evaluate``, ``compare-2d`` and ``report``: the evaluation stage (thesis §4.3-4.4) and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semcurate.cli.common import Choice, Db, fail, open_sessions
from semcurate.clustering.methods import METHODS, THESIS_METHODS
from semcurate.progress import print_records, print_table, progress_reporter

EVALUATED_METHOD = Choice("method", METHODS)


def evaluate(
    feature_sets: Annotated[
        list[str], typer.Option("--feature-sets", help="Feature sets, one frame each: --feature-sets A B ...")
    ],
    methods: Annotated[
        list[str],
        typer.Option(
            "--methods",
            parser=EVALUATED_METHOD,
            metavar=EVALUATED_METHOD.metavar,
            help="Clustering methods, one curve each (--methods ward single ...); each must be stored for every "
            "feature set (`semcurate cluster FEATURE_SET --method METHOD`).",
        ),
    ] = THESIS_METHODS,
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset", help="Labelled dataset whose top categories are the truth (only labelled images are scored)."
        ),
    ] = "SEM_Dataset",
    hierarchy: Annotated[
        str | None,
        typer.Option(
            "--hierarchy", help="Labelled dataset with sub-category paths (e.g. Hierarchical) to score the stored tree."
        ),
    ] = None,
    subset: Annotated[str | None, typer.Option("--subset", help="Only clusterings of this subset, e.g. 1u-2u.")] = None,
    k_max: Annotated[int, typer.Option("--k-max", min=2, help="Largest number of clusters scored.")] = 500,
    tree_id: Annotated[
        int | None,
        typer.Option("--tree", min=1, help="Stored tree scored with --hierarchy (see `tree list`); default newest."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for nmi_grid.png/.json and tree_scores.json.")] = Path(
        "results/evaluate"
    ),
    db: Db = None,
) -> None:
    """NMI against the labels as a function of k, with the reference curves (thesis Figs 4.4, 4.5).

    Reads the stored clusterings only: run `semcurate cluster` first for every feature set and method.
    """
    from semcurate.evaluation.evaluate import EvaluationError, evaluate, tree_scores

    sessions = open_sessions(db, read_only=True)
    try:
        with progress_reporter() as reporter:
            result = evaluate(
                sessions, list(feature_sets), list(methods), dataset, out, subset=subset, k_max=k_max, reporter=reporter
            )
        scored = None if hierarchy is None else tree_scores(sessions, hierarchy, tree_id, out_dir=out)
    except EvaluationError as error:
        fail(str(error))
    print_records(f"NMI against {dataset}: the k most above uniform random, per feature set and method", result["best"])
    if scored is not None:
        print_table(
            f"tree {scored['tree_id']} against {hierarchy} ({scored['labelled_images']} labelled images)",
            {
                "leaf NMI": round(scored["leaf_nmi"], 3),
                "tree purity": None if scored["purity"] is None else round(scored["purity"], 3),
            },
        )
        print_records(
            "NMI of each category's children against its sub-categories (not split: the category is one child)",
            [
                {"category": name, **cell, "nmi": None if cell["nmi"] is None else round(cell["nmi"], 3)}
                for name, cell in scored["per_category"].items()
            ],
        )
    typer.echo(f"figure and numbers in {out}")


def compare_2d(
    n_samples: Annotated[
        int, typer.Option("--points", min=30, help="Points per synthetic dataset (thesis: 3,000).")
    ] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Random state of the datasets.")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Folder for compare2d.png and .json.")] = Path("results/compare2d"),
) -> None:
    """Thesis Fig. 4.1: the five algorithms on scikit-learn's synthetic 2-D datasets, with running times."""
    from semcurate.evaluation.evaluate import compare_2d_study

    with progress_reporter() as reporter:
        records = compare_2d_study(out, n_samples=n_samples, random_state=seed, progress=reporter("clusterings", 30))
    print_records(
        f"five algorithms on {n_samples} points per dataset",
        [
            {
                **record,
                "seconds": round(record["seconds"], 3),
                "ari": None if record["ari"] is None else round(record["ari"], 3),
            }
            for record in records
        ],
    )
    typer.echo(f"figure and numbers in {out}")


def report(
    out: Annotated[Path, typer.Argument(help="The HTML file to write (self-contained).")] = Path("report.html"),
    results: Annotated[
        Path, typer.Option("--results", help="Folder the studies wrote their PNG and JSON into.")
    ] = Path("results"),
    store: Annotated[
        Path | None, typer.Option("--store", help="Flat store for thumbnails (default: last ingest's).")
    ] = None,
    db: Db = None,
) -> None:
    """Write one self-contained HTML report of every table and figure the database and results support."""
    from semcurate.evaluation.report import ReportError, write_report

    try:
        summary = write_report(open_sessions(db, read_only=True), results, out, store)
    except ReportError as error:
        fail(str(error))
    typer.echo(
        f"report written to {summary['path']} ({summary['bytes'] / 1e6:.1f} MB): {len(summary['present'])} sections"
    )
    for line in summary["missing"].values():
        typer.echo(f"  missing: {line}")
