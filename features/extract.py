"""Feature extraction shell: images from the store, data bar cropped, rows into the feature store.

* :func:`create_extractor` — the registry: ``classic`` (weight-free
  descriptor, :mod:`semcurate.features.classic`), ``classic_blobs`` (the same
  with its blob block: particle sizes and agglomeration; it fills ``classic``
  in the same pass), ``classic_particles`` (the blob descriptor with the
  particles' shapes; it fills ``classic_blobs``, ``classic`` and ``particle_facets``, the facet
  block), ``scattering`` (weight-free wavelet scattering, :mod:`semcurate.features.scattering`),
  ``scattering_centre`` (the same on each image's centre square only: half the cost on a 4 : 3 image) and
  ``inception_v3`` (:mod:`semcurate.features.inception`).  Each has a ``name``, an
  ``input_size`` and ``outputs`` (output name → dimension).
* :func:`extract` — resumable: only images that lack a row in one of the
  extractor's feature sets are processed, in batches appended to the HDF5
  store as they finish.  Decoding, cropping and resizing the next batch
  overlap with the model working on the current one (a prefetching thread),
  and the weight-free extractors spread batches over worker processes.
  One extraction writes a feature store at a time (its writer lock), and a
  set's database row gets its row count only when the run finished, so
  later stages never read an unfinished set.

Images are read from the flat store (``<md5>.tif``, else ``<md5>.jpg``) as
8-bit grey, and everything from the top of the data bar down is cut away
(the stripe box of the image's scale reading), so the bar's text never
becomes a feature.  An image without a scale reading keeps its bar, which
is why ``semcurate features extract`` refuses such images unless told
``--allow-uncropped`` (:func:`images_without_scale_reading`).  Every decode
is bounded by ``max_pixels``; an image that fails it, or does not decode,
is skipped and counted by reason.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from semcurate.db.models import FeatureSet, Image, ScaleReading, Subset, SubsetMember
from semcurate.features.methods import EXTRACTORS
from semcurate.features.store import FeatureStore
from semcurate.ingest.images import DEFAULT_MAX_PIXELS, ImageProblem, decode_image
from semcurate.ingest.parallel import parallel_map

#: The feature store file when neither the command line nor the database names one (in the working folder).
DEFAULT_FEATURE_STORE = Path("features.h5")


class ExtractionError(Exception):
    """A request that cannot be served (unknown extractor, empty subset, ...), in one line."""


#: The extractors that are the classic descriptor (plain, with its blob block, with its blob and particle blocks):
#: stateless, cheap to build, run in worker processes.
CLASSIC_EXTRACTORS = ("classic", "classic_blobs", "classic_particles")
#: The weight-free extractors, built once per worker process (the scattering transform's filter bank in about 6 s):
#: their batches run in ``workers`` local processes or on Dask workers.  A network runs in this process instead,
#: with the next batch decoded in a thread.
WORKER_EXTRACTORS = (*CLASSIC_EXTRACTORS, "scattering", "scattering_centre")


class ClassicExtractor:
    """The weight-free descriptor as an extractor: ``classic``, with one output of that name, ``classic_blobs``
    (``blobs=True``), whose outputs are ``classic_blobs`` (the descriptor with its blob block) and ``classic``, or
    ``classic_particles`` (``particles=True``), whose outputs are ``classic_particles`` (with the blob and particle
    blocks), ``classic_blobs``, ``classic`` and ``particle_facets`` (the facet block,
    :func:`~semcurate.features.particles.facet_statistics`; ``facets=False`` leaves it out, for rows that do not
    need it, at about 10 ms less per image).

    Each longer descriptor's first columns are the shorter ones', so one pass
    over the images fills every set: the demo splits one and places by the
    other, and computing the 160 columns twice would cost it a second pass.
    The facet block is the last columns of that pass, kept apart because
    ``tree build --category-block`` adds it to each category's rows after
    the projection instead of projecting it with the others.
    """

    weights_tag = weights_digest = "none"
    weights = "none"

    def __init__(self, *, blobs: bool = False, particles: bool = False, facets: bool = True):
        from semcurate.features.classic import ClassicDescriptor
        from semcurate.features.particles import FACET_FEATURE_NAMES

        facets = facets and particles
        self.descriptor = ClassicDescriptor(blobs=blobs, particles=particles, facets=facets)
        self.name = self.descriptor.name
        self.input_size = (self.descriptor.working_size, self.descriptor.working_size)
        end = self.descriptor.dimension - (len(FACET_FEATURE_NAMES) if facets else 0)
        self._columns = {self.name: slice(0, end)}
        if particles:
            self._columns["classic_blobs"] = slice(0, ClassicDescriptor(blobs=True).dimension)
        if blobs or particles:
            self._columns["classic"] = slice(0, ClassicDescriptor().dimension)
        if facets:
            self._columns["particle_facets"] = slice(end, self.descriptor.dimension)
        self.outputs = {output: columns.stop - columns.start for output, columns in self._columns.items()}

    def transform(self, grey_images: list[np.ndarray]) -> dict[str, np.ndarray]:
        rows = self.descriptor.transform(grey_images)
        return {output: rows[:, columns] for output, columns in self._columns.items()}


def create_extractor(name: str, weights: str = "imagenet", random_state: int = 0, *, facets: bool = True):
    """An extractor by name; ``weights`` applies to CNN extractors (``imagenet``, ``none`` or a file), ``facets``
    to ``classic_particles`` (False: without its facet block, :class:`ClassicExtractor`)."""
    if name in CLASSIC_EXTRACTORS:
        return ClassicExtractor(blobs=name == "classic_blobs", particles=name == "classic_particles", facets=facets)
    if name in ("scattering", "scattering_centre"):
        from semcurate.features.scattering import ScatteringExtractor

        return ScatteringExtractor(windowing="centre" if name == "scattering_centre" else "cover")
    if name == "inception_v3":
        from semcurate.features.inception import InceptionV3Extractor

        return InceptionV3Extractor(weights=weights, random_state=random_state)
    raise ExtractionError(f"unknown extractor {name!r}: choose one of {', '.join(EXTRACTORS)}")


def feature_set_name(extractor, output: str) -> str:
    """The output's name for weight-free extractors (``classic``, ``classic_blobs``, ``classic_particles``,
    ``scattering``, ``scattering_centre``), else
    ``<name>.<tag>.<output>``."""
    return output if extractor.weights_tag == "none" else f"{extractor.name}.{extractor.weights_tag}.{output}"


@dataclass(frozen=True)
class ImageTask:
    """Where an image's pixels are and how much of it is specimen (rows above the data bar)."""

    md5: str
    path: Path
    specimen_rows: int | None


