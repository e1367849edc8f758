"""``semcurate quality`` and ``semcurate outliers``: flag unusable images, rank the odd ones out of a feature set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from semcurate.cli.common import (
    FEATURE_STORE,
    AsJson,
    Choice,
    Db,
    FeatureStorePath,
    ImageStore,
    Preprocessing,
    Scheduler,
    choice_option,
    connect_scheduler,
    echo_json,
    fail,
    image_store,
    open_sessions,
    show_records,
)
from semcurate.progress import print_table, progress_reporter

#: The flags, as :data:`semcurate.ingest.quality.FLAGS` lists them (kept here so ``--help`` loads no numpy).
FLAG_NAMES = (
    "blurred",
    "dark",
    "light",
    "saturated",
    "low_information",
    "noisy",
    "charging",
    "colour",
    "odd_size",
    "odd_aspect",
)
FLAG = Choice("flag", FLAG_NAMES)

quality_app = typer.Typer(
    help="Image quality: blurred, dark, light, saturated, blank, noisy, charging, colour and odd-sized images.",
    invoke_without_command=True,
)


def _overrides(pairs: list[str]) -> dict[str, float]:
    """``FLAG=VALUE`` options as a dict, or one error line."""
    overrides = {}
    for pair in pairs:
        flag, _, value = pair.partition("=")
        try:
            overrides[flag.strip()] = float(value)
        except ValueError:
            fail(f"--threshold {pair!r}: write FLAG=NUMBER, e.g. blurred=-2.5")
    return overrides


def _config(path: Path | None) -> tuple[dict, dict]:
    """``(threshold overrides, rules)`` of a JSON configuration file, or one error line."""
    if path is None:
        return {}, {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror}")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        fail(f"{path} is not a JSON file ({error})")
    if not isinstance(config, dict) or set(config) - {"thresholds", "rules"}:
        fail(f'{path}: expected {{"thresholds": {{FLAG: VALUE}}, "rules": {{FLAG: {{"z": Z, "bounds": [L, H]}}}}}}')
    return dict(config.get("thresholds") or {}), dict(config.get("rules") or {})


@quality_app.callback()
def quality_all(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes scoring images.")] = 1,
    store: ImageStore = None,
    rescore: Annotated[bool, typer.Option("--rescore", help="Score images that already have scores again.")] = False,
    threshold: Annotated[
        list[str],
        typer.Option("--threshold", help="Fix a flag's threshold, FLAG=VALUE in the score's units (repeatable)."),
    ] = (),
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help='JSON file: {"thresholds": {FLAG: VALUE}, "rules": {FLAG: {"z": Z, "bounds": [LOW, HIGH]}}}; '
            "--threshold wins over it.",
        ),
    ] = None,
    scheduler: Scheduler = None,
    db: Db = None,
) -> None:
    """Score every ingested image that has no scores yet (resumable), set the thresholds, flag, print a summary.

    Scores are measured on the picture without its data bar (run `semcurate scale` first; without a bar found the
    whole image is scored, and said so). Thresholds come from this repository's score distributions: the median
    -/+ z x 1.4826 MAD, held within each flag's bounds (--config changes both). Units: sharpness in log10,
    brightness and noise in grey levels (0-255), saturation as a share of pixels, charging as a robust z-score.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"db": db}
        return
    from semcurate.ingest.quality_database import QualityError, score_images

    overrides, rules = _config(config)
    overrides.update(_overrides(list(threshold)))
    sessions = open_sessions(db)
    store = image_store(sessions, store)
    connect_scheduler(scheduler, [store])
    try:
        with progress_reporter() as reporter:
            summary = score_images(
                sessions,
                store,
                workers=workers,
                rescore=rescore,
                overrides=overrides,
                rules=rules,
                reporter=reporter,
                scheduler=scheduler,
            )
    except QualityError as error:
        fail(str(error))
    if summary["images"] == 0 and summary["scored"] == 0:
        fail("no ingested image to score: run `semcurate ingest SRC --store STORE` first", 1)
    typer.echo(
        f"scored {summary['scored']} images now; {summary['images']} scored in all "
        f"({summary['unscored']} unreadable, {summary['bar_included']} with their data bar: none found)"
    )
    rows = [
        (
            flag,
            summary["flag_counts"][flag],
            f"{cell['score']} {'<' if cell['direction'] == 'below' else '>'} {cell['value']:.4g}",
            cell["how"],
        )
        for flag, cell in summary["thresholds"].items()
    ]
    print_table(f"quality flags (run {summary['run_id']})", rows, ("flag", "images", "threshold", "set by"))


