"""The demo pipeline: every stage that exists, end to end, on a generated corpus.

``semcurate demo --out DIR`` (what ``make demo`` runs) lays out::

    DIR/corpus/new_dati_SEM/   the messy source tree   (semcurate demo-data)
    DIR/corpus/datasets/       SEM_Dataset, Hierarchical, Majority label folders
    DIR/corpus/ground_truth.csv
    DIR/store/                 the flat store           (semcurate ingest)
    DIR/semcurate.db           the database: files, images, labels (semcurate labels import),
                               scale readings (semcurate scale) and the 1u-2u subset

Each stage skips work already done, so a second run is fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from semcurate.db import LabelDataset, open_database
from semcurate.ingest.demo_corpus import GROUND_TRUTH_FILE, write_demo_corpus
from semcurate.ingest.ingestion import Ingestion
from semcurate.ingest.labels import import_labels
from semcurate.ingest.scales import create_subset, read_scales, validate
from semcurate.progress import from_running_total

#: The labelled-dataset folders the demo corpus carries, in import order.
DEMO_DATASETS = ("SEM_Dataset", "Hierarchical", "Majority")


def run_demo(
    out: Path,
    n_images: int,
    seed: int,
    workers: int,
    reporter: Callable[[str, int], Callable[[int], None]],
    say: Callable[[str], None],
) -> dict:
    """Run every stage on the demo corpus under ``out``; return each stage's summary."""
    out = Path(out).resolve()
    corpus, store = out / "corpus", out / "store"
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {}

    if (corpus / GROUND_TRUTH_FILE).exists():
        say(f"demo corpus: already at {corpus}")
    else:
        progress = from_running_total(reporter("drawing corpus", n_images), n_images)
        summary = write_demo_corpus(corpus, n_images, seed=seed, workers=workers, progress=progress)
        results["corpus"] = vars(summary)
        say(f"demo corpus: {summary.n_images} images in {summary.n_files} files at {corpus}")

    sessions = open_database(f"sqlite:///{out / 'semcurate.db'}")
    results["ingest"] = Ingestion(corpus / "new_dati_SEM", store, sessions, workers=workers, reporter=reporter).run()
    say(f"ingest: {results['ingest']['images_total']} images ({results['ingest']['images_new']} new) in {store}")

    with sessions() as session:
        imported = set(session.scalars(select(LabelDataset.name)))
    for name in DEMO_DATASETS:
        if name in imported:
            say(f"labels {name}: already imported")
            continue
        summary = import_labels(corpus / "datasets" / name, name, sessions, store, workers=workers, reporter=reporter)
        results[f"labels:{name}"] = summary
        say(f"labels {name}: {summary['n_matched']} of {summary['n_unique']} unique files matched, "
            f"{summary['n_conflicting']} conflicting")

    results["scale"] = read_scales(sessions, store, workers=workers, reporter=reporter)
    say(f"scale: read {results['scale']['read']} images now; by status {results['scale']['by_status']}")
    validation = validate(sessions, corpus / GROUND_TRUTH_FILE)
    results["scale_validation"] = validation
    shares = ", ".join(f"{name} {cell['percent']:.1f}%" for name, cell in validation["table"].items() if cell["images"])
    say(f"scale validated against the ground truth ({validation['total']} images): {shares}")
    results["subset"] = create_subset(sessions, "1u-2u", ["1 µm", "2 µm"], replace=True)
    say(f"subset 1u-2u: {results['subset']['size']} images at 1 µm or 2 µm")
    return results


def default_workers() -> int:
    """Worker processes to use by default: every core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
