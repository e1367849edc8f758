"""``semcurate features``, ``finetune``, ``id``, ``reduce`` and ``distances``: the feature stage (thesis ch. 3)."""

from __future__ import annotations

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
    Subset,
    choice_option,
    connect_scheduler,
    database_errors,
    echo_json,
    fail,
    image_store,
    open_sessions,
)
from semcurate.features.methods import EXTRACTORS, FINETUNE_MODES, REDUCE_METHODS, VARIANT_IMAGES
from semcurate.progress import print_records, print_table, progress_reporter

features_app = typer.Typer(
    help="Feature sets: CNN activations or the weight-free descriptor (thesis ch. 3).", no_args_is_help=True
)

EXTRACTOR = Choice("extractor", EXTRACTORS)
FINETUNE_MODE = Choice("mode", FINETUNE_MODES)
REDUCE_METHOD = Choice("method", REDUCE_METHODS)


@features_app.command("extract")
def features_extract(
    extractor: Annotated[
        str,
        choice_option(
            "--extractor",
            EXTRACTOR,
            "classic, classic_blobs (classic with blob statistics; fills classic in the same pass), "
            "classic_particles (classic_blobs with particle shapes; fills both), scattering (weight-free) or "
            "scattering_centre (the same on each image's centre square: half the cost on a 4:3 image), "
            "or inception_v3.",
        ),
    ],
    weights: Annotated[
        str,
        typer.Option(
            "--weights",
            help="inception_v3 weights: imagenet, a file, or none: random initial weights (seeded), "
            "which name the sets inception_v3.random.*.",
        ),
    ] = "imagenet",
    subset: Annotated[
        str | None, typer.Option("--subset", help="Only the images of this subset (default: all).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")] = 32,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes for the weight-free extractors.")] = 1,
    max_pixels: Annotated[
        int,
        typer.Option(
            "--max-pixels", min=1, help="Skip images over this many pixels (the decompression-bomb guard of ingest)."
        ),
    ] = 100_000_000,
    allow_uncropped: Annotated[
        bool,
        typer.Option(
            "--allow-uncropped",
            help="Extract images that have no scale reading yet with their data bar left in (default: refuse).",
        ),
    ] = False,
    store: ImageStore = None,
    feature_store: FeatureStorePath = FEATURE_STORE,
    scheduler: Scheduler = None,
    db: Db = None,
) -> None:
    """Compute one feature row per image (data bar cropped away); resumable: only missing rows are computed.

    The data bar is cropped at the top of the stripe that `semcurate scale` found, so images without a scale
    reading are refused unless --allow-uncropped: a bar left in would make its text part of the features.
    One extraction at a time writes a feature store; later stages see a set only once its extraction finished.
    --workers and --scheduler run the weight-free extractors (classic, classic_blobs, classic_particles,
    scattering, scattering_centre) in local processes or on Dask workers; this process alone writes the feature store.
    """
    from semcurate.features.extract import ExtractionError, create_extractor, extract, images_without_scale_reading
    from semcurate.features.inception import WeightsUnavailable
    from semcurate.features.store import FeatureStore, FeatureStoreError

    sessions = open_sessions(db)
    store = image_store(sessions, store)
    unread, images = images_without_scale_reading(sessions, subset)
    if unread and not allow_uncropped:
        fail(
            f"{unread} of {images} images have no scale reading yet, so their data bar cannot be cropped: "
            "run `semcurate scale` first, or pass --allow-uncropped"
        )
    connect_scheduler(scheduler, [store])
    try:
        model = create_extractor(extractor, weights)
        with database_errors(db), progress_reporter() as reporter:
            result = extract(
                sessions,
                store,
                FeatureStore(feature_store),
                model,
                subset=subset,
                batch_size=batch_size,
                workers=workers,
                max_pixels=max_pixels,
                reporter=reporter,
                scheduler=scheduler,
            )
    except (ExtractionError, WeightsUnavailable, FeatureStoreError) as error:
        fail(str(error))
    if result["moved_from"]:
        typer.echo(f"the sets were stored in {result['moved_from']}: extracted anew into {result['feature_store']}")
    typer.echo(f"extracted {result['extracted']} images now into {result['feature_store']}")
    if unread:
        typer.echo(f"{unread} images had no scale reading: their data bar was left in (--allow-uncropped)")
    if result["skipped"]:
        print_table("images skipped", result["skipped"], ("reason", "images"))
    print_table("feature sets", result["feature_sets"], ("feature set", "rows"))


@features_app.command("list")
def features_list(db: Db = None, as_json: AsJson = False) -> None:
    """Every feature set: extractor, weights digest, layer, dimension, finished rows, store file."""
    from semcurate.features.analysis import list_feature_sets

    rows = list_feature_sets(open_sessions(db, read_only=True))
    if as_json:
        echo_json({"feature_sets": rows})
        return
    if not rows:
        fail("no feature sets yet: `semcurate features extract --extractor classic`", 1)
    print_records("feature sets", rows)


