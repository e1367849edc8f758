"""The ``semcurate`` command line: a thin layer over the stage shells.

Errors are one line on stderr with a non-zero exit status (2 for bad
arguments, missing sources or unusable stores), never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from semcurate.db import database_url, open_database, upgrade
from semcurate.progress import from_running_total, print_records, print_table, progress_reporter

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
    store: Path = typer.Option(
        ..., "--store", help="Flat store folder for <md5>.tif and <md5>.jpg (created if missing)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes for hashing and conversion."),
    max_pixels: int = typer.Option(
        100_000_000, "--max-pixels", min=1,
        help="Largest width × height admitted, in pixels (decompression-bomb guard).",
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Look again at files recorded as corrupt, rejected or unreadable."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    db: str | None = DbOption,
) -> None:
    """Inventory SOURCE, de-duplicate by MD5, flatten into STORE, record every file (thesis §2.1)."""
    from semcurate.ingest.ingestion import IngestError, Ingestion

    sessions = sessions_for(db)
    try:
        with progress_reporter(enabled=not as_json) as reporter:
            summary = Ingestion(
                source, store, sessions, workers=workers, max_pixels=max_pixels, retry_failed=retry_failed,
                reporter=reporter,
            ).run()
    except IngestError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(summary))
        return
    by_format = summary.pop("by_format")
    seconds = summary.pop("seconds")
    print_table("ingest summary", summary)
    print_table("seconds per phase", seconds, ("phase", "s"))
    print_table("files by format (thesis Table 2.1)", by_format, ("format", "files"))


labels_app = typer.Typer(help="Labelled datasets: import, list, statistics (thesis §2.2).", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


def store_or_latest(sessions, store: Path | None) -> Path:
    """``store`` if given, else the store of the most recent ingest run; one error line when there is none."""
    from sqlalchemy import select

    from semcurate.db import IngestRun

    if store is not None:
        return store
    with sessions() as session:
        latest = session.scalar(select(IngestRun.store).order_by(IngestRun.id.desc()).limit(1))
    if latest is None:
        fail("nothing has been ingested yet: run `semcurate ingest SRC --store STORE` first, or pass --store")
    return Path(latest)


@labels_app.command("import")
def labels_import(
    directory: Path = typer.Argument(..., help="Dataset folder laid out as CATEGORY[/SUB/...]/file.jpg."),
    name: str = typer.Option(..., "--name", help="Dataset name, e.g. SEM_Dataset; re-importing a name replaces it."),
    store: Path | None = typer.Option(
        None, "--store", help="Flat store holding the TIFFs; default: the last ingest's."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes for re-encoding matches."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    db: str | None = DbOption,
) -> None:
    """Match a labelled dataset to the ingested images by MD5, then by re-encoding TIFFs (thesis Table 2.2)."""
    from semcurate.ingest.labels import LabelImportError, import_labels

    sessions = sessions_for(db)
    store = store_or_latest(sessions, store)
    try:
        with progress_reporter(enabled=not as_json) as reporter:
            summary = import_labels(directory, name, sessions, store, workers=workers, reporter=reporter)
    except LabelImportError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(summary))
        return
    skipped = summary.pop("skipped")
    print_table(f"labels imported: {name}", summary)
    for reason in skipped[:20]:
        typer.echo(f"skipped {reason}")
    if len(skipped) > 20:
        typer.echo(f"... and {len(skipped) - 20} more skipped")


@labels_app.command("list")
def labels_list(db: str | None = DbOption) -> None:
    """Every imported dataset with its matching counts (thesis Table 2.2)."""
    from semcurate.ingest.labels import dataset_table

    rows = dataset_table(sessions_for(db))
    if not rows:
        fail("no labelled dataset imported yet: run `semcurate labels import DIR --name NAME`", 1)
    print_records("labelled datasets (thesis Table 2.2)", rows)


@labels_app.command("stats")
def labels_stats(
    dataset: str | None = typer.Option(None, "--dataset", help="Only this dataset."),
    depth: int = typer.Option(1, "--depth", min=1, help="Label levels to keep (1: the 10 categories)."),
    db: str | None = DbOption,
) -> None:
    """Distinct matched images per category, per dataset (thesis Fig. 2.3)."""
    from semcurate.ingest.labels import category_distribution

    distribution = category_distribution(sessions_for(db), dataset, depth)
    if not distribution:
        fail("no matched labels to count: import a dataset first (`semcurate labels import`)", 1)
    names = list(distribution)
    labels = sorted({label for counts in distribution.values() for label in counts})
    rows = [(label, *(distribution[name].get(label, 0) for name in names)) for label in labels]
    rows.append(("total", *(sum(distribution[name].values()) for name in names)))
    print_table("images per category", rows, ("category", *names))


scale_app = typer.Typer(
    help="Scale of each image from its data bar (Tesseract OCR) and vendor TIFF metadata (thesis §2.3).",
    invoke_without_command=True,
)
app.add_typer(scale_app, name="scale")
subset_app = typer.Typer(help="Named image subsets that later stages take as input.", no_args_is_help=True)
app.add_typer(subset_app, name="subset")

READING_KEYS = ("path", "status", "value", "unit", "bar_px", "nm_per_px", "source")


@scale_app.callback()
def scale_all(
    ctx: typer.Context,
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes, each with its own OCR engine."),
    store: Path | None = typer.Option(None, "--store", help="Flat store of the images; default: the last ingest's."),
    reread: bool = typer.Option(False, "--reread", help="Read images that already have a reading again."),
    db: str | None = DbOption,
) -> None:
    """Read the scale of every ingested image that has none yet (resumable); print the status summary.

    Units: bar_px in pixels, nm_per_px in nanometres per pixel.
    """
    if ctx.invoked_subcommand is not None:
        return
    from semcurate.ingest.ocr import OcrUnavailable
    from semcurate.ingest.scale_database import ScaleError, read_scales

    sessions = sessions_for(db)
    store = store_or_latest(sessions, store)
    try:
        with progress_reporter() as reporter:
            summary = read_scales(sessions, store, workers=workers, reread=reread, reporter=reporter)
    except (ScaleError, OcrUnavailable) as error:
        fail(str(error))
    typer.echo(f"read {summary['read']} images now; {summary['images_without_reading']} still without a reading")
    print_table("scale readings", summary["by_status"], ("status", "images"))
    print_table("scale source", summary["by_source"], ("source", "images"))
    typer.echo(f"flagged bar/metadata disagreements above 2%: {summary['flagged_disagreements']}")


def _cell(value) -> str:
    """A table cell: blank for None, 4 significant digits for floats."""
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


@scale_app.command("read")
def scale_read(
    paths: list[Path] = typer.Argument(..., help="TIFF or JPG files."),
    source: str = typer.Option("auto", "--source", help="auto (bar and metadata), ocr, or metadata."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line: " + ", ".join(READING_KEYS)),
) -> None:
    """Read the scale of files directly (no database). value/unit: the bar's label; nm_per_px: nm per pixel."""
    from semcurate.ingest.ocr import OcrUnavailable, get_engine
    from semcurate.ingest.scale_bar import read_scale_bytes

    if source not in ("auto", "ocr", "metadata"):
        fail(f"--source must be auto, ocr or metadata, not {source!r}")
    try:
        engine = None if source == "metadata" else get_engine()
    except OcrUnavailable as error:
        fail(str(error))
    rows = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as error:
            row = {"path": str(path), "status": "error", "value": None, "unit": None, "bar_px": None,
                   "nm_per_px": None, "source": None}
            typer.echo(f"error: cannot read {path}: {error.strerror}", err=True)
        else:
            reading = read_scale_bytes(data, engine=engine, source=source)
            row = {"path": str(path), **{key: getattr(reading, key) for key in READING_KEYS[1:]}}
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            rows.append(tuple(_cell(row[key]) for key in READING_KEYS))
    if not as_json:
        print_table("scale readings", rows, READING_KEYS)


