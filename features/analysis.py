"""Shell for the feature studies: loads feature sets and labels, writes figures and numbers.

Each study writes its PNG figures and a JSON file of its numbers into an
output folder (the HTML report of issue 6 reads them back). Also here:
:func:`list_feature_sets` (``semcurate features list``) and
:func:`finetune_on_labels` (``semcurate finetune``), which loads the labelled
images for the fine-tuning core.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from semcurate.db.models import FeatureSet, Image, Label, SubsetMember
from semcurate.features import distances
from semcurate.features.methods import REDUCE_METHODS, VARIANT_IMAGES
from semcurate.features.preprocessing import preprocess
from semcurate.features.store import FeatureStore, FeatureStoreError


class StudyError(Exception):
    """A study that cannot run on what is stored (one clear line)."""


def labelled_images(sessions: sessionmaker, dataset: str, subset: str | None, *, paths: bool = False) -> dict[str, str]:
    """Top category (with ``paths``: the full category path, ``Category/sub/...``) of every matched image of
    ``dataset`` (in ``subset`` if given); conflicting images are left out."""
    column = Label.category_path if paths else Label.category
    with sessions() as session:
        query = select(Label.image_md5, column).where(Label.dataset == dataset, Label.image_md5.is_not(None))
        if subset is not None:
            query = query.join(SubsetMember, SubsetMember.image_md5 == Label.image_md5).where(
                SubsetMember.subset == subset
            )
        rows = session.execute(query).all()
    if not rows:
        raise StudyError(f"no matched labels of dataset {dataset!r}" + (f" in subset {subset!r}" if subset else ""))
    categories: dict[str, set] = {}
    for md5, category in rows:
        categories.setdefault(md5, set()).add(category)
    return {md5: next(iter(found)) for md5, found in categories.items() if len(found) == 1}


def distance_study(
    sessions: sessionmaker,
    feature_store: FeatureStore,
    feature_sets: list[str],
    dataset: str,
    out_dir: Path,
    *,
    subset: str | None = None,
    per_category: int | None = None,
    random_state: int = 0,
) -> dict:
    """Heatmaps and correlation indices of ``feature_sets`` against ``d_disc`` on one balanced sample."""
    labels = labelled_images(sessions, dataset, subset)
    rows_of = {}
    for name in feature_sets:
        md5s, values = feature_rows(sessions, feature_store, name, None)
        rows_of[name] = dict(zip(md5s, values, strict=True))
        labels = {md5: category for md5, category in labels.items() if md5 in rows_of[name]}
    sample = distances.balanced_sample(labels, per_category, random_state)
    if len(sample) < 3 or len({category for _, category in sample}) < 2:
        raise StudyError("the labelled sample needs at least 3 images in 2 categories with rows in every feature set")
    md5s, categories = [md5 for md5, _ in sample], [category for _, category in sample]
    panels = [(name, np.array([rows_of[name][md5] for md5 in md5s])) for name in feature_sets]
    result = {
        "dataset": dataset,
        "subset": subset,
        "sample_size": len(sample),
        "per_category": {category: categories.count(category) for category in sorted(set(categories))},
        "correlation_with_d_disc": {name: distances.correlation_index(values, categories) for name, values in panels},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    distances.heatmaps(panels, categories).savefig(out_dir / "distances.png", dpi=110)
    (out_dir / "distances.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def bound_store(sessions: sessionmaker, feature_store: FeatureStore, name: str) -> FeatureStore:
    """The feature store holding ``name``: the file the database records for it when ``feature_store`` has no path.

    The path comes from the database (``FeatureSet.store_path``) so a command
    finds a set wherever it is run from; a path given that is not the
    recorded one is refused in one line rather than read as "no such set".

    Raises
    ------
    StudyError
        No finished feature set ``name`` (one line saying whether it is partial or absent), or a given path that
        disagrees with the recorded one.
    """
    with sessions() as session:
        row = session.get(FeatureSet, name)
        recorded = None if row is None else Path(row.store_path)
    if recorded is None:
        if feature_store.path is not None and name in feature_store.names():
            return feature_store  # rows written through the Python API alone, with no record: read as they are
        raise StudyError(f"no feature set {name!r}: see `semcurate features list`, or run `semcurate features extract`")
    if feature_store.path is None:
        return FeatureStore(recorded)
    if feature_store.path.resolve() != recorded.resolve():
        raise StudyError(
            f"feature set {name} is stored in {recorded}, not {feature_store.path}: "
            "pass that --feature-store or leave it out"
        )
    return feature_store


def feature_rows(sessions: sessionmaker, feature_store: FeatureStore, name: str, subset: str | None):
    """md5s and values of the finished feature set ``name``, restricted to ``subset`` when given (at least 3 rows).

    Completeness is recorded in the database, not in the HDF5 file: an
    extraction creates the set's :class:`~semcurate.db.models.FeatureSet` row
    when it starts (0 rows for a new set) and sets ``n_rows`` only when it
    finished (a reduction registers its set once written).  Rows are
    append-only, so the first ``n_rows`` rows of the HDF5 set are exactly the
    finished extraction; rows an interrupted later run appended after them
    stay invisible until a run finishes.  A set whose first extraction has not
    finished (0 rows) is refused with a line saying how far it got.  A set
    written to an HDF5 file through the Python API alone, with no database row
    at all, is read whole from the file given.  (The database is what every
    later stage already consults, and it commits atomically; an HDF5 attribute
    would be a second place to keep in step with it.)
    """
    with sessions() as session:
        row = session.get(FeatureSet, name)
        recorded_rows = row.n_rows if row is not None else None
        images = session.scalar(select(func.count()).select_from(Image)) or 0
    try:
        feature_store = bound_store(sessions, feature_store, name)
        if recorded_rows == 0:
            raise StudyError(
                f"feature set {name} is partial ({len(feature_store.md5s(name))} of {images} rows): run "
                f"`semcurate features extract --extractor {name.split('.')[0]}` to finish it"
            )
        md5s, values = feature_store.read(name, rows=recorded_rows)
    except FeatureStoreError as error:  # a file gone, unreadable or being written: one line all the same
        raise StudyError(str(error)) from None
    if recorded_rows is not None and len(md5s) < recorded_rows:
        raise StudyError(
            f"feature set {name} has {len(md5s)} of its {recorded_rows} rows in {feature_store.path}: "
            f"run `semcurate features extract` again to rebuild it"
        )
    if subset is not None:
        with sessions() as session:
            members = set(session.scalars(select(SubsetMember.image_md5).where(SubsetMember.subset == subset)))
        if not members:
            raise StudyError(f"subset {subset!r} has no images (see `semcurate subset list`)")
        keep = [index for index, md5 in enumerate(md5s) if md5 in members]
        if not keep:
            raise StudyError(
                f"none of the {len(members)} images of subset {subset!r} has a row in {name}; "
                f"run `semcurate features extract --subset {subset}` first"
            )
        md5s, values = [md5s[index] for index in keep], values[keep]
    if len(md5s) < 3:
        raise StudyError(f"{name}: {len(md5s)} rows; at least 3 are needed")
    return md5s, values


def list_feature_sets(sessions: sessionmaker) -> list[dict]:
    """Every registered feature set by name: extractor, weights and the first 12 hex digits of their digest,
    layer, dimension (columns), rows, parent set (empty for extracted sets) and the HDF5 file holding the rows."""
    with sessions() as session:
        return [
            {
                "name": row.name,
                "extractor": row.extractor,
                "weights": row.weights,
                "digest": row.weights_digest[:12],
                "layer": row.layer,
                "dimension": row.dimension,
                "rows": row.n_rows,
                "parent": row.parent or "",
                "store": row.store_path,
            }
            for row in session.scalars(select(FeatureSet).order_by(FeatureSet.name))
        ]


def joined_rows(sessions: sessionmaker, feature_store: FeatureStore, name: str, subset: str | None):
    """md5s and values of feature set ``name``, or of several sets side by side where ``name`` joins them by ``+``.

    ``classic_particles+scattering`` (a name the database does not know as
    one set, :func:`~semcurate.features.extract.joined_parts`) reads both
    finished sets (from one feature store) and keeps the images that have a row in each, in the first
    set's order, with the first set's columns and then the second's.  This
    is how ``reduce`` fits one projection over two extractors' columns: the
    particle shapes of one and the textures of the other weigh in one
    distance, each direction by how far acquisition moves it (issue 13).

    Raises
    ------
    StudyError
        As :func:`feature_rows` for any part; a part named twice or empty; fewer than 3 images in every part.
    """
    from semcurate.features.extract import joined_parts

    parts = joined_parts(sessions, name)
    if len(parts) == 1:
        return feature_rows(sessions, feature_store, name, subset)
    if "" in parts or len(set(parts)) < len(parts):
        raise StudyError(f"{name!r} must join different feature sets by +, like classic_particles+scattering")
    read = [feature_rows(sessions, feature_store, part, subset) for part in parts]
    shared = set.intersection(*(set(md5s) for md5s, _ in read))
    md5s = [md5 for md5 in read[0][0] if md5 in shared]
    if len(md5s) < 3:
        raise StudyError(f"only {len(md5s)} images have a row in every set of {name}: extract them first")
    columns = []
    for part_md5s, values in read:
        row_of = {md5: index for index, md5 in enumerate(part_md5s)}
        columns.append(values[[row_of[md5] for md5 in md5s]])
    return md5s, np.hstack(columns)


def _register(
    sessions, feature_store: FeatureStore, name: str, parent: str, layer: str, dimension: int, parameters: dict
) -> None:
    with sessions.begin() as session:
        source = session.get(FeatureSet, parent)
        row = session.get(FeatureSet, name) or FeatureSet(name=name)
        row.extractor = source.extractor if source else "derived"
        row.weights = source.weights if source else "derived"
        row.weights_digest = source.weights_digest if source else "derived"
        row.layer, row.dimension, row.parent = layer, dimension, parent
        row.n_rows, row.store_path = len(feature_store.md5s(name)), str(feature_store.path.resolve())
        row.parameters = json.dumps(parameters)
        session.add(row)


def _move_folder(source: Path, target: Path) -> None:
    """Put folder ``source`` at ``target``, replacing any folder there (``os.replace`` cannot rename onto a
    folder that holds files)."""
    shutil.rmtree(target, ignore_errors=True)
    os.replace(source, target)


def reduce_feature_set(
    sessions: sessionmaker,
    feature_store: FeatureStore,
    name: str,
    method: str,
    code_size: int | str,
    out_dir: Path,
    *,
    subset: str | None = None,
    hidden: tuple[int, int] = (400, 100),
    tying: str = "outer",
    epochs: int = 50,
    batch_size: int = 300,
    grid: bool = False,
    random_state: int = 0,
    preprocessing: str = "standard",
    image_store: Path | None = None,
    variant_images: int = VARIANT_IMAGES,
    workers: int = 1,
) -> dict:
    """Reduce feature set ``name`` to ``code_size`` with PCA, the tied autoencoder or the acquisition-invariant
    projection; store the codes as a new set.

    PCA works on the rows preprocessed by ``preprocessing``
    (:func:`~semcurate.features.preprocessing.preprocess`; ``standard`` by
    default, so that the explained variance is not that of a few wide
    columns); the autoencoder scales its input itself.

    The new set is ``<name>.pca<K>`` or ``<name>.ae<K>``.  ``code_size`` is a
    whole number (``"8"`` is read as 8) or ``"auto"``: the plateau of the
    2-NN intrinsic dimension rounded up (thesis §3.3; ``code_size_source`` in
    the result says which).  With ``grid`` the autoencoder's hidden sizes and
    tying come from the grid search of thesis §3.2.4 (h1 200-600, h2 50-200,
    tying none/outer), scored by reconstruction MSE on a held-out 10 %, and
    the codes stored are the best configuration's own, as the thesis applied
    its grid's best models (the result's ``heldout_mse`` is that model's);
    otherwise ``tying`` is checked before any training, and the model trains
    on 90 % of the rows with the rest as its validation split.  Figures and numbers
    go to ``out_dir``.

    ``invariant`` (:class:`~semcurate.features.invariance.NuisanceProjection`)
    describes one acquisition variant of each of ``variant_images`` images
    drawn at random from ``image_store`` with the set's own extractor, and
    keeps the directions in which the images differ most relative to how
    much an image differs from its variant; the new set is
    ``<name>.inv<K>``.  Its ``"auto"`` code size is every direction whose
    variance over the images is at least 5 times its image-to-variant
    variance, not the intrinsic dimension.  Its codes are in units of
    acquisition's typical change and are meant to be clustered as they are
    (``--preprocessing none``): standardising them would give the directions
    acquisition moves most the same weight as the others again.

    ``workers`` local processes train the grid search's autoencoders and
    describe the invariant projection's variants (classic descriptor).
    """
    from semcurate.features.extract import joined_parts

    md5s, values = joined_rows(sessions, feature_store, name, subset)
    feature_store = bound_store(sessions, feature_store, joined_parts(sessions, name)[0])
    if method not in REDUCE_METHODS:
        raise StudyError(f"unknown method {method!r}: {' or '.join(REDUCE_METHODS)}")
    if method == "invariant":
        automatic = isinstance(code_size, str) and code_size.strip().lower() == "auto"
        return _invariant_projection(
            sessions,
            feature_store,
            name,
            md5s,
            values,
            "auto" if automatic else _code_size(code_size, values)[0],
            out_dir,
            image_store,
            variant_images,
            random_state,
            workers,
        )
    code_size, code_size_source = _code_size(code_size, values)
    if method == "ae" and not grid:
        from semcurate.features.autoencoder import parse_tying

        try:
            parse_tying(tying)
        except ValueError as error:
            raise StudyError(str(error)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "parent": name,
        "method": method,
        "code_size": code_size,
        "code_size_source": code_size_source,
        "rows": len(md5s),
    }
    with contextlib.ExitStack() as stack:  # the grid's model folder lives until its best model is moved
        publish_model: Callable[[], object] | None = None  # PCA keeps no model
        if method == "pca":
            from sklearn.decomposition import PCA

            try:
                scaled = preprocess(values, preprocessing)
            except ValueError as error:
                raise StudyError(str(error)) from None
            result["preprocessing"] = preprocessing
            pca = PCA(n_components=min(values.shape), random_state=random_state).fit(scaled)
            codes = pca.transform(scaled)[:, :code_size]
            ratios = pca.explained_variance_ratio_
            result["explained_variance"] = float(ratios[:code_size].sum())
            scree_figure(ratios, code_size).savefig(out_dir / f"{name}.pca_scree.png", dpi=110)
            new_name, layer = f"{name}.pca{code_size}", "pca"
        else:
            from semcurate.features.autoencoder import GRID_CODES_FILE, TiedAutoencoder, grid_search

            new_name, layer = f"{name}.ae{code_size}", "autoencoder codes"
            result.update(epochs=epochs, batch_size=batch_size)
            kept = out_dir / f"{new_name}.model"
            heldout_share = 0.1  # of the rows: the grid's held-out rows, or the single model's validation split
            if grid:
                # the grid's best model is the one applied (thesis §3.2.4), trained on the grid's 90 % and scored on
                # its held-out 10 %; training it again would cost the demo's reduce stage about 12 s
                models_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=".grid-", dir=out_dir)))
                rows = grid_search(
                    values,
                    (200, 400, 600),
                    (50, 100, 200),
                    ("none", "outer"),
                    code_size,
                    validation_fraction=heldout_share,
                    phases=(("g", epochs),),
                    estimator_params={"batch_size": batch_size},
                    random_state=random_state,
                    n_jobs=workers,
                    models_dir=models_dir,
                )
                best = rows[0]
                codes = np.load(Path(best["model"]) / GRID_CODES_FILE)
                (Path(best["model"]) / GRID_CODES_FILE).unlink()
                result["grid"] = [{key: value for key, value in row.items() if key != "model"} for row in rows]
                result.update(
                    hidden=[best["h1"], best["h2"]],
                    tying=best["tying"],
                    # over every row: the mean of the training and held-out errors, weighted by their rows
                    reconstruction_mse=float(
                        (best["train_rows"] * best["train_mse"] + best["heldout_rows"] * best["heldout_mse"])
                        / (best["train_rows"] + best["heldout_rows"])
                    ),
                    heldout_mse=float(best["heldout_mse"]),
                    n_parameters=int(best["n_parameters"]),
                )
                publish_model = functools.partial(_move_folder, Path(best["model"]), kept)
            else:
                model = TiedAutoencoder(
                    n_hidden=(*hidden, code_size),
                    tying=tying,
                    phases=(("g", epochs),),
                    batch_size=batch_size,
                    validation_fraction=heldout_share,
                    random_state=random_state,
                ).fit(values)
                codes = model.transform(values)
                result.update(
                    hidden=list(hidden),
                    tying=tying,
                    reconstruction_mse=float(-model.score(values)),
                    n_parameters=int(model.n_parameters_),
                )
                publish_model = functools.partial(model.save, kept)

        # the model folder, the codes, the catalogue row and the JSON are written under the store's writer lock, so
        # that two runs of one reduction cannot leave one's model beside the other's codes, nor collide in the
        # folder swap (the second to arrive stops with FeatureStoreBusy while the first writes)
        with feature_store.writing():
            if publish_model is not None:
                publish_model()
            feature_store.replace(new_name, md5s, codes)
            _register(
                sessions,
                feature_store,
                new_name,
                name,
                layer,
                code_size,
                {key: value for key, value in result.items() if key != "grid"},
            )
            result["feature_set"] = new_name
            (out_dir / f"{new_name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return result


def _invariant_projection(
    sessions: sessionmaker,
    feature_store: FeatureStore,
    name: str,
    md5s: list[str],
    values: np.ndarray,
    code_size: int | str,
    out_dir: Path,
    image_store: Path | None,
    variant_images: int,
    random_state: int,
    workers: int,
) -> dict:
    """The ``invariant`` branch of :func:`reduce_feature_set`: variants described, projection fitted and stored.

    ``code_size`` is ``"auto"`` or a size :func:`reduce_feature_set` has already checked."""
    from semcurate.features.extract import ExtractionError, variant_rows
    from semcurate.features.invariance import NuisanceProjection

    if image_store is None:
        raise StudyError(
            "reduce --method invariant describes variants of the images: it needs the image store (--store)"
        )
    if variant_images < 2:
        raise StudyError(f"--variant-images must be at least 2, got {variant_images}")
    automatic = code_size == "auto"
    drawn = np.sort(np.random.default_rng(random_state).permutation(len(md5s))[:variant_images])
    try:
        used, variants, skipped = variant_rows(
            sessions,
            Path(image_store),
            name,
            [md5s[index] for index in drawn],
            random_state=random_state,
            workers=workers,
        )
    except ExtractionError as error:
        raise StudyError(str(error)) from None
    if len(used) < 2:
        raise StudyError(f"only {len(used)} of the {len(drawn)} drawn images decoded ({skipped}): check the store")
    row_of = {md5: index for index, md5 in enumerate(md5s)}
    projection = NuisanceProjection(n_components="auto" if automatic else int(code_size)).fit(
        values, originals=values[[row_of[md5] for md5 in used]], variants=variants
    )
    codes = projection.transform(values)
    size = projection.n_components_
    result: dict = {
        "parent": name,
        "method": "invariant",
        "code_size": size,
        "code_size_source": f"variance ratio at least {projection.min_ratio:g}" if automatic else "given",
        "rows": len(md5s),
        "variant_images": len(used),
        "variant_images_requested": variant_images,
        "variant_images_skipped": skipped,
        "variance_ratios": [round(float(ratio), 3) for ratio in projection.variance_ratios_[: 2 * size]],
        "random_state": random_state,
    }
    new_name = f"{name}.inv{size}"
    out_dir.mkdir(parents=True, exist_ok=True)
    feature_store.replace(new_name, md5s, codes)
    _register(sessions, feature_store, new_name, name, "acquisition-invariant projection", size, result)
    result["feature_set"] = new_name
    (out_dir / f"{new_name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _code_size(code_size: int | str, values) -> tuple[int, str]:
    """``(size, source)``: a whole number as given (``"given"``), or for ``"auto"`` the 2-NN intrinsic dimension
    plateau of ``values`` rounded up (``"2-NN intrinsic dimension"``); either must lie in ``1 .. columns - 1``."""
    if isinstance(code_size, str) and code_size.strip().lower() == "auto":
        from semcurate.features.intrinsic_dimension import id_scan, suggest_code_size

        try:
            size, source = suggest_code_size(id_scan(values, random_state=0)), "2-NN intrinsic dimension"
        except ValueError as error:  # fewer than 3 distinct rows
            raise StudyError(f"cannot choose the code size automatically: {error}") from None
    elif isinstance(code_size, str) and code_size.strip().isdigit():
        size, source = int(code_size), "given"
    elif isinstance(code_size, int) and not isinstance(code_size, bool):
        size, source = code_size, "given"
    else:
        raise StudyError(f"code size must be a whole number or auto, not {code_size!r}")
    if not 1 <= size < values.shape[1]:
        raise StudyError(f"code size must be between 1 and {values.shape[1] - 1}, got {size}")
    return size, source


def scree_figure(ratios, code_size: int):
    """Explained variance per component and cumulative (thesis Fig. 3.2), the chosen size marked."""
    import numpy as np
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.6), layout="constrained")
    axis = figure.subplots()
    components = np.arange(1, len(ratios) + 1)
    axis.bar(components, ratios, color="tab:blue", label="per component")
    axis.plot(components, np.cumsum(ratios), color="tab:orange", label="cumulative")
    axis.axvline(code_size + 0.5, color="tab:red", linestyle="--", label=f"code size {code_size}")
    axis.set_xlabel("principal component")
    axis.set_ylabel("explained variance ratio")
    axis.set_xlim(0.5, min(len(ratios), 4 * code_size) + 0.5)
    axis.legend()
    return figure


def id_study(
    sessions: sessionmaker,
    feature_store: FeatureStore,
    name: str,
    out_dir: Path,
    *,
    subset: str | None = None,
    repeats: int = 5,
    random_state: int = 0,
) -> dict:
    """2-NN intrinsic dimension of a feature set: estimates at several fractions, the sample-size scan,
    the suggested code size, and the fit (Fig. 3.6) and scan (Fig. 3.7) plots in ``out_dir``.

    A study ``out_dir`` already holds for the same feature set, subset, images (their md5s, in order),
    ``repeats`` and ``random_state``, with its plots, is returned as it is: a feature row never changes once
    stored and the study is deterministic, so it would find the same (a second ``semcurate demo`` skips it).
    """
    from semcurate.features.intrinsic_dimension import (
        TwoNN,
        estimates_at,
        id_scan,
        plot_fit,
        plot_scan,
        suggest_code_size,
    )

    md5s, values = feature_rows(sessions, feature_store, name, subset)
    settings = {
        "feature_set": name,
        "subset": subset,
        "rows": len(values),
        "rows_sha1": hashlib.sha1("".join(md5s).encode("ascii")).hexdigest(),  # which images, in which order
        "repeats": repeats,
        "random_state": random_state,
    }
    earlier = out_dir / f"{name}.id.json"
    plots = (out_dir / f"{name}.id_fit.png", out_dir / f"{name}.id_scan.png")
    if earlier.exists() and all(plot.exists() for plot in plots):
        try:
            found = json.loads(earlier.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = {}
        if {key: found.get(key) for key in settings} == settings:
            return found
    try:
        scan = id_scan(values, repeats=repeats, random_state=random_state)
        estimates = estimates_at(values)
    except ValueError as error:  # fewer than 3 distinct rows, or repeats below 1
        raise StudyError(f"{name}: {error}") from None
    result = {
        **settings,
        "estimates": {str(fraction): value for fraction, value in estimates.items()},
        "scan": {
            "sizes": [int(size) for size in scan.sizes],
            "means": [float(mean) for mean in scan.means],
            "stds": [float(std) for std in scan.stds],
        },
        "suggested_code_size": int(suggest_code_size(scan)),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_fit(TwoNN(fraction=0.9).fit(values)).savefig(out_dir / f"{name}.id_fit.png", dpi=110)
    plot_scan(scan).savefig(out_dir / f"{name}.id_scan.png", dpi=110)
    (out_dir / f"{name}.id.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def finetune_on_labels(
    sessions: sessionmaker,
    image_store: Path,
    labels_dataset: str,
    *,
    subset: str | None = None,
    mode: str = "transfer",
    weights: str | Path = "imagenet",
    epochs: int = 5,
    image_size: int = 299,
    batch_size: int = 16,
    checkpoint: Path | None = None,
    random_state: int = 0,
):
    """Train Inception-V3 on the top categories of ``labels_dataset`` (thesis §3.1); return the model and its report.

    Every labelled image (of ``subset``, when given) is read from the flat
    store with its data bar cut away and resized once to ``image_size`` px
    square, so that a large set fits in memory, then handed to
    :func:`~semcurate.features.finetune.finetune` (stratified 80/10/10 split).

    Parameters
    ----------
    sessions : sessionmaker
        The database.
    image_store : Path
        Flat store holding ``<md5>.tif`` / ``<md5>.jpg``.
    labels_dataset : str
        Labelled dataset whose top categories are the classes.
    subset : str, optional
        Only labelled images of this subset.
    mode, weights, epochs, image_size, batch_size, random_state
        As in :func:`~semcurate.features.finetune.finetune`; ``image_size`` in px.
    checkpoint : Path, optional
        Save the trained model here (a ``.keras`` file; the name is checked before training).

    Returns
    -------
    model : keras.Model
        The trained classifier.
    report : FinetuneReport
        Split sizes, training history and test scores.

    Raises
    ------
    StudyError
        No matched labels, too few categories or images per category, or a checkpoint name not ending in ``.keras``.
    ExtractionError
        An unknown or empty subset.
    WeightsUnavailable
        The base weights cannot be loaded.
    """
    from PIL import Image as PILImage

    from semcurate.features.extract import image_tasks, load_specimen
    from semcurate.features.finetune import finetune, save_checkpoint

    if checkpoint is not None and Path(checkpoint).suffix != ".keras":
        raise StudyError(f"checkpoint path must end with .keras, got {Path(checkpoint).name}")
    categories = labelled_images(sessions, labels_dataset, subset)
    tasks = [task for task in image_tasks(sessions, image_store, subset) if task.md5 in categories]
    images = [
        np.asarray(
            PILImage.fromarray(load_specimen(task)).resize((image_size, image_size), PILImage.Resampling.BILINEAR)
        )
        for task in tasks
    ]
    try:
        model, report = finetune(
            images,
            [categories[task.md5] for task in tasks],
            mode=mode,
            weights=weights,
            epochs=epochs,
            image_size=image_size,
            batch_size=batch_size,
            random_state=random_state,
        )
    except ValueError as error:  # too few categories or images per category, an unknown mode, a side below 75 px
        raise StudyError(f"cannot fine-tune on {labels_dataset}: {error}") from None
    if checkpoint is not None:
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(model, checkpoint)
    return model, report