def finetune(
    dataset: Annotated[
        str, typer.Option("--dataset", help="Labelled dataset whose top categories are the classes, e.g. SEM_Dataset.")
    ],
    mode: Annotated[
        str, choice_option("--mode", FINETUNE_MODE, "transfer (new top, frozen base) or finetune (all layers).")
    ] = "transfer",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 5,
    image_size: Annotated[
        int, typer.Option("--image-size", min=75, help="Input side in px (Inception-V3: 75 or more).")
    ] = 299,
    weights: Annotated[
        str, typer.Option("--weights", help="Base weights: imagenet, none, or a no-top file.")
    ] = "imagenet",
    subset: Annotated[str | None, typer.Option("--subset", help="Only labelled images of this subset.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Checkpoint file (.keras); default checkpoints/inception_v3.DATASET.MODE.keras."),
    ] = None,
    store: ImageStore = None,
    db: Db = None,
) -> None:
    """Train Inception-V3 on the labelled categories (80/10/10 split); the checkpoint serves as --weights."""
    from semcurate.features.analysis import StudyError, finetune_on_labels
    from semcurate.features.extract import ExtractionError
    from semcurate.features.inception import WeightsUnavailable

    sessions = open_sessions(db)
    store = image_store(sessions, store)
    checkpoint = out or Path("checkpoints") / f"inception_v3.{dataset}.{mode}.keras"
    try:
        _, report = finetune_on_labels(
            sessions,
            store,
            dataset,
            subset=subset,
            mode=mode,
            weights=weights,
            epochs=epochs,
            image_size=image_size,
            batch_size=batch_size,
            checkpoint=checkpoint,
        )
    except (StudyError, ExtractionError, WeightsUnavailable) as error:
        fail(str(error))
    typer.echo(f"split {report.split_sizes}; test accuracy {report.test_accuracy:.3f}")
    print_table(
        "test accuracy per class",
        {name: f"{value:.3f}" for name, value in report.per_class_accuracy.items()},
        ("class", "accuracy"),
    )
    print_table(
        "confusion matrix (rows: true class)",
        [(name, *row) for name, row in zip(report.classes, report.confusion, strict=True)],
        ("", *report.classes),
    )
    typer.echo(
        f"checkpoint {checkpoint}: use it with `semcurate features extract --extractor inception_v3 "
        f"--weights {checkpoint}`"
    )


def intrinsic_dimension(
    feature_set: Annotated[str, typer.Argument(help="Feature set, e.g. inception_v3.imagenet.pool.")],
    subset: Annotated[str | None, typer.Option("--subset", help="Only images of this subset.")] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Random subsamples per size in the scan.")] = 5,
    out: Annotated[Path, typer.Option("--out", help="Folder for the fit and scan plots and numbers.")] = Path(
        "results/id"
    ),
    feature_store: FeatureStorePath = FEATURE_STORE,
    db: Db = None,
) -> None:
    """2-NN intrinsic dimension (§3.3): estimates at fractions 1.0/0.9/0.7/0.5, sample-size scan, code size."""
    from semcurate.features.analysis import StudyError, id_study
    from semcurate.features.store import FeatureStore, FeatureStoreError

    try:
        result = id_study(
            open_sessions(db), FeatureStore(feature_store), feature_set, out, subset=subset, repeats=repeats
        )
    except (StudyError, FeatureStoreError) as error:
        fail(str(error))
    estimates = {f"fraction {fraction}": f"{value:.2f}" for fraction, value in result["estimates"].items()}
    print_table(
        f"2-NN intrinsic dimension of {feature_set} ({result['rows']} rows)", estimates, ("fit over", "dimension")
    )
    scan = result["scan"]
    rows = [
        (size, f"{mean:.2f}", f"{std:.2f}")
        for size, mean, std in zip(scan["sizes"], scan["means"], scan["stds"], strict=True)
    ]
    print_table("sample-size scan (Fig. 3.7)", rows, ("sample size", "mean", "std"))
    typer.echo(f"suggested code size (plateau, rounded up): {result['suggested_code_size']}")
    typer.echo(f"plots: {out / (feature_set + '.id_fit.png')}, {out / (feature_set + '.id_scan.png')}")