@scale_app.command("validate")
def scale_validate(
    truth: Path = typer.Argument(..., help="CSV with path, value, unit (a demo ground_truth.csv works too)."),
    as_json: bool = typer.Option(False, "--json"),
    out: Path | None = typer.Option(None, "--out", help="Also write validation.json into this folder (the report "
                                                        "reads results/scale/)."),
    db: str | None = DbOption,
) -> None:
    """Compare the stored readings with hand-written truth (thesis Table 2.3)."""
    from semcurate.ingest.scale_database import ScaleError, validate

    try:
        result = validate(sessions_for(db), truth)
    except ScaleError as error:
        fail(str(error))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "validation.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n",
                                             encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    rows = [(category, cell["images"], f"{cell['percent']:.1f}%") for category, cell in result["table"].items()]
    print_table(f"validation against {truth} ({result['total']} images)", rows, ("outcome", "images", "share"))
    for path, expected, read in result["wrong"][:20]:
        typer.echo(f"wrong: {path}: expected {expected}, read {read}")
    if result["unmatched_paths"]:
        unmatched = result["unmatched_paths"]
        typer.echo(f"{len(unmatched)} paths name no ingested image, e.g. {unmatched[0]}")


@scale_app.command("histogram")
def scale_histogram(
    by_label: str | None = typer.Option(None, "--by-label", help="Split the counts by this dataset's categories."),
    db: str | None = DbOption,
) -> None:
    """Images per scale read from the data bar, largest first (thesis Table 2.4)."""
    from semcurate.ingest.scale_database import ScaleError, histogram

    try:
        columns, table = histogram(sessions_for(db), by_label)
    except ScaleError as error:
        fail(str(error))
    if not table:
        fail("no scale readings yet: run `semcurate scale`", 1)
    rows = [(key, *(counts[column] for column in columns)) for key, counts in table]
    rows.append(("total", *(sum(counts[column] for _, counts in table) for column in columns)))
    print_table("images per scale", rows, ("scale", *columns))