def load_specimen(task: ImageTask, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image as 2-D uint8 grey with the data bar (and everything below its top) cut away.

    Decoding is bounded by ``max_pixels`` (the same decompression-bomb guard
    as ``ingest --max-pixels``); an image over it raises :class:`ImageProblem`.
    """
    grey = np.asarray(decode_image(task.path.read_bytes(), max_pixels).display.convert("L"))
    return grey[: task.specimen_rows] if task.specimen_rows else grey


def features_of_file(sessions: sessionmaker, name: str, path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The row feature set ``name`` would hold for an image file that is not in the database.

    The file is decoded as ingest decodes it, its data bar is found by the
    scale reader's stripe search and cut away as the extraction cuts a stored
    image's (an image without a stripe keeps every row), and the set's own
    extractor, with the weights it was extracted with, computes the row.
    This is how ``semcurate similar`` compares an image from outside the
    repository with the stored ones.

    Returns
    -------
    ndarray of shape (dimension,)
        The row, in the set's own (unstandardised) units.

    Raises
    ------
    ExtractionError
        The set is unknown or derived (autoencoder codes, PCA: their model is
        not kept, so only the set they were derived from can be computed), its
        weights changed since it was extracted, or the file does not decode.
    """
    from semcurate.ingest.databar_geometry import Stripe, find_stripe

    extractor, output = set_extractor(
        sessions, name, "compare an image from outside the repository in --feature-set {root}"
    )
    try:
        grey = load_specimen(ImageTask("", path, None), max_pixels)
    except ImageProblem as problem:
        raise ExtractionError(f"{path} is not an image semcurate reads ({problem.reason})") from None
    stripe = find_stripe(grey)
    specimen = grey[: stripe.box[1]] if isinstance(stripe, Stripe) and stripe.box[1] > 0 else grey
    return extractor.transform([specimen])[output][0]


def set_extractor(sessions: sessionmaker, name: str, use_root: str):
    """The extractor that computed feature set ``name``, with the weights it used, and the output that is ``name``.

    ``use_root`` completes the error for a derived set: what to do instead,
    ``{root}`` standing for the set it was derived from.

    Raises
    ------
    ExtractionError
        The set is unknown, derived (autoencoder codes, PCA: their model is
        not kept), its weights cannot be loaded any more, or they changed
        since it was extracted.
    """
    from semcurate.features.inception import WeightsUnavailable

    with sessions() as session:
        row = session.get(FeatureSet, name)
    if row is None:
        raise ExtractionError(f"no feature set {name!r}; see `semcurate features list`")
    if row.parent is not None:
        root = row.parent
        with sessions() as session:
            while (parent := session.scalar(select(FeatureSet.parent).where(FeatureSet.name == root))) is not None:
                root = parent
        raise ExtractionError(
            f"feature set {name} is derived from {root} and its model is not kept: {use_root.format(root=root)}"
        )
    try:
        extractor = create_extractor(row.extractor, weights=row.weights)
    except WeightsUnavailable as error:
        raise ExtractionError(f"the weights {name} was extracted with cannot be loaded: {error}") from None
    if extractor.weights_digest != row.weights_digest:
        raise ExtractionError(f"the weights of {name} changed since it was extracted: extract it again first")
    (output,) = [output for output in extractor.outputs if feature_set_name(extractor, output) == name]
    return extractor, output


def joined_parts(sessions: sessionmaker, name: str) -> list[str]:
    """The feature sets that ``name`` joins by ``+`` (``classic_particles+scattering``), or ``[name]`` for a set the
    database knows by that name: a projection of joined sets (``classic_particles+scattering.inv70``) is one set."""
    with sessions() as session:
        known = session.get(FeatureSet, name) is not None
    return [name] if known else name.split("+")


def variant_rows(
    sessions: sessionmaker,
    store: Path,
    name: str,
    md5s: list[str],
    *,
    random_state: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batch_size: int = 32,
    workers: int = 1,
) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """Rows of feature set ``name`` for one acquisition variant of each image ``md5s``.

    Each image is loaded as the extraction loads it (data bar cut away),
    shrunk to twice the side its descriptor works at
    (:func:`~semcurate.features.invariance.shrunk_for_variant`), re-acquired
    once by :func:`~semcurate.features.invariance.acquisition_variant` (its
    generator seeded by ``random_state`` and the image's md5, so a variant
    does not depend on which other images were drawn, nor on the batches),
    and described by the set's own extractor.  Images are loaded
    ``batch_size`` at a time; the weight-free extractors' batches run in
    ``workers`` local processes, as :func:`extract` runs them.

    A joined name, ``a+b`` (:func:`~semcurate.features.analysis.joined_rows`),
    describes the one variant of each image by each part's extractor (an
    extractor that made several parts runs once), the variant shrunk for the
    part that looks at the largest side, and puts the parts' columns side by
    side; with a network among the parts, every part runs in this process.

    Returns
    -------
    md5s : list of str
        The images that decoded, in the order given.
    rows : ndarray of shape (len(md5s), dimension)
        Their variants' rows, in the set's own units.
    skipped : dict
        Images that did not decode, counted by reason.

    Raises
    ------
    ExtractionError
        As :func:`set_extractor`, for any part.
    """
    parts = [set_extractor(sessions, part, "reduce {root} instead") for part in joined_parts(sessions, name)]
    order = {md5: index for index, md5 in enumerate(md5s)}
    tasks = sorted(
        (task for task in image_tasks(sessions, store, None) if task.md5 in order), key=lambda task: order[task.md5]
    )
    side = max(working_side(extractor) for extractor, _ in parts)
    jobs = [
        (tasks[start : start + batch_size], max_pixels, random_state, side)
        for start in range(0, len(tasks), batch_size)
    ]
    # each image is decoded and re-acquired once, and its variant described by every part's extractor
    extractors = {extractor.name: extractor for extractor, _ in parts}
    if set(extractors) <= set(WORKER_EXTRACTORS):
        # the facet block costs the particle descriptor about 10 ms per image; a projection of other sets skips it
        facets = any(output == "particle_facets" for _, output in parts)
        results: Iterable = parallel_map(
            worker_variant_batch, [(*job, tuple(extractors), facets) for job in jobs], workers
        )
    else:  # a network among the parts: every part in this process
        results = (
            (
                used,
                {name: extractor.transform(variants) for name, extractor in extractors.items()} if variants else {},
                skipped,
            )
            for used, variants, skipped in map(variant_batch, jobs)
        )
    used, rows, skipped = [], [], {}
    for batch_used, outputs, batch_skipped in results:
        used.extend(batch_used)
        if batch_used:
            rows.append(
                np.hstack(
                    [np.asarray(outputs[extractor.name][output], dtype=np.float64) for extractor, output in parts]
                )
            )
        for reason, count in batch_skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    dimension = sum(extractor.outputs[output] for extractor, output in parts)
    return used, (np.vstack(rows) if rows else np.empty((0, dimension))), skipped


def working_side(extractor) -> int:
    """Shorter side, in pixels, at which ``extractor`` looks at an image: the classic descriptor's
    ``working_size``, or the smaller side of a network's ``input_size``."""
    return getattr(extractor, "working_size", None) or min(extractor.input_size)


def variant_batch(job: tuple[list[ImageTask], int, int, int]) -> tuple[list[str], list[np.ndarray], dict[str, int]]:
    """One acquisition variant of each image of a batch ``(tasks, max_pixels, random_state, side)``, ``side``
    the extractor's :func:`working_side`.

    Returns the md5s that decoded, their variants (grey, uint8) and the
    skipped images by reason, as :func:`load_batch` does.
    """
    from semcurate.features.invariance import acquisition_variant, shrunk_for_variant

    tasks, max_pixels, random_state, side = job
    used, grey, skipped = load_batch(tasks, max_pixels)
    variants = [
        acquisition_variant(shrunk_for_variant(image, side), np.random.default_rng([random_state, int(md5[:16], 16)]))
        for md5, image in zip(used, grey, strict=True)
    ]
    return used, variants, skipped


def worker_variant_batch(
    job: tuple[list[ImageTask], int, int, int, tuple[str, ...], bool],
) -> tuple[list[str], dict[str, dict[str, np.ndarray]], dict[str, int]]:
    """Worker: the rows of :func:`variant_batch`'s variants ``job[:4]`` by each extractor named in ``job[4]``
    (of :data:`WORKER_EXTRACTORS`, each built once per process), as ``{extractor name: {output: rows}}``;
    ``job[5]`` False leaves the particle descriptor's facet block out."""
    used, variants, skipped = variant_batch(job[:4])
    if not variants:
        return used, {}, skipped
    return used, {name: _process_extractor(name, job[5]).transform(variants) for name in job[4]}, skipped


def load_batch(tasks: list[ImageTask], max_pixels: int) -> tuple[list[str], list[np.ndarray], dict[str, int]]:
    """The md5s and grey specimens of the tasks that decode within ``max_pixels``, and the others counted by reason.

    A bad image (over the pixel limit, undecodable, missing from the store) is
    skipped with its reason instead of stopping the extraction of the others.
    """
    md5s, grey, skipped = [], [], {}
    for task in tasks:
        try:
            grey.append(load_specimen(task, max_pixels))
        except ImageProblem as problem:
            reason = _reason(problem)
        except OSError as error:
            reason = error.strerror or type(error).__name__
        else:
            md5s.append(task.md5)
            continue
        skipped[reason] = skipped.get(reason, 0) + 1
    return md5s, grey, skipped


def _reason(problem: ImageProblem) -> str:
    """A problem's reason without the numbers of one image, so equal reasons count together."""
    return "over --max-pixels" if "Mpx exceeds" in problem.reason else f"{problem.status}: {problem.reason}"


def images_without_scale_reading(sessions: sessionmaker, subset: str | None = None) -> tuple[int, int]:
    """How many images (of ``subset``) have no scale reading yet, out of how many: their data bar cannot be cropped."""
    tasks_query = select(Image.md5, ScaleReading.image_md5).outerjoin(ScaleReading, ScaleReading.image_md5 == Image.md5)
    if subset is not None:
        tasks_query = tasks_query.join(SubsetMember, SubsetMember.image_md5 == Image.md5).where(
            SubsetMember.subset == subset
        )
    with sessions() as session:
        rows = session.execute(tasks_query).all()
    return sum(1 for _, reading in rows if reading is None), len(rows)


def image_tasks(sessions: sessionmaker, store: Path, subset: str | None) -> list[ImageTask]:
    """Every image (or every member of ``subset``), with its stripe top when a reading found one."""
    with sessions() as session:
        query = select(Image.md5, Image.jpg_only, ScaleReading.stripe_y0).outerjoin(
            ScaleReading, ScaleReading.image_md5 == Image.md5
        )
        if subset is not None:
            if session.get(Subset, subset) is None:
                raise ExtractionError(f"no subset {subset!r}: see `semcurate subset list`")
            query = query.join(SubsetMember, SubsetMember.image_md5 == Image.md5).where(SubsetMember.subset == subset)
        rows = session.execute(query.order_by(Image.md5)).all()
    if not rows:
        raise ExtractionError(f"no images in {'subset ' + repr(subset) if subset else 'the database'}")
    return [ImageTask(md5, store / f"{md5}.{'jpg' if jpg_only else 'tif'}", y0) for md5, jpg_only, y0 in rows]


def prefetched(batches: Iterable, depth: int = 2) -> Iterator:
    """Iterate ``batches`` while a background thread prepares up to ``depth`` of the next ones."""
    pending: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for batch in batches:
                pending.put(batch)
        except Exception as error:  # handed to the consumer, which re-raises it
            pending.put(error)
        pending.put(done)

    threading.Thread(target=produce, daemon=True).start()
    while (item := pending.get()) is not done:
        if isinstance(item, Exception):
            raise item
        yield item


@cache
def _process_extractor(name: str, facets: bool = True):
    """The worker process' extractor ``name`` (:func:`create_extractor`, ``facets`` as there), built once."""
    return create_extractor(name, facets=facets)


def worker_batch(job: tuple[list[ImageTask], int, str]) -> tuple[list[str], dict[str, np.ndarray], dict[str, int]]:
    """Worker: feature rows of one batch ``(tasks, max_pixels, extractor name)`` and its skipped images by reason.

    The extractor (one of :data:`WORKER_EXTRACTORS`) is built once per process.
    """
    tasks, max_pixels, name = job
    md5s, grey, skipped = load_batch(tasks, max_pixels)
    return md5s, (_process_extractor(name).transform(grey) if grey else {}), skipped


def cnn_batch(extractor, tasks: list[ImageTask], max_pixels: int) -> tuple[list[str], np.ndarray | None, dict]:
    """Prefetch thread: a batch decoded, cropped and prepared for ``extractor`` (``None`` when none decoded)."""
    md5s, grey, skipped = load_batch(tasks, max_pixels)
    return md5s, (extractor.prepare(grey) if grey else None), skipped


def extract(
    sessions: sessionmaker,
    store: Path,
    feature_store: FeatureStore,
    extractor,
    *,
    subset: str | None = None,
    batch_size: int = 32,
    workers: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    reporter=None,
    scheduler: str | None = None,
) -> dict:
    """Compute the missing rows of every output of ``extractor``; return names, row counts and skipped images.

    An image is described when one of the outputs lacks its row; an output
    that already holds it keeps its row (:meth:`FeatureStore.append`).

    One extraction at a time writes a feature store (its writer lock, see
    :meth:`FeatureStore.writing`).  ``feature_store`` without a path means the
    file the database records for these sets, else ``features.h5``; another
    path extracts the sets anew into that file (``moved_from`` names the old one).  The sets' database rows are
    created first with their earlier row count (0 for a new set) and that
    count is raised only when the run finishes, so later stages never see the
    rows of an unfinished run (:func:`semcurate.features.analysis.feature_rows`).
    Images that do not decode within ``max_pixels`` are skipped and counted by
    reason under ``skipped``.  The weight-free extractors
    (:data:`WORKER_EXTRACTORS`) run in ``workers`` local processes, or on
    the Dask workers of ``scheduler``
    (:func:`~semcurate.ingest.parallel.parallel_map`); only this process
    writes the feature store.
    """
    names = {output: feature_set_name(extractor, output) for output in extractor.outputs}
    feature_store, moved_from = _bound(sessions, feature_store, list(names.values()))
    tasks = image_tasks(sessions, Path(store), subset)
    with feature_store.writing():
        _record(sessions, feature_store, extractor, names, subset, batch_size, finished=False)
        done = set.intersection(*(set(feature_store.md5s(name)) for name in names.values()))
        todo, skipped = [task for task in tasks if task.md5 not in done], {}
        batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
        advance = reporter(f"extracting {extractor.name}", len(todo)) if reporter and todo else (lambda _n=1: None)
        if extractor.name in WORKER_EXTRACTORS:
            jobs = [(batch, max_pixels, extractor.name) for batch in batches]
            results = parallel_map(worker_batch, jobs, workers, scheduler=scheduler)
        else:
            # Decoding, cropping, resizing and scaling run in the prefetch thread; only inference stays here.
            prepared = prefetched(cnn_batch(extractor, batch, max_pixels) for batch in batches)
            results = (
                (md5s, extractor.predict(inputs) if inputs is not None else {}, batch_skipped)
                for md5s, inputs, batch_skipped in prepared
            )
        for md5s, outputs, batch_skipped in results:
            for output, values in outputs.items():
                feature_store.append(names[output], md5s, values)  # skips the md5s the set already holds
            for reason, count in batch_skipped.items():
                skipped[reason] = skipped.get(reason, 0) + count
            advance(len(md5s) + sum(batch_skipped.values()))
        _record(sessions, feature_store, extractor, names, subset, batch_size, finished=True)
    return {
        "extracted": len(todo) - sum(skipped.values()),
        "skipped": skipped,
        "feature_store": str(feature_store.path),
        "moved_from": moved_from,
        "feature_sets": {name: len(feature_store.md5s(name)) for name in names.values()},
    }


def _bound(sessions: sessionmaker, feature_store: FeatureStore, names: list[str]) -> tuple[FeatureStore, str | None]:
    """``feature_store``, or the file recorded for ``names`` (else ``features.h5``) when it has no path; and the
    file the sets had finished rows in when that is another one (they are then extracted anew into this one)."""
    with sessions() as session:
        recorded = {
            Path(row.store_path): row.n_rows
            for row in session.scalars(select(FeatureSet).where(FeatureSet.name.in_(names)))
        }
    if feature_store.path is None:
        return FeatureStore(next(iter(recorded)) if recorded else DEFAULT_FEATURE_STORE), None
    for path, finished_rows in recorded.items():
        if finished_rows and path.resolve() != feature_store.path.resolve():
            return feature_store, str(path)
    return feature_store, None


def _record(
    sessions, feature_store: FeatureStore, extractor, names: dict, subset, batch_size, *, finished: bool
) -> None:
    """Create or update the feature sets' metadata rows; their row count is raised only when ``finished``."""
    with sessions.begin() as session:
        for output, name in names.items():
            row = session.get(FeatureSet, name) or FeatureSet(name=name, n_rows=0)
            row.extractor, row.weights, row.weights_digest = extractor.name, extractor.weights, extractor.weights_digest
            row.layer, row.dimension = output, extractor.outputs[output]
            if finished:
                row.n_rows = len(feature_store.md5s(name))
            elif row.store_path != str(feature_store.path.resolve()):
                row.n_rows = 0  # extracted anew into another file: nothing finished there yet
            row.store_path = str(feature_store.path.resolve())
            row.parameters = json.dumps(
                {
                    "input_size": list(extractor.input_size),
                    "last_subset": subset,
                    "batch_size": batch_size,
                    "data_bar": "cropped at the stripe's top row",
                }
            )
            session.add(row)