def reduce(
    feature_set: Annotated[
        str,
        typer.Argument(
            help="Feature set to reduce, e.g. inception_v3.imagenet.pool, or sets joined by + "
            "(classic_particles+scattering): their columns side by side, for the images in every one."
        ),
    ],
    method: Annotated[
        str,
        choice_option(
            "--method",
            REDUCE_METHOD,
            "ae (tied autoencoder, §3.2), pca (Fig. 3.2), or invariant (the directions acquisition moves least).",
        ),
    ] = "ae",
    code_size: Annotated[
        str,
        typer.Option(
            "--code-size",
            help="Code length, or auto: the 2-NN ID plateau rounded up (invariant: every direction whose "
            "variance over the images is at least 5 times its variance between an image and its variant).",
        ),
    ] = "auto",
    variant_images: Annotated[
        int,
        typer.Option(
            "--variant-images", min=2, help="invariant: images drawn at random to describe one acquisition variant of."
        ),
    ] = VARIANT_IMAGES,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Processes: the --grid autoencoders, or the invariant variants' weight-free extractor.",
        ),
    ] = 1,
    subset: Annotated[str | None, typer.Option("--subset", help="Only images of this subset.")] = None,
    grid: Annotated[bool, typer.Option("--grid", help="Choose h1, h2 and tying by the §3.2.4 grid search.")] = False,
    h1: Annotated[int, typer.Option("--h1", min=1, help="Autoencoder outer hidden layer width.")] = 400,
    h2: Annotated[int, typer.Option("--h2", min=1, help="Autoencoder middle hidden layer width.")] = 100,
    tying: Annotated[
        str, typer.Option("--tying", help="Tied pairs: none, outer, middle, inner, all, or a+b.")
    ] = "outer",
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Epochs of global training.")] = 50,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Autoencoder mini-batch (thesis: 300).")] = 300,
    out: Annotated[Path, typer.Option("--out", help="Folder for the model, plots and numbers.")] = Path(
        "results/reduce"
    ),
    preprocessing: Preprocessing = "standard",
    store: ImageStore = None,
    feature_store: FeatureStorePath = FEATURE_STORE,
    db: Db = None,
) -> None:
    """Reduce a feature set to a short code with the tied autoencoder, PCA or the acquisition-invariant projection;
    store it as a new feature set.

    PCA works on the rows scaled by --preprocessing; the autoencoder and the invariant projection scale their input
    themselves. invariant describes a variant of --variant-images images re-acquired at random (magnification, focus,
    gamma, contrast, brightness, shading, noise, mirror) and keeps the directions in which images differ most
    relative to their variants; cluster its codes with --preprocessing none.
    """
    from semcurate.features.analysis import StudyError, reduce_feature_set
    from semcurate.features.store import FeatureStore, FeatureStoreError

    sessions = open_sessions(db)
    try:
        result = reduce_feature_set(
            sessions,
            FeatureStore(feature_store),
            feature_set,
            method,
            code_size,
            out,
            subset=subset,
            hidden=(h1, h2),
            tying=tying,
            epochs=epochs,
            batch_size=batch_size,
            grid=grid,
            preprocessing=preprocessing,
            image_store=image_store(sessions, store) if method == "invariant" else None,
            variant_images=variant_images,
            workers=workers,
        )
    except (StudyError, FeatureStoreError) as error:
        fail(str(error))
    if "grid" in result:
        columns = ("architecture", "n_parameters", "train_mse", "heldout_mse")
        print_table(
            "grid search (thesis Table 3.3)", [tuple(row[key] for key in columns) for row in result["grid"]], columns
        )
    summary = {key: value for key, value in result.items() if key not in ("grid", "variance_ratios")}
    print_table(f"stored {result['feature_set']}", summary)


def distances(
    feature_sets: Annotated[list[str], typer.Argument(help="Feature sets to compare, e.g. a set and its reduction.")],
    dataset: Annotated[
        str, typer.Option("--dataset", help="Labelled dataset giving the categories, e.g. SEM_Dataset.")
    ],
    subset: Subset = None,
    per_category: Annotated[
        int | None,
        typer.Option(
            "--per-category",
            min=1,
            help="Images per category (default: the thesis' Table 3.4 counts).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for distances.png and .json.")] = Path("results/distances"),
    feature_store: FeatureStorePath = FEATURE_STORE,
    db: Db = None,
) -> None:
    """Distance heatmaps of a category-balanced labelled sample against d_disc, with correlation indices (§3.4)."""
    from semcurate.features.analysis import StudyError, distance_study
    from semcurate.features.store import FeatureStore, FeatureStoreError

    try:
        result = distance_study(
            open_sessions(db),
            FeatureStore(feature_store),
            feature_sets,
            dataset,
            out,
            subset=subset,
            per_category=per_category,
        )
    except (StudyError, FeatureStoreError) as error:
        fail(str(error))
    correlations = {name: f"{value:.3f}" for name, value in result["correlation_with_d_disc"].items()}
    print_table(f"correlation with d_disc ({result['sample_size']} images)", correlations, ("feature set", "r"))
    typer.echo(f"heatmaps: {out / 'distances.png'}")
