"""The ``semcurate`` command line: a thin layer over the stage shells, one module per stage.

:mod:`~semcurate.cli.ingest` (``ingest``, ``labels``), :mod:`~semcurate.cli.scale`
(``scale``, ``subset``), :mod:`~semcurate.cli.features` (``features``,
``finetune``, ``id``, ``reduce``, ``distances``), :mod:`~semcurate.cli.clustering`
(``cluster``, ``n-clusters``, ``tree``), :mod:`~semcurate.cli.evaluation`
(``evaluate``, ``compare-2d``, ``report``), :mod:`~semcurate.cli.datasets`
(``demo-data``), :mod:`~semcurate.cli.pipeline` (``demo``, ``db``) and
:mod:`~semcurate.cli.web` (``serve``, ``similar``); what
they share is in :mod:`~semcurate.cli.common`.

Options with a fixed set of values list them in ``--help`` and refuse any
other while parsing (exit status 2). The errors a stage expects (a missing
source, an unknown feature set, a clustering not stored yet, ...) are one
``error:`` line on stderr with a non-zero exit status, never a traceback;
anything else is a bug and shows its traceback. The stage modules are
imported inside the commands, so ``semcurate --help`` loads neither numpy nor
SQLAlchemy.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from semcurate.cli import clustering, datasets, evaluation, features, ingest, pipeline, quality, scale, web
from semcurate.features.quiet_tensorflow import VERBOSE_VARIABLE

__all__ = ["app", "main", "main_options", "print_version", "spread_multi_value_options"]

app = typer.Typer(
    help="Curate a repository of SEM images into a tree of sub-categories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def print_version(requested: bool) -> None:
    """Print ``semcurate VERSION`` and exit, when ``--version`` was given."""
    if requested:
        from importlib.metadata import version

        typer.echo(f"semcurate {version('semcurate')}")
        raise typer.Exit()


@app.callback()
def main_options(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Also show TensorFlow's and Keras' own messages (start-up lines, downloads)."
        ),
    ] = False,
) -> None:
    """Curate a repository of SEM images into a tree of sub-categories."""
    if verbose:
        os.environ[VERBOSE_VARIABLE] = "1"  # read where TensorFlow loads, also in worker processes


app.command("ingest")(ingest.ingest)
app.add_typer(ingest.labels_app, name="labels")
app.add_typer(scale.scale_app, name="scale")
app.add_typer(scale.subset_app, name="subset")
app.add_typer(quality.quality_app, name="quality")
app.command("outliers")(quality.outliers)
app.add_typer(features.features_app, name="features")
app.command("finetune")(features.finetune)
app.command("id")(features.intrinsic_dimension)
app.command("reduce")(features.reduce)
app.command("distances")(features.distances)
app.command("cluster")(clustering.cluster)
app.command("n-clusters")(clustering.n_clusters)
app.add_typer(clustering.tree_app, name="tree")
app.command("evaluate")(evaluation.evaluate)
app.command("compare-2d")(evaluation.compare_2d)
app.command("report")(evaluation.report)
app.command("demo-data")(datasets.demo_data)
app.command("demo")(pipeline.demo)
app.add_typer(pipeline.db_app, name="db")
app.command("serve")(web.serve)
app.command("similar")(web.similar)

#: Options that take several values in a row (``--methods ward single``), as the thesis' figures list them.
MULTI_VALUE_OPTIONS = ("--feature-sets", "--methods")


def spread_multi_value_options(argv: list[str]) -> list[str]:
    """``--methods ward single`` as ``--methods ward --methods single`` (Click options take one value each)."""
    spread: list[str] = []
    option = None
    for token in argv:
        if token in MULTI_VALUE_OPTIONS:
            option = token
            continue
        if option is not None and not token.startswith("-"):
            spread += [option, token]
            continue
        option = None
        spread.append(token)
    return spread


def main() -> None:
    """Console-script entry point: ``semcurate ARGS``."""
    app(args=spread_multi_value_options(sys.argv[1:]))