@subset_app.command("create")
def subset_create(
    name: str = typer.Argument(..., help="Subset name, e.g. 1u-2u."),
    scales: list[str] = typer.Option(..., "--scale", help="A bar value to include, e.g. 1um; repeat for more."),
    replace: bool = typer.Option(False, "--replace", help="Rebuild the subset if it exists."),
    db: str | None = DbOption,
) -> None:
    """Fix a named subset of the images whose data bar reads one of the given scales."""
    from semcurate.ingest.scale_database import ScaleError, create_subset

    try:
        result = create_subset(sessions_for(db), name, scales, replace=replace)
    except ScaleError as error:
        fail(str(error))
    typer.echo(f"subset {name}: {result['size']} images at {', '.join(result['scales'])}")


@subset_app.command("list")
def subset_list(db: str | None = DbOption) -> None:
    """Every subset with its size and how it was made."""
    from semcurate.ingest.scale_database import list_subsets

    rows = list_subsets(sessions_for(db))
    if not rows:
        fail("no subsets yet: `semcurate subset create NAME --scale 1um --scale 2um`", 1)
    print_records("subsets", rows)


features_app = typer.Typer(help="Feature sets: CNN activations or the weight-free descriptor (thesis ch. 3).",
                           no_args_is_help=True)
app.add_typer(features_app, name="features")
FeatureStoreOption = typer.Option(Path("features.h5"), "--feature-store",
                                  help="HDF5 file holding the feature rows (created if missing).")


@features_app.command("extract")
def features_extract(
    extractor: str = typer.Option(..., "--extractor", help="classic (weight-free) or inception_v3."),
    weights: str = typer.Option("imagenet", "--weights", help="inception_v3 weights: imagenet, none, or a file."),
    subset: str | None = typer.Option(None, "--subset", help="Only the images of this subset (default: all)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per batch."),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes for the classic descriptor."),
    store: Path | None = typer.Option(None, "--store", help="Flat store of the images; default: the last ingest's."),
    feature_store: Path = FeatureStoreOption,
    db: str | None = DbOption,
) -> None:
    """Compute one feature row per image (data bar cropped away); resumable: only missing rows are computed."""
    from semcurate.features.extract import ExtractionError, create_extractor, extract
    from semcurate.features.inception import WeightsUnavailable
    from semcurate.features.store import FeatureStore, FeatureStoreError

    sessions = sessions_for(db)
    store = store_or_latest(sessions, store)
    try:
        model = create_extractor(extractor, weights)
        with progress_reporter() as reporter:
            result = extract(sessions, store, FeatureStore(feature_store), model, subset=subset,
                             batch_size=batch_size, workers=workers, reporter=reporter)
    except (ExtractionError, WeightsUnavailable, FeatureStoreError) as error:
        fail(str(error))
    typer.echo(f"extracted {result['extracted']} images now")
    print_table("feature sets", result["feature_sets"], ("feature set", "rows"))


@features_app.command("list")
def features_list(db: str | None = DbOption) -> None:
    """Every feature set: extractor, weights digest, layer, dimension, rows, store file."""
    from sqlalchemy import select

    from semcurate.db import FeatureSet

    with sessions_for(db)() as session:
        rows = [
            {"name": row.name, "extractor": row.extractor, "weights": row.weights,
             "digest": row.weights_digest[:12], "layer": row.layer, "dimension": row.dimension,
             "rows": row.n_rows, "parent": row.parent or "", "store": row.store_path}
            for row in session.scalars(select(FeatureSet).order_by(FeatureSet.name))
        ]
    if not rows:
        fail("no feature sets yet: `semcurate features extract --extractor classic`", 1)
    print_records("feature sets", rows)


@app.command("finetune")
def finetune_command(
    labels: str = typer.Option(..., "--labels", help="Labelled dataset whose top categories are the classes."),
    mode: str = typer.Option("transfer", "--mode", help="transfer (new top, frozen base) or finetune (all layers)."),
    epochs: int = typer.Option(5, "--epochs", min=1),
    image_size: int = typer.Option(299, "--image-size", min=75, help="Input side in px (Inception-V3: 75 or more)."),
    weights: str = typer.Option("imagenet", "--weights", help="Base weights: imagenet, none, or a no-top file."),
    subset: str | None = typer.Option(None, "--subset", help="Only labelled images of this subset."),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    out: Path | None = typer.Option(None, "--out", help="Checkpoint file (.keras); default checkpoints/…"),
    store: Path | None = typer.Option(None, "--store", help="Flat store of the images; default: the last ingest's."),
    db: str | None = DbOption,
) -> None:
    """Train Inception-V3 on the labelled categories (80/10/10 split); the checkpoint serves as --weights."""
    import numpy as np
    from PIL import Image

    from semcurate.features.analysis import StudyError, labelled_images
    from semcurate.features.extract import ExtractionError, image_tasks, load_specimen
    from semcurate.features.finetune import finetune, save_checkpoint
    from semcurate.features.inception import WeightsUnavailable

    sessions = sessions_for(db)
    store = store_or_latest(sessions, store)
    out = out or Path("checkpoints") / f"inception_v3.{labels}.{mode}.keras"
    try:
        categories = labelled_images(sessions, labels, subset)
        tasks = [task for task in image_tasks(sessions, store, subset) if task.md5 in categories]
        images = [np.asarray(Image.fromarray(load_specimen(task)).resize((image_size, image_size),
                                                                         Image.Resampling.BILINEAR))
                  for task in tasks]  # resized once here, so a large set fits in memory
        model, report = finetune(images, [categories[task.md5] for task in tasks], mode=mode, weights=weights,
                                 epochs=epochs, image_size=image_size, batch_size=batch_size)
    except (StudyError, ExtractionError, WeightsUnavailable, ValueError) as error:
        fail(str(error))
    path = save_checkpoint(model, out)
    typer.echo(f"split {report.split_sizes}; test accuracy {report.test_accuracy:.3f}")
    print_table("test accuracy per class", {name: f"{value:.3f}" for name, value in
                                            report.per_class_accuracy.items()}, ("class", "accuracy"))
    print_table("confusion matrix (rows: true class)",
                [(name, *row) for name, row in zip(report.classes, report.confusion)], ("", *report.classes))
    typer.echo(f"checkpoint {path}: use it with `semcurate features extract --extractor inception_v3 --weights {path}`")


