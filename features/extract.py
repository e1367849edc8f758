"""Feature extraction shell: images from the store, data bar cropped, rows into the feature store.

* :func:`create_extractor` — the registry: ``classic`` (weight-free
  descriptor, :mod:`semcurate.features.classic`) and ``inception_v3``
  (:mod:`semcurate.features.inception`).  Each has a ``name``, an
  ``input_size`` and ``outputs`` (output name → dimension).
* :func:`extract` — resumable: only images that lack a row in one of the
  extractor's feature sets are processed, in batches appended to the HDF5
  store as they finish.  Decoding, cropping and resizing the next batch
  overlap with the model working on the current one (a prefetching thread),
  and the weight-free extractor spreads batches over worker processes.

Images are read from the flat store (``<md5>.tif``, else ``<md5>.jpg``) as
8-bit grey, and everything from the top of the data bar down is cut away
(the stripe box of the image's scale reading), so the bar's text never
becomes a feature.
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
from semcurate.ingest.images import decode_image
from semcurate.ingest.parallel import parallel_map


class ExtractionError(Exception):
    """A request that cannot be served (unknown extractor, empty subset, ...), in one line."""


class ClassicExtractor:
    """The weight-free descriptor as an extractor with one output, ``classic``."""

    name = "classic"
    weights_tag = weights_digest = "none"
    weights = "none"

    def __init__(self):
        from semcurate.features.classic import ClassicDescriptor

        self.descriptor = ClassicDescriptor()
        self.input_size = (self.descriptor.working_size, self.descriptor.working_size)
        self.outputs = {"classic": self.descriptor.dimension}

    def transform(self, grey_images: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {"classic": self.descriptor.transform(grey_images)}


def create_extractor(name: str, weights: str = "imagenet", random_state: int = 0):
    """An extractor by name; ``weights`` applies to CNN extractors (``imagenet``, ``none`` or a file)."""
    if name == "classic":
        return ClassicExtractor()
    if name == "inception_v3":
        from semcurate.features.inception import InceptionV3Extractor

        return InceptionV3Extractor(weights=weights, random_state=random_state)
    raise ExtractionError(f"unknown extractor {name!r}: choose one of {', '.join(EXTRACTORS)}")


def feature_set_name(extractor, output: str) -> str:
    """``classic`` for the descriptor, ``<extractor>.<weights tag>.<output>`` for CNNs."""
    return output if extractor.name == "classic" else f"{extractor.name}.{extractor.weights_tag}.{output}"


@dataclass(frozen=True)
class ImageTask:
    """Where an image's pixels are and how much of it is specimen (rows above the data bar)."""

    md5: str
    path: Path
    specimen_rows: int | None


def load_specimen(task: ImageTask) -> np.ndarray:
    """The image as 2-D uint8 grey with the data bar (and everything below its top) cut away."""
    grey = np.asarray(decode_image(task.path.read_bytes()).display.convert("L"))
    return grey[: task.specimen_rows] if task.specimen_rows else grey


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
def _process_extractor(name: str):
    return create_extractor(name)


def classic_batch(tasks: list[ImageTask]) -> tuple[list[str], dict[str, np.ndarray]]:
    """Worker: descriptor rows of one batch (the extractor is built once per process)."""
    return [task.md5 for task in tasks], _process_extractor("classic").transform([load_specimen(t) for t in tasks])


def extract(
    sessions: sessionmaker,
    store: Path,
    feature_store: FeatureStore,
    extractor,
    *,
    subset: str | None = None,
    batch_size: int = 32,
    workers: int = 1,
    reporter=None,
) -> dict:
    """Compute the missing rows of every output of ``extractor``; return names and row counts."""
    names = {output: feature_set_name(extractor, output) for output in extractor.outputs}
    tasks = image_tasks(sessions, Path(store), subset)
    done = set.intersection(*(set(feature_store.md5s(name)) for name in names.values()))
    todo = [task for task in tasks if task.md5 not in done]
    batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
    advance = reporter(f"extracting {extractor.name}", len(todo)) if reporter and todo else (lambda _n=1: None)
    if extractor.name == "classic":
        results = parallel_map(classic_batch, batches, workers)
    else:
        # Decoding, cropping, resizing and scaling run in the prefetch thread; only inference stays here.
        prepared = prefetched(
            ([task.md5 for task in batch], extractor.prepare([load_specimen(task) for task in batch]))
            for batch in batches
        )
        results = ((md5s, extractor.predict(inputs)) for md5s, inputs in prepared)
    for md5s, outputs in results:
        for output, values in outputs.items():
            feature_store.append(names[output], md5s, values)
        advance(len(md5s))
    _record(sessions, feature_store, extractor, names, subset, batch_size)
    return {"extracted": len(todo), "feature_sets": {name: len(feature_store.md5s(name)) for name in names.values()}}


def _record(sessions, feature_store: FeatureStore, extractor, names: dict, subset, batch_size) -> None:
    """Create or update the feature sets' metadata rows."""
    with sessions.begin() as session:
        for output, name in names.items():
            row = session.get(FeatureSet, name) or FeatureSet(name=name)
            row.extractor, row.weights, row.weights_digest = extractor.name, extractor.weights, extractor.weights_digest
            row.layer, row.dimension = output, extractor.outputs[output]
            row.n_rows, row.store_path = len(feature_store.md5s(name)), str(feature_store.path.resolve())
            row.parameters = json.dumps(
                {
                    "input_size": list(extractor.input_size),
                    "last_subset": subset,
                    "batch_size": batch_size,
                    "data_bar": "cropped at the stripe's top row",
                }
            )
            session.add(row)
