"""What every command module shares: the one error exit, the common options, opening the database, JSON output.

Nothing here imports numpy, scikit-learn, TensorFlow or SQLAlchemy at module
level, so ``semcurate --help`` stays fast; the database is opened inside the
commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from semcurate.features.methods import PREPROCESSING

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

#: Default HDF5 file of the feature rows: none, meaning the file the database records for the feature set
#: (``features.h5`` in the working folder for a set not extracted yet).
FEATURE_STORE: Path | None = None
#: Default HDF5 file of the linkage matrices and partitions.
CLUSTER_STORE = Path("clusterings.h5")

Db = Annotated[
    str | None,
    typer.Option("--db", help="SQLAlchemy URL or SQLite file path; default $SEMCURATE_DB or sqlite:///semcurate.db."),
]
FeatureStorePath = Annotated[
    Path | None,
    typer.Option(
        "--feature-store",
        help="HDF5 file holding the feature rows; default: the one the database records for the set, else features.h5.",
    ),
]
ClusterStorePath = Annotated[
    Path, typer.Option("--cluster-store", help="HDF5 file of linkage matrices and partitions (created if missing).")
]
ImageStore = Annotated[
    Path | None, typer.Option("--store", help="Flat store of the images; default: the last ingest's.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")]
Subset = Annotated[str | None, typer.Option("--subset", help="Only images of this subset, e.g. 1u-2u.")]
Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="ADDRESS|local:N",
        help="Run the per-image work on Dask: a dask.distributed scheduler's address (tcp://host:8786; its "
        "workers must see the store and source paths) or local:N, a local cluster of N worker processes; "
        "default: the local process pool of --workers. Needs pip install 'semcurate[distributed]'.",
    ),
]


def fail(message: str, status: int = 2) -> NoReturn:
    """Print ``message`` as one ``error:`` line on stderr and exit with ``status``.

    Parameters
    ----------
    message : str
        What went wrong and the fix, naming the path or value.
    status : int
        2 when the request cannot be served (a bad value, a missing or
        unreadable database, file or folder); 1 when the command is right but
        there is nothing stored yet to show (no tree, no labelled dataset, no
        scale reading, no subset, no clustering): every such command uses 1.
    """
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(status)


def echo_json(value: Any) -> None:
    """Print ``value`` as one line of JSON (non-ASCII characters such as µ kept as they are)."""
    typer.echo(json.dumps(value, ensure_ascii=False))


def show_records(title: str, records: list[dict], *, as_json: bool, nothing_yet: str) -> None:
    """Print a listing as a table titled ``title`` or, with ``as_json``, as one JSON list.

    An empty listing is the ``nothing_yet`` error line with exit status 1 (nothing stored yet).
    """
    from semcurate.progress import print_records

    if not records:
        fail(nothing_yet, 1)
    if as_json:
        echo_json(records)
    else:
        print_records(title, records)


def open_sessions(db: str | None, *, read_only: bool = False) -> sessionmaker:
    """The session factory of database ``db``, or one error line (exit status 2) when it cannot be opened.

    Commands that only read pass ``read_only``: a missing database is then an
    error, never created, and nothing is migrated; the others upgrade the
    schema to the newest revision.
    """
    from semcurate.db.session import DatabaseOpenError, open_database

    try:
        return open_database(db, read_only=read_only)
    except DatabaseOpenError as error:
        fail(str(error))


def connect_scheduler(scheduler: str | None, folders: list[Path]) -> None:
    """Connect to the Dask ``scheduler`` now (none: nothing to do), or one error line (exit status 2).

    A scheduler that does not answer, a malformed ``local:N``, a missing
    Dask, or a worker that does not see one of ``folders`` (the source, the
    store) at the same path is reported before any work starts; the
    connection is then reused by :func:`semcurate.ingest.parallel.parallel_map`
    for the whole command.
    """
    if scheduler is None:
        return
    from semcurate.ingest.parallel import SchedulerError, check_workers_see, scheduler_client

    try:
        scheduler_client(scheduler)
        check_workers_see(scheduler, folders)
    except SchedulerError as error:
        fail(str(error))


@contextmanager
def database_errors(db: str | None) -> Iterator[None]:
    """Turn a database lost mid-command (a PostgreSQL server gone, a full disk) into one error line.

    Each batch is its own transaction, so what was committed stays and a
    re-run of the command finishes the work.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError

    from semcurate.db.location import database_url, shown, write_failure

    try:
        yield
    except (OperationalError, InterfaceError) as error:
        reason = " ".join(str(getattr(error, "orig", error)).split())
        fail(write_failure(shown(database_url(db)), reason))


def image_store(sessions: sessionmaker, store: Path | None) -> Path:
    """``store`` if given, else the flat store of the most recent ingest; one error line when nothing was ingested.

    The last ingest run's store is read here with one query rather than
    through :func:`semcurate.ingest.ingestion.latest_store`, whose module
    loads SciPy: ``semcurate serve`` must start in under 2 s.
    """
    if store is None:
        from sqlalchemy import select

        from semcurate.db.models import IngestRun
        from semcurate.ingest.walk import text_to_name

        with sessions() as session:
            recorded = session.scalar(select(IngestRun.store).order_by(IngestRun.id.desc()).limit(1))
        store = None if recorded is None else Path(text_to_name(recorded))
    if store is None:
        fail("nothing has been ingested yet: run `semcurate ingest SRC --store STORE` first, or pass --store", 1)
    return store


class Choice:
    """Parser of an option that takes one of a fixed set of values.

    ``--help`` shows the values (:attr:`metavar`) and any other value is
    refused while the command line is parsed (exit status 2), with a message
    that names the option's concept: ``unknown method 'dbscan'; choose one of
    ward, ...``. (Typer 0.29 vendors Click and has no ``click.Choice``
    parameter; its Enum and Literal choices cannot word the message.)

    Parameters
    ----------
    what : str
        What a value is, for the message: ``"method"``, ``"rule"``.
    values : sequence of str
        The allowed values, in the order ``--help`` lists them; taken from the
        stage's constants module so the command line and the cores agree.
    """

    def __init__(self, what: str, values: Sequence[str]) -> None:
        self.what = what
        self.values = tuple(values)

    def __call__(self, text: str) -> str:
        """``text`` itself when it is one of the values, else a :class:`typer.BadParameter`."""
        if text not in self.values:
            raise typer.BadParameter(f"unknown {self.what} {text!r}; choose one of {', '.join(self.values)}")
        return text

    @property
    def metavar(self) -> str:
        """The values as ``--help`` shows them: ``[ward|single|...]``."""
        return "[" + "|".join(self.values) + "]"


def choice_option(name: str, choice: Choice, description: str) -> Any:
    """A ``typer.Option`` named ``name`` that takes one of ``choice``'s values; ``description`` is its help text."""
    return typer.Option(name, parser=choice, metavar=choice.metavar, help=description)


PREPROCESSING_CHOICE = Choice("preprocessing", PREPROCESSING)
Preprocessing = Annotated[
    str,
    choice_option(
        "--preprocessing",
        PREPROCESSING_CHOICE,
        "Scaling of the rows first: standard (each column to mean 0, variance 1), norm (each row to length 1), "
        "minmax (each column to [0, 1]) or none.",
    ),
]