@app.command("id")
def id_command(
    feature_set: str = typer.Argument(..., help="Feature set, e.g. inception_v3.imagenet.pool."),
    subset: str | None = typer.Option(None, "--subset", help="Only images of this subset."),
    repeats: int = typer.Option(5, "--repeats", min=1, help="Random subsamples per size in the scan."),
    out: Path = typer.Option(Path("results/id"), "--out", help="Folder for the fit and scan plots and numbers."),
    feature_store: Path = FeatureStoreOption,
    db: str | None = DbOption,
) -> None:
    """2-NN intrinsic dimension (§3.3): estimates at fractions 1.0/0.9/0.7/0.5, sample-size scan, code size."""
    from semcurate.features.analysis import StudyError, id_study
    from semcurate.features.store import FeatureStore, FeatureStoreError

    try:
        result = id_study(sessions_for(db), FeatureStore(feature_store), feature_set, out, subset=subset,
                          repeats=repeats)
    except (StudyError, FeatureStoreError, ValueError) as error:
        fail(str(error))
    estimates = {f"fraction {fraction}": f"{value:.2f}" for fraction, value in result["estimates"].items()}
    print_table(f"2-NN intrinsic dimension of {feature_set} ({result['rows']} rows)", estimates,
                ("fit over", "dimension"))
    scan = [(size, f"{mean:.2f}", f"{std:.2f}") for size, mean, std in
            zip(result["scan"]["sizes"], result["scan"]["means"], result["scan"]["stds"])]
    print_table("sample-size scan (Fig. 3.7)", scan, ("sample size", "mean", "std"))
    typer.echo(f"suggested code size (plateau, rounded up): {result['suggested_code_size']}")
    typer.echo(f"plots: {out / (feature_set + '.id_fit.png')}, {out / (feature_set + '.id_scan.png')}")


@app.command("reduce")
def reduce_command(
    feature_set: str = typer.Argument(..., help="Feature set to reduce, e.g. inception_v3.imagenet.pool."),
    method: str = typer.Option("ae", "--method", help="ae (tied autoencoder, §3.2) or pca (Fig. 3.2)."),
    code_size: str = typer.Option("auto", "--code-size", help="Code length, or auto: the 2-NN ID plateau rounded up."),
    subset: str | None = typer.Option(None, "--subset", help="Only images of this subset."),
    grid: bool = typer.Option(False, "--grid", help="Choose h1, h2 and tying by the §3.2.4 grid search."),
    h1: int = typer.Option(400, "--h1", min=1, help="Autoencoder outer hidden layer width."),
    h2: int = typer.Option(100, "--h2", min=1, help="Autoencoder middle hidden layer width."),
    tying: str = typer.Option("outer", "--tying", help="Tied pairs: none, outer, middle, inner, all, or a+b."),
    epochs: int = typer.Option(50, "--epochs", min=1, help="Epochs of global training."),
    batch_size: int = typer.Option(300, "--batch-size", min=1, help="Autoencoder mini-batch (thesis: 300)."),
    out: Path = typer.Option(Path("results/reduce"), "--out", help="Folder for the model, plots and numbers."),
    feature_store: Path = FeatureStoreOption,
    db: str | None = DbOption,
) -> None:
    """Reduce a feature set to a short code with the tied autoencoder or PCA; store it as a new feature set."""
    from semcurate.features.analysis import StudyError, feature_rows, reduce_feature_set
    from semcurate.features.store import FeatureStore, FeatureStoreError

    sessions, store = sessions_for(db), FeatureStore(feature_store)
    try:
        if code_size == "auto":
            from semcurate.features.intrinsic_dimension import id_scan, suggest_code_size

            size = suggest_code_size(id_scan(feature_rows(sessions, store, feature_set, subset)[1], random_state=0))
            typer.echo(f"code size from the 2-NN intrinsic dimension plateau: {size}")
        elif code_size.isdigit():
            size = int(code_size)
        else:
            fail(f"--code-size must be a whole number or auto, not {code_size!r}")
        result = reduce_feature_set(sessions, store, feature_set, method, size, out, subset=subset,
                                    hidden=(h1, h2), tying=tying, epochs=epochs, batch_size=batch_size, grid=grid)
    except (StudyError, FeatureStoreError, ValueError) as error:
        fail(str(error))
    if "grid" in result:
        columns = ("architecture", "n_parameters", "train_mse", "heldout_mse")
        print_table("grid search (thesis Table 3.3)", [tuple(row[key] for key in columns) for row in result["grid"]],
                    columns)
    summary = {key: value for key, value in result.items() if key != "grid"}
    print_table(f"stored {result['feature_set']}", summary)


