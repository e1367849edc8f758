"""``semcurate scale`` and ``semcurate subset``: each image's scale, and named subsets of images by scale."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semcurate.cli.common import (
    AsJson,
    Choice,
    Db,
    ImageStore,
    Scheduler,
    choice_option,
    connect_scheduler,
    database_errors,
    echo_json,
    fail,
    image_store,
    open_sessions,
    show_records,
)
from semcurate.ingest.methods import SCALE_SOURCES
from semcurate.progress import print_table, progress_reporter

scale_app = typer.Typer(
    help="Scale of each image from its data bar (Tesseract OCR) and vendor TIFF metadata (thesis §2.3).",
    invoke_without_command=True,
)
subset_app = typer.Typer(help="Named image subsets that later stages take as input.", no_args_is_help=True)

#: Columns of ``scale read``: the file, then fields of :class:`semcurate.ingest.scale_bar.ScaleReading`.
READING_KEYS = ("path", "status", "value", "unit", "bar_px", "nm_per_px", "source", "flagged")
#: Keys of ``scale read --json``: the columns, then why: the printed field width (nm), each source's pixel size
#: (``candidates``, nm/px), the relative disagreement of metadata and pixels, and the reader's reason.
JSON_KEYS = (*READING_KEYS, "field_nm", "candidates", "disagreement", "reason")
SCALE_SOURCE = Choice("scale source", SCALE_SOURCES)
#: Wrongly read and flagged images listed after a validation or histogram; the rest are only counted.
LISTED = 20
#: Keys of a :func:`~semcurate.ingest.scale_database.flagged_readings` row holding each source's pixel size (nm/px).
FLAGGED_SIZES = ("metadata_nm_per_px", "ocr_nm_per_px", "field_nm_per_px")
#: Columns of the per-layout and per-width-class validation tables (the keys of their rows).
GROUP_COLUMNS = ("images", "right", "abstained", "wrong", "percent_right")


@scale_app.callback()
def scale_all(
    ctx: typer.Context,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes, each with its own OCR engine.")
    ] = 1,
    store: ImageStore = None,
    reread: Annotated[bool, typer.Option("--reread", help="Read images that already have a reading again.")] = False,
    scheduler: Scheduler = None,
    db: Db = None,
) -> None:
    """Read the scale of every ingested image that has none yet (resumable); print the status summary.

    Units: bar_px in pixels, nm_per_px in nanometres per pixel. A --db given here also serves the sub-command
    (`semcurate scale --db X histogram`) unless the sub-command gets its own.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"db": db}
        return
    from semcurate.ingest.ocr import OcrUnavailable
    from semcurate.ingest.scale_database import ScaleError, read_scales

    sessions = open_sessions(db)
    store = image_store(sessions, store)
    connect_scheduler(scheduler, [store])
    try:
        with database_errors(db), progress_reporter() as reporter:
            summary = read_scales(
                sessions, store, workers=workers, reread=reread, reporter=reporter, scheduler=scheduler
            )
    except (ScaleError, OcrUnavailable) as error:
        fail(str(error))
    if summary["read"] == 0 and summary["images_without_reading"] == 0 and not summary["by_status"]:
        fail("no ingested image to read the scale of: run `semcurate ingest SRC --store STORE` first", 1)
    typer.echo(f"read {summary['read']} images now; {summary['images_without_reading']} still without a reading")
    print_table("scale readings", summary["by_status"], ("status", "images"))
    print_table("scale source", summary["by_source"], ("source", "images"))
    typer.echo(f"flagged metadata/pixel disagreements above {_threshold()}: {summary['flagged_disagreements']}")


def _threshold() -> str:
    """The disagreement above which a reading is flagged, as a percentage."""
    from semcurate.ingest.vendor_metadata import DISAGREEMENT_THRESHOLD

    return f"{DISAGREEMENT_THRESHOLD:.0%}"


