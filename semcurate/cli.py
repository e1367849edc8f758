"""The ``semcurate`` command line: a thin layer over the stage shells."""

from __future__ import annotations

import typer

from semcurate.db import database_url, upgrade

app = typer.Typer(
    help="Curate a repository of SEM images into a tree of sub-categories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")

DbOption = typer.Option(None, "--db", help="SQLAlchemy URL; default $SEMCURATE_DB or sqlite:///semcurate.db.")


@db_app.command("upgrade")
def db_upgrade(db: str | None = DbOption) -> None:
    """Bring the database schema to the newest revision."""
    url = database_url(db)
    upgrade(url)
    typer.echo(f"database {url} is at the newest revision")


def main() -> None:
    """Console-script entry point."""
    app()