@app.command("distances")
def distances_command(
    feature_sets: list[str] = typer.Argument(..., help="Feature sets to compare, e.g. a set and its reduction."),
    dataset: str = typer.Option(..., "--dataset", help="Labelled dataset giving the categories, e.g. SEM_Dataset."),
    subset: str | None = typer.Option(None, "--subset", help="Only images of this subset, e.g. 1u-2u."),
    per_category: int | None = typer.Option(
        None, "--per-category", min=1, help="Images per category (default: the thesis' Table 3.4 counts)."
    ),
    out: Path = typer.Option(Path("results/distances"), "--out", help="Folder for distances.png and .json."),
    feature_store: Path = FeatureStoreOption,
    db: str | None = DbOption,
) -> None:
    """Distance heatmaps of a category-balanced labelled sample against d_disc, with correlation indices (§3.4)."""
    from semcurate.features.analysis import StudyError, distance_study
    from semcurate.features.store import FeatureStore

    try:
        result = distance_study(sessions_for(db), FeatureStore(feature_store), feature_sets, dataset, out,
                                subset=subset, per_category=per_category)
    except StudyError as error:
        fail(str(error))
    correlations = {name: f"{value:.3f}" for name, value in result["correlation_with_d_disc"].items()}
    print_table(f"correlation with d_disc ({result['sample_size']} images)", correlations, ("feature set", "r"))
    typer.echo(f"heatmaps: {out / 'distances.png'}")


ClusterStoreOption = typer.Option(Path("clusterings.h5"), "--cluster-store",
                                  help="HDF5 file of linkage matrices and partitions (created if missing).")