def group_db(ctx: typer.Context, db: str | None) -> str | None:
    """The sub-command's own ``--db``, else the one given to ``semcurate scale`` before the sub-command."""
    if db is not None:
        return db
    return (ctx.obj or {}).get("db")


def table_cell(value: object) -> str:
    """A table cell: blank for None and False, ``yes`` for True, 4 significant digits for floats."""
    if value is None or value is False:
        return ""
    if value is True:
        return "yes"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@scale_app.command("read")
def scale_read(
    paths: Annotated[list[Path], typer.Argument(help="TIFF or JPG files.")],
    source: Annotated[
        str,
        choice_option(
            "--source", SCALE_SOURCE, "auto (bar and metadata), ocr (bar only) or metadata (TIFF tags only)."
        ),
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line: " + ", ".join(JSON_KEYS))] = False,
) -> None:
    """Read the scale of files directly (no database). value/unit: the bar's label; nm_per_px: nm per pixel.

    source says where nm_per_px comes from: metadata (the TIFF tags), both (metadata and pixels within 1 %), ocr
    (the bar) or field (the printed field width, field_nm in nm, over the image width). flagged: metadata and
    pixels disagree; the metadata is kept. --json adds candidates, each source's own nm/px, to see why.
    Exit status 1 when any file could not be read (each has its error line).
    """
    from semcurate.ingest.ocr import OcrUnavailable
    from semcurate.ingest.scale_database import read_scale_files

    try:
        readings = read_scale_files(paths, source=source)
    except OcrUnavailable as error:
        fail(str(error))
    rows = []
    unreadable = 0
    for path, reading in readings:
        if reading.status == "error":
            unreadable += 1
            typer.echo(f"error: {reading.reason}", err=True)
        row = {"path": str(path), **{key: getattr(reading, key) for key in JSON_KEYS[1:]}}
        if as_json:
            echo_json(row)
        else:
            rows.append(tuple(table_cell(row[key]) for key in READING_KEYS))
    if not as_json:
        print_table("scale readings", rows, READING_KEYS)
    if unreadable:
        raise typer.Exit(1)


@scale_app.command("validate")
def scale_validate(
    ctx: typer.Context,
    truth: Annotated[
        Path,
        typer.Argument(
            help="CSV with path, value, unit; optional nm_per_px (true pixel size, nm) and layout columns "
            "(a demo ground_truth.csv has them)."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write validation.json into this folder (the report reads results/scale/)."),
    ] = None,
    db: Db = None,
) -> None:
    """Compare the stored readings with hand-written truth: thesis Table 2.3, then per layout and width class.

    Right: the label read is the truth's and, when the CSV gives nm_per_px, the pixel size lies within 1 % of it
    (whatever its source: metadata, the bar or the printed field width); wrong: either fails; abstained: no scale
    read (stripe not detected or unreadable). Flagged images (metadata and pixels disagree) are listed.
    """
    from semcurate.ingest.scale_database import ScaleError, validate

    try:
        result = validate(open_sessions(group_db(ctx, db), read_only=True), truth, out_dir=out)
    except ScaleError as error:
        fail(str(error))
    if as_json:
        echo_json(result)
        return
    rows = [(category, cell["images"], f"{cell['percent']:.1f}%") for category, cell in result["table"].items()]
    print_table(f"validation against {truth} ({result['total']} images)", rows, ("outcome", "images", "share"))
    for title, key in (("layout", "by_layout"), ("image width", "by_width_class")):
        if result[key]:
            rows = [
                (group, *(cells[column] for column in GROUP_COLUMNS[:-1]), f"{cells['percent_right']:.1f}%")
                for group, cells in result[key].items()
            ]
            print_table(f"by {title}", rows, (title, *GROUP_COLUMNS[:-1], "right %"))
    for path, expected, read in result["wrong"][:LISTED]:
        typer.echo(f"wrong: {path}: expected {expected}, read {read}")
    show_flagged(result["flagged"], "path")
    if result["unmatched_paths"]:
        unmatched = result["unmatched_paths"]
        typer.echo(f"{len(unmatched)} paths name no ingested image, e.g. {unmatched[0]}")
    for path, reason in result["unusable_truth_rows"][:LISTED]:
        typer.echo(f"truth row skipped: {path}: {reason}")


def show_flagged(flagged: list[dict], name_key: str) -> None:
    """Count the flagged readings and list the first :data:`LISTED` with their metadata and pixel sizes."""
    typer.echo(f"flagged (metadata and pixels more than {_threshold()} apart, metadata kept): {len(flagged)}")
    for row in flagged[:LISTED]:
        sizes = ", ".join(
            f"{key.removesuffix('_nm_per_px')} {row[key]:.4g}" for key in FLAGGED_SIZES if row[key] is not None
        )
        apart = "" if row["disagreement"] is None else f" ({row['disagreement']:.1%} apart)"
        typer.echo(f"flagged: {row[name_key]}: {sizes} nm/px{apart}")


@scale_app.command("histogram")
def scale_histogram(
    ctx: typer.Context,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Split the counts by this labelled dataset's categories.")
    ] = None,
    as_json: AsJson = False,
    db: Db = None,
) -> None:
    """Images per scale read from the data bar, largest first (thesis Table 2.4), then the flagged images.

    Flagged: the metadata's pixel size and the pixels' (bar or printed field width) differ; the metadata is kept.
    --json adds "flagged": each one's md5 and pixel sizes (nm/px) by source.
    """
    from semcurate.ingest.scale_database import ScaleError, flagged_readings, histogram, status_counts

    sessions = open_sessions(group_db(ctx, db), read_only=True)
    try:
        columns, table = histogram(sessions, dataset)
    except ScaleError as error:
        fail(str(error))
    if not table:
        statuses = status_counts(sessions)["by_status"]
        if not statuses:
            fail("no scale readings yet: run `semcurate scale`", 1)
        found = ", ".join(f"{count} {status}" for status, count in statuses.items())
        fail(f"no image has a scale read from its data bar ({found}): see `semcurate scale read FILE` for why", 1)
    flagged = flagged_readings(sessions)
    if as_json:
        echo_json({"columns": columns, "rows": [{"scale": key, **counts} for key, counts in table], "flagged": flagged})
        return
    rows = [(key, *(counts[column] for column in columns)) for key, counts in table]
    rows.append(("total", *(sum(counts[column] for _, counts in table) for column in columns)))
    print_table("images per scale", rows, ("scale", *columns))
    show_flagged(flagged, "md5")


@subset_app.command("create")
def subset_create(
    name: Annotated[str, typer.Argument(help="Subset name, e.g. 1u-2u.")],
    scales: Annotated[list[str], typer.Option("--scale", help="A bar value to include, e.g. 1um; repeat for more.")],
    replace: Annotated[bool, typer.Option("--replace", help="Rebuild the subset if it exists.")] = False,
    db: Db = None,
) -> None:
    """Fix a named subset of the images whose data bar reads one of the given scales."""
    from semcurate.ingest.scale_database import ScaleError, create_subset

    try:
        result = create_subset(open_sessions(db), name, scales, replace=replace)
    except ScaleError as error:
        fail(str(error))
    typer.echo(f"subset {name}: {result['size']} images at {', '.join(result['scales'])}")


@subset_app.command("list")
def subset_list(as_json: AsJson = False, db: Db = None) -> None:
    """Every subset with its size and how it was made."""
    from semcurate.ingest.scale_database import list_subsets

    show_records(
        "subsets",
        list_subsets(open_sessions(db, read_only=True)),
        as_json=as_json,
        nothing_yet="no subsets yet: `semcurate subset create NAME --scale 1um --scale 2um`",
    )
