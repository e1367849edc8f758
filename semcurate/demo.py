"""The demo pipeline: every stage that exists, end to end, on a generated corpus.

``semcurate demo --out DIR`` (what ``make demo`` runs) lays out::

    DIR/corpus/new_dati_SEM/   the messy source tree   (semcurate demo-data)
    DIR/corpus/datasets/       SEM_Dataset, Hierarchical, Majority label folders
    DIR/corpus/ground_truth.csv
    DIR/store/                 the flat store           (semcurate ingest)
    DIR/semcurate.db           the database: files, images, labels (semcurate labels import),
                               scale readings (semcurate scale), the 1u-2u subset, feature sets
    DIR/features.h5            feature rows: the weight-free descriptor (features extract) and
                               its autoencoder codes (reduce, code size from the 2-NN ID)
    DIR/clusterings.h5         merge trees of the five thesis algorithms (semcurate cluster)
    DIR/results/               ID fit and scan plots, distance heatmaps, their numbers

The database also holds the sub-category tree (semcurate tree build), browsable
with ``semcurate tree show --db sqlite:///DIR/semcurate.db``.

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
    results.update(run_feature_stages(sessions, store, out, workers, reporter, say))
    results.update(run_clustering_stages(sessions, store, out, results["reduced_feature_set"], reporter, say))
    return results


def run_feature_stages(sessions, store: Path, out: Path, workers: int, reporter, say) -> dict:
    """Weight-free features, their intrinsic dimension, autoencoder codes and the distance study."""
    from semcurate.features.analysis import distance_study, id_study, reduce_feature_set
    from semcurate.features.extract import create_extractor, extract
    from semcurate.features.store import FeatureStore

    feature_store = FeatureStore(out / "features.h5")
    results = {"features": extract(sessions, store, feature_store, create_extractor("classic"), workers=workers,
                                   reporter=reporter)}
    say(f"features: classic descriptor for {results['features']['feature_sets']['classic']} images "
        f"({results['features']['extracted']} new) in {feature_store.path}")
    results["id"] = id_study(sessions, feature_store, "classic", out / "results" / "id")
    code_size = results["id"]["suggested_code_size"]
    say(f"intrinsic dimension of classic: {results['id']['estimates']['0.9']:.1f} (fit over 90 %), "
        f"code size {code_size}")
    reduced = f"classic.ae{code_size}"
    if reduced not in feature_store.names():
        results["reduce"] = reduce_feature_set(sessions, feature_store, "classic", "ae", code_size,
                                               out / "results" / "reduce", hidden=(128, 64), epochs=60,
                                               batch_size=64)
        say(f"reduce: {reduced}, reconstruction MSE {results['reduce']['reconstruction_mse']:.3f}")
    results["reduced_feature_set"] = reduced
    results["distances"] = distance_study(sessions, feature_store, ["classic", reduced], "SEM_Dataset",
                                          out / "results" / "distances", per_category=20)
    correlations = ", ".join(f"{name} {value:.2f}"
                             for name, value in results["distances"]["correlation_with_d_disc"].items())
    say(f"distances: correlation with the label distance: {correlations}")
    return results


#: The thesis' five algorithms (§4.1, §4.2), as `semcurate cluster --method` names them.
THESIS_METHODS = ("ward", "centroid", "complete", "single", "density-peaks")


def run_clustering_stages(sessions, store: Path, out: Path, feature_set: str, reporter, say) -> dict:
    """The five thesis algorithms on the reduced codes, then the sub-category tree (Ward, silhouette rule)."""
    from semcurate.clustering.runs import cluster_feature_set
    from semcurate.clustering.store import ClusterStore
    from semcurate.clustering.subcategories import build_tree
    from semcurate.db import Clustering, Tree
    from semcurate.features.store import FeatureStore

    feature_store, cluster_store = FeatureStore(out / "features.h5"), ClusterStore(out / "clusterings.h5")
    with sessions() as session:
        done = set(session.scalars(select(Clustering.method).where(Clustering.feature_set == feature_set)))
        tree_id = session.scalar(select(Tree.id).where(Tree.feature_set == feature_set, Tree.method == "ward"))
    results = {}
    for method in THESIS_METHODS:
        if method in done:
            say(f"cluster {method}: already stored for {feature_set}")
            continue
        summary = cluster_feature_set(sessions, feature_store, cluster_store, feature_set, method)
        results[f"cluster:{method}"] = summary
        say(f"cluster {method}: {summary['points']} images in {summary['seconds']:.2f} s "
            f"(clustering {summary['clustering_id']})")
    if tree_id is not None:
        say(f"tree: already built (tree {tree_id}); see `semcurate tree show --db sqlite:///{out / 'semcurate.db'}`")
        return results
    results["tree"] = build_tree(sessions, feature_store, store, feature_set, "ward", "SEM_Dataset", depth=2,
                                 min_size=5, reporter=reporter)
    accuracy = results["tree"]["classifier_heldout_accuracy"]
    say(f"tree {results['tree']['tree_id']}: {results['tree']['categories']} categories, "
        f"{results['tree']['nodes']} nodes; {results['tree']['classified']} unlabelled images placed by a classifier"
        f" ({accuracy if accuracy is None else f'{accuracy:.0%}'} held-out accuracy); "
        f"browse with `semcurate tree show --db sqlite:///{out / 'semcurate.db'}`")
    return results


def default_workers() -> int:
    """Worker processes to use by default: every core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