def parse_parameters(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs as a dict; values read as JSON (numbers, true/false) where they parse, else strings."""
    parameters = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key:
            fail(f"--param takes KEY=VALUE, e.g. n_neighbors=30; got {pair!r}")
        try:
            parameters[key] = json.loads(text)
        except json.JSONDecodeError:
            parameters[key] = text
    return parameters


@app.command("cluster")
def cluster_command(
    feature_set: str | None = typer.Argument(None, help="Feature set to cluster, e.g. classic.ae8."),
    method: str = typer.Option(
        "ward", "--method",
        help="ward, centroid, complete, single, average (dendrograms, §4.1), density-peaks (§4.2), "
             "kmeans, gmm, hdbscan or spectral.",
    ),
    subset: str | None = typer.Option(None, "--subset", help="Only images of this subset, e.g. 1u-2u."),
    k_max: int = typer.Option(
        30, "--k-max", min=1,
        help="Largest k summarised; flat methods are fitted for every k in 2..K (trees give any k later).",
    ),
    seed: int = typer.Option(0, "--seed", help="Random state of the randomised methods."),
    param: list[str] = typer.Option([], "--param", help="Method parameter KEY=VALUE (repeatable), "
                                                        "e.g. n_neighbors=30 for density-peaks."),
    list_stored: bool = typer.Option(False, "--list", help="List the stored clusterings and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    feature_store: Path = FeatureStoreOption,
    cluster_store: Path = ClusterStoreOption,
    db: str | None = DbOption,
) -> None:
    """Cluster a feature set and store the tree (any k is cut later) or the partitions, with every parameter."""
    from semcurate.clustering.flat import K_METHODS
    from semcurate.clustering.runs import METHODS, ClusteringError, cluster_feature_set, list_clusterings
    from semcurate.clustering.store import ClusterStore
    from semcurate.features.store import FeatureStore

    sessions = sessions_for(db)
    if list_stored:
        stored = list_clusterings(sessions)
        if stored:
            print_records("stored clusterings", stored)
        else:
            typer.echo("no clusterings stored yet")
        return
    if feature_set is None:
        fail("name the feature set to cluster (see `semcurate features list`), or pass --list")
    if method not in METHODS:
        fail(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    parameters = parse_parameters(param)
    try:
        with progress_reporter(enabled=not as_json) as reporter:
            # Flat methods report one step per k; a linkage or Density Peaks is one call with nothing to count.
            fits = max(k_max - 1, 1) if method in K_METHODS else 0
            advance = reporter(f"{method} fits", fits)
            summary = cluster_feature_set(
                sessions, FeatureStore(feature_store), ClusterStore(cluster_store), feature_set, method,
                subset=subset, k_max=k_max, random_state=seed, parameters=parameters, progress=advance,
            )
    except (ClusteringError, ValueError, MemoryError) as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        print_table(f"clustering {summary['clustering_id']} stored in {cluster_store}", summary)


@app.command("n-clusters")
def n_clusters_command(
    feature_set: str = typer.Argument(..., help="Feature set, e.g. classic.ae8."),
    criterion: str = typer.Option("silhouette", "--criterion", help="elbow, silhouette or gap (as HyperSpy's "
                                                                    "estimate_number_of_clusters)."),
    method: str = typer.Option("kmeans", "--method", help="kmeans, gmm, spectral, a linkage (ward, ...) or "
                                                          "density-peaks."),
    k_min: int = typer.Option(2, "--k-min", min=1, help="Smallest k tried (gap may start at 1)."),
    k_max: int = typer.Option(12, "--k-max", min=2, help="Largest k tried."),
    subset: str | None = typer.Option(None, "--subset", help="Only images of this subset."),
    seed: int = typer.Option(0, "--seed", help="Random state."),
    out: Path = typer.Option(Path("results/n_clusters"), "--out", help="Folder for the plot and the numbers."),
    feature_store: Path = FeatureStoreOption,
    db: str | None = DbOption,
) -> None:
    """Estimate the number of clusters of a feature set; writes the score curve (PNG) and its numbers (JSON)."""
    from semcurate.clustering.n_clusters import estimate_n_clusters
    from semcurate.features.analysis import StudyError, feature_rows
    from semcurate.features.store import FeatureStore

    sessions = sessions_for(db)
    try:
        _, values = feature_rows(sessions, FeatureStore(feature_store), feature_set, subset)
        estimate = estimate_n_clusters(values, criterion, range(k_min, k_max + 1), algorithm=method,
                                       random_state=seed, sample_size=min(len(values), 5000))
    except (StudyError, ValueError, MemoryError) as error:
        fail(str(error))
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{feature_set}.{method}.{criterion}"
    estimate.plot().savefig(out / f"{stem}.png", dpi=110)
    (out / f"{stem}.json").write_text(json.dumps(estimate.as_dict(), indent=2) + "\n", encoding="utf-8")
    print_table(f"{criterion} of {method} on {feature_set}: best k = {estimate.best_k}",
                [(k, f"{score:.4g}") for k, score in zip(estimate.ks, estimate.scores)], ("k", criterion))
    typer.echo(f"plot and numbers in {out}")


tree_app = typer.Typer(help="The sub-category tree: build it, browse it, name its nodes.", no_args_is_help=True)
app.add_typer(tree_app, name="tree")
TreeOption = typer.Option(None, "--tree", help="Tree id (see `semcurate tree list`); default the newest.")


def open_tree(db: str | None, tree_id: int | None, store: Path | None = None):
    """The stored tree, or one error line."""
    from semcurate.clustering.browse import Tree, TreeError

    try:
        return Tree.open(sessions_for(db), tree_id, store)
    except TreeError as error:
        fail(str(error))


@tree_app.command("build")
def tree_build(
    feature_set: str = typer.Argument(..., help="Feature set whose rows are clustered, e.g. classic.ae8."),
    method: str = typer.Option("ward", "--method", help="Clustering method of `semcurate cluster`."),
    labels: str = typer.Option("SEM_Dataset", "--labels", help="Labelled dataset giving the top categories."),
    depth: int = typer.Option(2, "--depth", min=1, help="Levels of sub-categories below each category."),
    rule: str = typer.Option(
        "silhouette", "--rule",
        help="How many children a node gets: silhouette (default: bounded, works for every method), gap "
             "(may decline to split), dendrogram-gap (monotone linkages only).",
    ),
    subset: str | None = typer.Option(None, "--subset", help="Only images of this subset."),
    max_children: int = typer.Option(8, "--max-children", min=2, help="Most children a node may get."),
    min_size: int = typer.Option(10, "--min-size", min=1, help="Fewest images a sub-category may hold."),
    seed: int = typer.Option(0, "--seed", help="Random state (classifier split, sampling, flat methods)."),
    store: Path | None = typer.Option(None, "--store", help="Flat store for mean images (default: last ingest's)."),
    feature_store: Path = FeatureStoreOption,
    db: str | None = DbOption,
) -> None:
    """Split every top category into sub-categories, recursively, and store the tree (thesis chapter 5)."""
    from semcurate.clustering.runs import ClusteringError
    from semcurate.clustering.tree_building import build_tree
    from semcurate.features.store import FeatureStore

    sessions = sessions_for(db)
    image_store = store_or_latest(sessions, store)
    try:
        with progress_reporter() as reporter:
            summary = build_tree(sessions, FeatureStore(feature_store), image_store, feature_set, method, labels,
                                 depth=depth, rule=rule, subset=subset, max_children=max_children,
                                 min_size=min_size, random_state=seed, reporter=reporter)
    except (ClusteringError, ValueError, MemoryError) as error:
        fail(str(error))
    print_table(f"tree {summary['tree_id']} stored", summary)


@tree_app.command("list")
def tree_list(db: str | None = DbOption) -> None:
    """Every stored tree, newest first."""
    from semcurate.clustering.browse import list_trees

    trees = list_trees(sessions_for(db))
    if trees:
        print_records("sub-category trees", trees)
    else:
        typer.echo("no tree stored yet: run `semcurate tree build FEATURE_SET`")


@tree_app.command("show")
def tree_show(
    node: str | None = typer.Argument(None, help="Node path (Nanowires.2), name or id; default every category."),
    depth: int | None = typer.Option(None, "--depth", min=0, help="Levels shown below the node; default all."),
    tree_id: int | None = TreeOption,
    store: Path | None = typer.Option(None, "--store", help="Flat store for image paths (default: last ingest's)."),
    db: str | None = DbOption,
) -> None:
    """Print the tree indented, with sizes and the representative (medoid) image of every node."""
    from semcurate.clustering.browse import TreeError

    tree = open_tree(db, tree_id, store)
    try:
        typer.echo(tree.show(node, depth))
    except TreeError as error:
        fail(str(error))


@tree_app.command("images")
def tree_images(
    node: str = typer.Argument(..., help="Node path (Nanowires.2), name or id."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Print at most this many."),
    tree_id: int | None = TreeOption,
    store: Path | None = typer.Option(None, "--store", help="Flat store for image paths (default: last ingest's)."),
    db: str | None = DbOption,
) -> None:
    """Print the image files of a node, its representative first."""
    from semcurate.clustering.browse import TreeError

    tree = open_tree(db, tree_id, store)
    try:
        for path in tree.images(node, limit):
            typer.echo(str(path))
    except TreeError as error:
        fail(str(error))


@tree_app.command("export")
def tree_export(
    fmt: str = typer.Option("json", "--format", help="json (nested nodes) or newick."),
    out: Path | None = typer.Option(None, "--out", help="Write here instead of stdout."),
    tree_id: int | None = TreeOption,
    db: str | None = DbOption,
) -> None:
    """Export the tree as JSON or Newick."""
    from semcurate.clustering.browse import TreeError

    tree = open_tree(db, tree_id)
    try:
        text = tree.export(fmt)
    except TreeError as error:
        fail(str(error))
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"tree {tree.id} written to {out} ({fmt})")


@tree_app.command("rename")
def tree_rename(
    node: str = typer.Argument(..., help="Node path (Nanowires.2), current name or id."),
    name: str = typer.Argument(..., help="The new human name (empty to clear it)."),
    tree_id: int | None = TreeOption,
    db: str | None = DbOption,
) -> None:
    """Give a node a human name; `tree show` and exports use it from then on."""
    from semcurate.clustering.browse import TreeError

    tree = open_tree(db, tree_id)
    try:
        renamed = tree.rename(node, name)
    except TreeError as error:
        fail(str(error))
    typer.echo(f"{renamed.path} is now {renamed.title!r}")


@app.command("evaluate")
def evaluate_command(
    feature_sets: list[str] = typer.Option(..., "--feature-sets", help="Feature sets, one frame each: "
                                                                       "--feature-sets A B ..."),
    methods: list[str] = typer.Option(
        ["ward", "centroid", "complete", "single", "density-peaks"], "--methods",
        help="Clustering methods, one curve each (--methods ward single ...); clustered first where nothing "
             "is stored.",
    ),
    dataset: str = typer.Option("SEM_Dataset", "--dataset", help="Labelled dataset whose top categories are the "
                                                                 "truth (only labelled images are scored)."),
    hierarchy: str | None = typer.Option(None, "--hierarchy", help="Labelled dataset with sub-category paths "
                                                                   "(e.g. Hierarchical) to score the stored tree."),
    subset: str | None = typer.Option(None, "--subset", help="Only images of this subset, e.g. 1u-2u."),
    k_max: int = typer.Option(500, "--k-max", min=2, help="Largest number of clusters scored."),
    out: Path = typer.Option(Path("results/evaluate"), "--out", help="Folder for nmi_grid.png/.json and "
                                                                       "tree_scores.json."),
    feature_store: Path = FeatureStoreOption,
    cluster_store: Path = ClusterStoreOption,
    db: str | None = DbOption,
) -> None:
    """NMI against the labels as a function of k, with the reference curves (thesis Figs 4.4, 4.5)."""
    from semcurate.clustering.store import ClusterStore
    from semcurate.evaluation.evaluate import EvaluationError, evaluate, tree_scores
    from semcurate.features.store import FeatureStore

    sessions = sessions_for(db)
    try:
        with progress_reporter() as reporter:
            result = evaluate(sessions, FeatureStore(feature_store), ClusterStore(cluster_store), feature_sets,
                              methods, dataset, out, subset=subset, k_max=k_max, reporter=reporter)
        if hierarchy is not None:
            scored = tree_scores(sessions, hierarchy)
            (out / "tree_scores.json").write_text(json.dumps(scored, indent=2) + "\n", encoding="utf-8")
    except EvaluationError as error:
        fail(str(error))
    print_records(f"NMI against {dataset}: best k per feature set and method", result["best"])
    if hierarchy is not None:
        print_table(f"tree {scored['tree_id']} against {hierarchy} ({scored['labelled_images']} labelled images)",
                    {"leaf NMI": round(scored["leaf_nmi"], 3), "tree purity": round(scored["purity"], 3),
                     **{f"NMI of {name}'s children": round(cell["nmi"], 3)
                        for name, cell in scored["per_category"].items()}})
    typer.echo(f"figure and numbers in {out}")


@app.command("compare-2d")
def compare_2d_command(
    n_samples: int = typer.Option(3000, "--points", min=30, help="Points per synthetic dataset (thesis: 3,000)."),
    seed: int = typer.Option(0, "--seed", help="Random state of the datasets."),
    out: Path = typer.Option(Path("results/compare2d"), "--out", help="Folder for compare2d.png and .json."),
) -> None:
    """Thesis Fig. 4.1: the five algorithms on scikit-learn's synthetic 2-D datasets, with running times."""
    from semcurate.evaluation.compare2d import as_records, compare_2d, figure_2d

    with progress_reporter() as reporter:
        result = compare_2d(n_samples=n_samples, random_state=seed, progress=reporter("clusterings", 30))
    records = as_records(result)
    out.mkdir(parents=True, exist_ok=True)
    figure_2d(result).savefig(out / "compare2d.png", dpi=90)
    (out / "compare2d.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    print_records(f"five algorithms on {n_samples} points per dataset",
                  [{**record, "seconds": round(record["seconds"], 3),
                    "ari": None if record["ari"] is None else round(record["ari"], 3)} for record in records])
    typer.echo(f"figure and numbers in {out}")


@app.command("report")
def report_command(
    out: Path = typer.Argument(Path("report.html"), help="The HTML file to write (self-contained)."),
    results: Path = typer.Option(Path("results"), "--results", help="Folder the studies wrote their PNG and JSON "
                                                                     "into."),
    store: Path | None = typer.Option(None, "--store", help="Flat store for thumbnails (default: last ingest's)."),
    db: str | None = DbOption,
) -> None:
    """Write one self-contained HTML report of every table and figure the database and results support."""
    from semcurate.evaluation.report import ReportError, write_report

    try:
        summary = write_report(sessions_for(db), results, out, store)
    except ReportError as error:
        fail(str(error))
    typer.echo(f"report written to {summary['path']} ({summary['bytes'] / 1e6:.1f} MB): "
               f"{len(summary['present'])} sections")
    for line in summary["missing"].values():
        typer.echo(f"  missing: {line}")


@app.command("demo-data")
def demo_data(
    out: Path = typer.Argument(..., help="Folder to write the demo repository into (must not hold one already)."),
    images: int = typer.Option(1000, "--images", min=1, help="Distinct images to draw."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed writes the same bytes."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Processes; default: every core."),
    size_scale: float = typer.Option(
        1.0, "--size-scale", min=0.05, help="Multiply image sizes (1.0: mostly 1024×768)."
    ),
) -> None:
    """Write a messy SEM repository like the thesis' new_dati_SEM/, with labelled datasets and ground truth."""
    from semcurate.datasets.demo_corpus import ensure_fresh, make_sem_corpus
    from semcurate.demo import default_workers

    try:
        ensure_fresh(out)
    except ValueError as error:
        fail(str(error))
    with progress_reporter() as reporter:
        progress = from_running_total(reporter("drawing corpus", images), images)
        summary = make_sem_corpus(out, images, seed=seed, workers=workers or default_workers(),
                                    progress=progress, size_scale=size_scale)
    counts = vars(summary)
    by_format = counts.pop("files_per_format")
    print_table(f"demo corpus written to {out}", counts)
    print_table("files by format", by_format, ("format", "files"))


@app.command()
def demo(
    out: Path = typer.Option(Path("demo"), "--out", help="Folder for the corpus, store and database."),
    images: int = typer.Option(1000, "--images", min=1, help="Distinct images in the generated corpus."),
    seed: int = typer.Option(0, "--seed", help="Corpus seed."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Processes; default: every core."),
) -> None:
    """Run every stage end to end on a generated demo corpus; re-running skips finished work."""
    from semcurate.demo import default_workers, run_demo

    with progress_reporter() as reporter:
        results = run_demo(out, images, seed, workers or default_workers(), reporter, typer.echo)
    print_table("wall time per stage", {stage: f"{seconds:.1f} s" for stage, seconds in results["timings"].items()})
    database = (out / "semcurate.db").resolve()
    typer.echo(f"\nreport: {(out / 'report.html').resolve()} (open it in any browser)")
    typer.echo(f"results: database {database}, flat store {(out / 'store').resolve()}")
    typer.echo(f"explore: semcurate labels list --db sqlite:///{database}")
    typer.echo(f"         semcurate scale histogram --by-label SEM_Dataset --db sqlite:///{database}")
    typer.echo(f"         semcurate tree show --depth 1 --db sqlite:///{database}")


#: Options that take several values in a row (``--methods ward single``), as the thesis' figures list them.
MULTI_VALUE_OPTIONS = ("--feature-sets", "--methods")


def spread_multi_value_options(argv: list[str]) -> list[str]:
    """``--methods ward single`` as ``--methods ward --methods single`` (Click options take one value each)."""
    spread, option = [], None
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
    """Console-script entry point."""
    import sys

    app(args=spread_multi_value_options(sys.argv[1:]))
