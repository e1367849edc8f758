"""``semcurate demo`` (every stage end to end) and ``semcurate db upgrade`` (the schema)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semcurate.cli.common import Db, fail, open_sessions
from semcurate.progress import print_table, progress_reporter

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(db: Db = None) -> None:
    """Bring the database schema to the newest revision."""
    from semcurate.db import database_url

    open_sessions(db)
    url = database_url(db)
    typer.echo(f"database {url} is at the newest revision")


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the corpus, store and database.")] = Path("demo"),
    images: Annotated[int, typer.Option("--images", min=1, help="Distinct images in the generated corpus.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Corpus seed.")] = 0,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Processes; default: every core.")] = None,
) -> None:
    """Run every stage end to end on a generated demo corpus; re-running skips finished work."""
    from semcurate.demo import DemoError, default_workers, run_demo

    try:
        with progress_reporter() as reporter:
            results = run_demo(out, images, seed, workers or default_workers(), reporter, typer.echo)
    except DemoError as error:
        fail(str(error))
    print_table("wall time per stage", {stage: f"{seconds:.1f} s" for stage, seconds in results["timings"].items()})
    database = (out / "semcurate.db").resolve()
    typer.echo(f"\nreport: {(out / 'report.html').resolve()} (open it in any browser)")
    typer.echo(f"results: database {database}, flat store {(out / 'store').resolve()}")
    typer.echo(f"explore: semcurate labels list --db sqlite:///{database}")
    typer.echo(f"         semcurate scale histogram --dataset SEM_Dataset --db sqlite:///{database}")
    typer.echo(f"         semcurate tree show --depth 1 --db sqlite:///{database}")