def _group_db(ctx: typer.Context, db: str | None) -> str | None:
    return db if db is not None else (ctx.obj or {}).get("db")


@quality_app.command("list")
def quality_list(
    ctx: typer.Context,
    flag: Annotated[str, choice_option("--flag", FLAG, "The flag whose images to list, worst first.")],
    as_json: AsJson = False,
    db: Db = None,
) -> None:
    """The images the newest quality run flagged, worst first, with the score, the threshold and a source path."""
    from semcurate.ingest.quality_database import QualityError, flagged_images

    try:
        records = flagged_images(open_sessions(_group_db(ctx, db), read_only=True), flag)
    except QualityError as error:
        fail(str(error), 1)
    if as_json:
        echo_json(records)
        return
    show_records(f"images flagged {flag}", records, as_json=False, nothing_yet=f"no image is flagged {flag}")


@quality_app.command("exclude")
def quality_exclude(
    ctx: typer.Context,
    flag: Annotated[list[str], choice_option("--flag", FLAG, "A flag to exclude (repeatable).")],
    subset: Annotated[str, typer.Option("--subset", help="Name of the subset of the good images to create.")],
    replace: Annotated[bool, typer.Option("--replace", help="Rebuild the subset if it exists.")] = False,
    db: Db = None,
) -> None:
    """Create a subset of the scored images that raise none of the flags; later stages take it with --subset.

    Nothing is deleted: the flagged images stay in the database and the store.
    """
    from semcurate.ingest.quality_database import QualityError, exclude_flagged

    try:
        result = exclude_flagged(open_sessions(_group_db(ctx, db)), list(flag), subset, replace=replace)
    except QualityError as error:
        fail(str(error))
    left_out = ", ".join(f"{count} {name}" for name, count in result["excluded"].items())
    typer.echo(f"subset {subset}: {result['size']} images; left out: {left_out}; not scored: {result['not_scored']}")


def outliers(
    feature_set: Annotated[str, typer.Argument(help="Feature set, e.g. classic or classic.ae8.")],
    neighbors: Annotated[int, typer.Option("--neighbors", min=1, help="Neighbours per image (k).")] = 20,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many of the most outlying images to print.")] = 20,
    preprocessing: Preprocessing = "standard",
    as_json: AsJson = False,
    feature_store: FeatureStorePath = FEATURE_STORE,
    db: Db = None,
) -> None:
    """Score every image of a feature set by kNN distance and local outlier factor, store, print the top ranks.

    knn_distance: mean Euclidean distance to the k nearest images (preprocessed space); lof: local outlier
    factor (about 1 inside a cluster, larger outside); rank 1 is the largest lof.
    """
    from semcurate.features.outlier_scores import OutlierError, score_outliers
    from semcurate.features.store import FeatureStore

    try:
        summary = score_outliers(
            open_sessions(db),
            FeatureStore(feature_store),
            feature_set,
            n_neighbors=neighbors,
            preprocessing=preprocessing,
            top=limit,
        )
    except OutlierError as error:
        fail(str(error))
    if as_json:
        echo_json(summary)
        return
    typer.echo(
        f"{summary['images']} images of {feature_set} scored (k = {summary['k']}, {summary['preprocessing']}) "
        f"in {summary['seconds']:.1f} s"
    )
    show_records("most outlying images", summary["top"], as_json=False, nothing_yet="no image scored")
