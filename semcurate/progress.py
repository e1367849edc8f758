"""Progress bars and summary tables for the command line (rich, on stderr).

rich's progress and table modules are imported when a bar or a table is first
drawn, so that importing the command line (``semcurate --help``) stays cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def progress_reporter(enabled: bool = True) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Yield a ``reporter(phase, total)`` that opens a bar and returns its ``advance(n)``."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )
    started = False

    def reporter(phase: str, total: int) -> Callable[[int], None]:
        nonlocal started
        if total == 0:
            return lambda advance=1: None  # nothing to do: no bar
        if not started:  # the display starts with the first bar, so a command that fails first prints only its error
            progress.start()
            started = True
        task = progress.add_task(phase, total=total)
        return lambda advance=1: progress.advance(task, advance)

    try:
        yield reporter
    finally:
        if started:
            progress.stop()


def from_running_total(advance: Callable[[int], None], limit: int) -> Callable[[int], None]:
    """Turn a callback fed running totals (capped at ``limit``) into increments for ``advance``."""
    done = 0

    def report(total: int) -> None:
        nonlocal done
        total = min(total, limit)
        advance(total - done)
        done = total

    return report


def print_records(title: str, records: list[dict]) -> None:
    """Print dictionaries that share their keys as a table, one row each, the keys as columns."""
    print_table(title, [tuple(record.values()) for record in records], tuple(records[0]))


def print_table(title: str, rows: Mapping[str, object] | list[tuple], columns: tuple[str, ...] = ("", "")) -> None:
    """Print a two-or-more column table to stdout; cells are wrapped, never cut short."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right", overflow="fold")
    items = rows.items() if isinstance(rows, Mapping) else rows
    for row in items:
        table.add_row(*(str(cell) for cell in row))
    # Piped output (scripts, logs) gets a wide page instead of rich's 80 columns.
    Console(width=None if sys.stdout.isatty() else 200).print(table)
