"""The ``semcurate`` command line: a thin layer over the stage shells.

Errors are one line on stderr with a non-zero exit status (2 for bad
arguments, missing sources or unusable stores), never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from semcurate.db import database_url, open_database, upgrade
from semcurate.progress import print_table, progress_reporter

app = typer.Typer(
    help="Curate a repository of SEM images into a tree of sub-categories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")

DbOption = typer.Option(None, "--db", help="SQLAlchemy URL; default $SEMCURATE_DB or sqlite:///semcurate.db.")


def fail(message: str, status: int = 2) -> None:
    """Print one clear error line and exit with ``status``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(status)


def sessions_for(db: str | None):
    """Open (and migrate) the database, turning a bad location into one error line."""
    try:
        return open_database(db)
    except FileNotFoundError as error:
        fail(str(error))


@db_app.command("upgrade")
def db_upgrade(db: str | None = DbOption) -> None:
    """Bring the database schema to the newest revision."""
    url = database_url(db)
    upgrade(url)
    typer.echo(f"database {url} is at the newest revision")


@app.command()
def ingest(
    source: Path = typer.Argument(..., help="Root of the source tree; read, never written."),
    store: Path = typer.Option(..., "--store", help="Flat store folder for <md5>.tif and <md5>.jpg (created if missing)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes for hashing and conversion."),
    max_pixels: int = typer.Option(
        100_000_000, "--max-pixels", min=1, help="Largest width × height admitted, in pixels (decompression-bomb guard)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    db: str | None = DbOption,
) -> None:
    """Inventory SOURCE, de-duplicate by MD5, flatten into STORE, record every file (thesis §2.1)."""
    from semcurate.ingest.ingestion import IngestError, Ingestion

    sessions = sessions_for(db)
    try:
        with progress_reporter(enabled=not as_json) as reporter:
            summary = Ingestion(source, store, sessions, workers=workers, max_pixels=max_pixels, reporter=reporter).run()
    except IngestError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(summary))
        return
    by_format = summary.pop("by_format")
    print_table("ingest summary", summary)
    print_table("files by format (thesis Table 2.1)", by_format, ("format", "files"))


def main() -> None:
    """Console-script entry point."""
    app()
