"""``semcurate ingest`` and ``semcurate labels``: the inventory of the source tree and the labelled datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semcurate.cli.common import (
    AsJson,
    Db,
    Scheduler,
    connect_scheduler,
    database_errors,
    echo_json,
    fail,
    image_store,
    open_sessions,
    show_records,
)
from semcurate.progress import print_table, progress_reporter

labels_app = typer.Typer(help="Labelled datasets: import, list, statistics (thesis §2.2).", no_args_is_help=True)

#: Skipped files listed after a label import; the rest are counted.
SKIPPED_SHOWN = 20


def ingest(
    source: Annotated[Path, typer.Argument(help="Root of the source tree; read, never written.")],
    store: Annotated[
        Path, typer.Option("--store", help="Flat store folder for <md5>.tif and <md5>.jpg (created if missing).")
    ],
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes for hashing and conversion.")] = 1,
    max_pixels: Annotated[
        int,
        typer.Option(
            "--max-pixels",
            min=1,
            help="Largest width × height admitted, in pixels (decompression-bomb guard).",
        ),
    ] = 100_000_000,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Look again at files recorded as corrupt, rejected or unreadable.",
        ),
    ] = False,
    scheduler: Scheduler = None,
    as_json: AsJson = False,
    db: Db = None,
) -> None:
    """Inventory SOURCE, de-duplicate by MD5, flatten into STORE, record every file (thesis §2.1)."""
    from semcurate.ingest.ingestion import IngestError, Ingestion

    sessions = open_sessions(db)
    connect_scheduler(scheduler, [source, store])
    try:
        with database_errors(db), progress_reporter(enabled=not as_json) as reporter:
            summary = Ingestion(
                source,
                store,
                sessions,
                workers=workers,
                max_pixels=max_pixels,
                retry_failed=retry_failed,
                reporter=reporter,
                scheduler=scheduler,
            ).run()
    except IngestError as error:
        fail(str(error))
    if as_json:
        echo_json(summary)
        return
    by_format = summary.pop("by_format")
    seconds = summary.pop("seconds")
    print_table("ingest summary", summary)
    print_table("seconds per phase", seconds, ("phase", "s"))
    print_table("files by format (thesis Table 2.1)", by_format, ("format", "files"))


@labels_app.command("import")
def labels_import(
    directory: Annotated[
        Path, typer.Argument(help="Dataset folder laid out as CATEGORY/file.jpg or CATEGORY/SUB/.../file.jpg.")
    ],
    name: Annotated[
        str, typer.Option("--name", help="Dataset name, e.g. SEM_Dataset; re-importing a name replaces it.")
    ],
    store: Annotated[
        Path | None, typer.Option("--store", help="Flat store holding the TIFFs; default: the last ingest's.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes for re-encoding matches.")] = 1,
    as_json: AsJson = False,
    db: Db = None,
) -> None:
    """Match a labelled dataset to the ingested images by MD5, then by re-encoding TIFFs (thesis Table 2.2)."""
    from semcurate.ingest.labels import LabelImportError, import_labels

    sessions = open_sessions(db)
    store = image_store(sessions, store)
    try:
        with progress_reporter(enabled=not as_json) as reporter:
            summary = import_labels(directory, name, sessions, store, workers=workers, reporter=reporter)
    except LabelImportError as error:
        fail(str(error))
    if as_json:
        echo_json(summary)
        return
    skipped = summary.pop("skipped")
    print_table(f"labels imported: {name}", summary)
    for reason in skipped[:SKIPPED_SHOWN]:
        typer.echo(f"skipped {reason}")
    if len(skipped) > SKIPPED_SHOWN:
        typer.echo(f"... and {len(skipped) - SKIPPED_SHOWN} more skipped")


@labels_app.command("list")
def labels_list(as_json: AsJson = False, db: Db = None) -> None:
    """Every imported dataset with its matching counts (thesis Table 2.2)."""
    from semcurate.ingest.labels import dataset_table

    show_records(
        "labelled datasets (thesis Table 2.2)",
        dataset_table(open_sessions(db, read_only=True)),
        as_json=as_json,
        nothing_yet="no labelled dataset imported yet: run `semcurate labels import DIR --name NAME`",
    )


@labels_app.command("stats")
def labels_stats(
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only this dataset.")] = None,
    depth: Annotated[int, typer.Option("--depth", min=1, help="Label levels to keep (1: the 10 categories).")] = 1,
    as_json: AsJson = False,
    db: Db = None,
) -> None:
    """Distinct matched images per category, per dataset (thesis Fig. 2.3)."""
    from semcurate.ingest.labels import category_distribution

    distribution = category_distribution(open_sessions(db, read_only=True), dataset, depth)
    if not distribution:
        fail("no matched labels to count: import a dataset first (`semcurate labels import`)", 1)
    if as_json:
        echo_json(distribution)
        return
    names = list(distribution)
    labels = sorted({label for counts in distribution.values() for label in counts})
    rows = [(label, *(distribution[name].get(label, 0) for name in names)) for label in labels]
    rows.append(("total", *(sum(distribution[name].values()) for name in names)))
    print_table("images per category", rows, ("category", *names))
