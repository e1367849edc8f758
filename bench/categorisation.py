"""Categorisation from few labels: category placement and the sub-category tree, on two generators of textures.

Targets (issue 13), with labels on 15 % of the images, over all images (labelled
and placed):

* category placement accuracy of the unlabelled images ≥ 0.95;
* tree leaves against the true sub-categories: NMI ≥ 0.90 overall and
  ≥ 0.80 within every category of several sub-categories, with the number of leaves within ±20 % of
  the true number of sub-categories.

What runs is the tree's own core, exactly as ``semcurate tree build`` calls it
(:func:`semcurate.clustering.tree_building.build_tree` is its shell): the
feature rows of an extractor, standardised
(:func:`semcurate.features.preprocessing.preprocess`), a 15 % stratified
labelled sample, :func:`semcurate.clustering.placement.place_unlabelled` for
the rest, then :func:`semcurate.clustering.splitting.split` (Ward, gap rule)
per category over its labelled and placed images.  The truth is the
generators' own: the demo corpus' specimens
(:func:`semcurate.datasets.specimens.draw_specimen`, 36 sub-categories of 10
categories) and, when it exists, the independent texture generator
:func:`semcurate.datasets.textures.make_textures`.

``--extractor a+b`` concatenates two extractors' columns (measurement only;
the tree's default extractor is not changed here); ``--extractor classic.ae``
clusters the codes of a tied autoencoder trained on the standardised
``classic`` rows, its code size the 2-NN intrinsic dimension's suggestion, as
``semcurate id`` and ``reduce`` give them (:func:`autoencoder_codes`); ``--extractor classic.inv`` clusters
the acquisition-invariant projection of ``reduce --method invariant``, unstandardised
(:func:`invariant_codes`), and ``--extractor "(classic_blobs+scattering).inv"`` the projection of both
extractors' columns together, fitted once over them; ``--place-with classic`` places by the standardised
descriptor whatever is split.
``--semi-supervised-study
0 1 2`` also asks whether semi-supervised placement beats the supervised
placer: on each stratified 15 % draw, label spreading (kNN graph over all
standardised rows, grid :data:`SPREADING_GRID`) and self-training around the
logistic regression (:data:`SELF_TRAINING_GRID`), each tuned by the balanced
accuracy on hidden folds of the labelled rows, are scored on the unlabelled
rows against the truth, next to :class:`CategoryPlacer`; the table goes under
``semi_supervised_study``.

``--split-method louvain`` splits as ``tree build --method louvain`` does
(Louvain communities kept where the Gaussian null holds) instead of Ward with
the gap rule; ``--min-silhouette`` sets the tree's silhouette floor as
``tree build --min-silhouette`` does.

``--category-block particle_facets`` appends that set's columns to each category's rows before it is split, as
``tree build --category-block`` does (``--category-block-weight`` as its weight).

``--seed 0 1 2`` draws the corpora anew from each seed (new images of both
generators) and judges every target on every (corpus seed, labelled draw)
pair (:func:`over_corpus_seeds`): one corpus draw decides the worst-category
and leaf-count verdicts.

``--cache DIR`` keeps each corpus draw's extracted rows in ``DIR`` (one file per generator, corpus seed, images per
sub-category and side) and reads them back on the next run while the code that draws and describes the images and
every installed library's version are the same (:func:`code_fingerprint`); the split and the placement always run
afresh. Extraction is most of a run (about 3 minutes of each corpus seed's 4), so a new split setting is judged on
nine corpus seeds in minutes instead of an hour.

Writes ``bench/results/categorisation.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import platform
import tempfile
import time
import warnings
import zipfile
from collections import Counter
from itertools import chain
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, normalized_mutual_info_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # ships no type information

from semcurate.clustering.placement import SUPERVISED, CategoryPlacer, place_unlabelled
from semcurate.clustering.splitting import (
    CATEGORY_BLOCK_WEIGHT,
    MIN_SILHOUETTE,
    SAMPLE_ROWS,
    community_weighted,
    split,
    with_category_block,
)
from semcurate.datasets.specimens import draw_specimen
from semcurate.datasets.taxonomy import leaf_paths
from semcurate.features.extract import create_extractor, feature_set_name, working_side
from semcurate.features.methods import VARIANT_IMAGES
from semcurate.features.preprocessing import preprocess

HERE = Path(__file__).resolve().parent
#: Targets of issue 13.
PLACEMENT_TARGET = 0.95
LEAF_NMI_TARGET = 0.90
CATEGORY_NMI_TARGET = 0.80
LEAF_COUNT_TOLERANCE = 0.20
#: Share of images whose category label the tree is given.
LABELLED_SHARE = 0.15
#: Label spreading's grid in the semi-supervised study: (neighbours of the kNN graph, clamping alpha).
SPREADING_GRID = tuple((neighbours, alpha) for neighbours in (5, 10, 20) for alpha in (0.2, 0.5, 0.8, 0.95, 0.99))
#: Self-training's grid: the probability above which a placed row joins the training rows.
SELF_TRAINING_GRID = (0.8, 0.95, 0.99)


def demo_specimens(per_leaf: int, size: int, seed: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """``per_leaf`` specimens of each of the demo's 36 leaves, ``size`` px square: images, categories, leaves."""
    rng = np.random.default_rng(seed)
    images, categories, leaves = [], [], []
    for leaf in leaf_paths():
        for _ in range(per_leaf):
            images.append(np.asarray(draw_specimen(leaf, rng, size, size), np.uint8))
            categories.append(leaf.split("/")[0])
            leaves.append(leaf)
    return images, np.array(categories), np.array(leaves)


def other_textures(per_leaf: int, size: int, seed: int):
    """The independent generator's textures, or None when ``semcurate.datasets.textures`` is not there."""
    if importlib.util.find_spec("semcurate.datasets.textures") is None:
        return None
    from semcurate.datasets.textures import make_textures

    images, categories, leaves = make_textures(per_leaf, np.random.default_rng(seed), size)
    return list(images), np.asarray(categories), np.asarray(leaves)


def both_corpora(per_leaf: int, size: int, seed: int) -> dict:
    """``{name: (images, categories, leaves)}``: the demo's specimens, and the independent textures when they exist."""
    corpora = {"demo specimens": demo_specimens(per_leaf, size, seed)}
    textures = other_textures(per_leaf, size, seed)
    if textures is not None:
        corpora["independent textures"] = textures
    return corpora


def stratified_labelled(categories: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A boolean mask labelling ``share`` of each category's images (at least 2 per category), chosen at random."""
    rng = np.random.default_rng(seed)
    labelled = np.zeros(len(categories), dtype=bool)
    for category in np.unique(categories):
        rows = np.flatnonzero(categories == category)
        count = max(2, round(share * len(rows)))
        labelled[rng.choice(rows, count, replace=False)] = True
    return labelled


def category_leaves(
    values: np.ndarray,
    seed: int,
    method: str = "ward",
    sample_size: int = SAMPLE_ROWS,
    min_silhouette: float = MIN_SILHOUETTE,
) -> np.ndarray:
    """Each row's leaf number in the tree ``tree build --method METHOD --sample-size SAMPLE_SIZE --min-silhouette
    MIN_SILHOUETTE`` splits one category's rows into (the gap rule for Ward, Louvain's own rule for ``louvain``;
    depth 4)."""
    leaf_of = np.empty(len(values), dtype=int)
    tree = split(
        values,
        method,
        depth=4,
        rule="gap",
        sample_size=sample_size,
        min_silhouette=min_silhouette,
        random_state=seed,
    )
    for number, branch in enumerate(branch for _path, branch in tree.walk() if not branch.children):
        leaf_of[branch.members] = number
    return leaf_of


def tree_leaves(
    values: np.ndarray,
    assigned: np.ndarray,
    seed: int,
    method: str = "ward",
    sample_size: int = SAMPLE_ROWS,
    min_silhouette: float = MIN_SILHOUETTE,
    block: np.ndarray | None = None,
    block_weight: float = CATEGORY_BLOCK_WEIGHT,
    community_weights: bool = False,
) -> np.ndarray:
    """Each row's leaf (``category/number``) in the trees split per ``assigned`` category (:func:`category_leaves`),
    with ``block``'s columns appended to each category's rows as ``tree build --category-block`` appends them
    (:func:`~semcurate.clustering.splitting.with_category_block`), and with ``community_weights`` each category's
    columns weighted as ``tree build --community-weights`` weighs them
    (:func:`~semcurate.clustering.splitting.community_weighted` on ``sample_size`` rows, seeded by ``seed``)."""
    leaf_of = np.empty(len(values), dtype=object)
    for category in np.unique(assigned):
        rows = np.flatnonzero(assigned == category)
        split_values = values[rows] if block is None else with_category_block(values[rows], block[rows], block_weight)
        if community_weights:
            split_values = community_weighted(split_values, sample_size=sample_size, random_state=seed)
        numbers = category_leaves(split_values, seed, method, sample_size, min_silhouette)
        leaf_of[rows] = [f"{category}/{number}" for number in numbers]
    return leaf_of.astype(str)


def tree_scores(leaf_of: np.ndarray, categories: np.ndarray, leaves: np.ndarray) -> dict:
    """NMI of the tree's leaves against the true sub-categories, overall and within each true category.

    Within a category: its images' true sub-categories against the leaves they
    ended in, wherever placement put them (a misplaced image sits in another
    category's leaf and costs this category).  A category of one true
    sub-category has no NMI (its entropy is 0; any split scores 0, none 1):
    its ``largest_leaf_share``, the share of its images in the leaf holding
    most of them, says how whole it stayed.
    """
    per_category = {}
    for category in np.unique(categories):
        rows = categories == category
        true_here = len(set(leaves[rows]))
        _leaf, most = Counter(leaf_of[rows]).most_common(1)[0]
        per_category[str(category)] = {
            "images": int(rows.sum()),
            "true_subcategories": true_here,
            "leaves_reached": len(set(leaf_of[rows])),
            "largest_leaf_share": round(most / rows.sum(), 3),
            "nmi": round(float(normalized_mutual_info_score(leaves[rows], leaf_of[rows])), 3)
            if true_here > 1
            else None,
        }
    true_count, leaf_count = len(set(leaves)), len(set(leaf_of))
    overall = float(normalized_mutual_info_score(leaves, leaf_of))
    worst = min(cell["nmi"] for cell in per_category.values() if cell["nmi"] is not None)
    return {
        "leaf_nmi": round(overall, 3),
        "worst_category_nmi": worst,
        "leaves": leaf_count,
        "true_subcategories": true_count,
        "leaf_count_error": round(leaf_count / true_count - 1, 3),
        "per_category": per_category,
    }


def categorise(
    values: np.ndarray,
    categories: np.ndarray,
    leaves: np.ndarray,
    seed: int,
    placing: np.ndarray | None = None,
    method: str = "ward",
    sample_size: int = SAMPLE_ROWS,
    min_silhouette: float = MIN_SILHOUETTE,
    block: np.ndarray | None = None,
    block_weight: float = CATEGORY_BLOCK_WEIGHT,
    community_weights: bool = False,
) -> dict:
    """Place, split, score: the numbers of one corpus and one feature matrix (see the module docstring).

    ``seed`` draws the labelled 15 % and seeds the placer.

    ``placing``, when given, are the rows the supervised classifiers place
    the unlabelled images by (``tree build --place-with``); label spreading's
    graph and the split use ``values``.
    ``with_true_categories`` is the tree split over the true categories, the
    placement taken out: what the splitting alone reaches. ``method`` is the
    tree's clustering method (``tree build --method``), ``sample_size`` its ``--sample-size``,
    ``min_silhouette`` its ``--min-silhouette``, ``block`` the rows of its ``--category-block`` and
    ``block_weight`` its ``--category-block-weight``, ``community_weights`` its ``--community-weights``.
    """
    labelled = stratified_labelled(categories, LABELLED_SHARE, seed)
    graph = {} if placing is None else {"graph_labelled": values[labelled], "graph_unlabelled": values[~labelled]}
    placing = values if placing is None else placing
    started = time.perf_counter()
    placement = place_unlabelled(
        placing[labelled], list(categories[labelled]), placing[~labelled], random_state=seed, **graph
    )
    placement_s = time.perf_counter() - started
    assigned = categories.copy()
    assigned[~labelled] = placement.categories
    placed_right = np.array(placement.categories) == categories[~labelled]
    started = time.perf_counter()
    splitting = (seed, method, sample_size, min_silhouette, block, block_weight, community_weights)
    scores = tree_scores(tree_leaves(values, assigned, *splitting), categories, leaves)
    split_s = time.perf_counter() - started
    oracle = tree_scores(tree_leaves(values, categories, *splitting), categories, leaves)
    return {
        "images": len(values),
        "labelled": int(labelled.sum()),
        "placement_accuracy": round(float(placed_right.mean()), 3),
        "classifier": placement.report.get("classifier"),
        "doubtful": int(placement.doubtful.sum()),
        **scores,
        "with_true_categories": {key: oracle[key] for key in ("leaf_nmi", "worst_category_nmi", "leaves")},
        "placement_s": round(placement_s, 1),
        "split_s": round(split_s, 1),
        "targets_met": {
            "placement": bool(placed_right.mean() >= PLACEMENT_TARGET),
            "leaf_nmi": scores["leaf_nmi"] >= LEAF_NMI_TARGET,
            "category_nmi": scores["worst_category_nmi"] >= CATEGORY_NMI_TARGET,
            "leaf_count": abs(scores["leaf_count_error"]) <= LEAF_COUNT_TOLERANCE,
        },
    }


#: The figures of :func:`categorise` that ``--draws`` lists per labelled draw and summarises.
DRAW_KEYS = ("placement_accuracy", "leaf_nmi", "worst_category_nmi", "leaves")


def draw_summary(draws: list[int], results: list[dict]) -> dict:
    """Per figure of :data:`DRAW_KEYS`: its value on each labelled draw, in the order of ``draws``, and the
    smallest, mean and largest; with the classifier each draw's placer chose."""
    summary: dict = {"seeds": draws, "classifier": [result["classifier"] for result in results]}
    for key in DRAW_KEYS:
        values = [result[key] for result in results]
        summary[key] = {
            "each": values,
            "min": min(values),
            "mean": round(float(np.mean(values)), 3),
            "max": max(values),
        }
    return summary


def over_corpus_seeds(rows: list[dict]) -> list[dict]:
    """Per corpus, extractor, block weight and community weighting, over every corpus seed and labelled draw of
    ``rows``: each figure of :data:`DRAW_KEYS` (a list per corpus seed, one value per draw) with its smallest, mean
    and largest, and on how many of the (corpus seed, draw) pairs each target is met.

    Why: a corpus seed draws new images, and one draw decides the worst-category and leaf-count verdicts (the
    minimum of five to seven NMIs over about a hundred images each); the labelled draws alone do not show that.
    """
    groups: dict[tuple[str, str, float | None, bool], list[dict]] = {}
    for row in rows:
        setting = (row.get("category_block_weight"), row.get("community_weights", False))
        groups.setdefault((row["corpus"], row["extractor"], *setting), []).append(row)
    summaries = []
    for (corpus, extractor, block_weight, weighted), group in groups.items():
        summary: dict = {
            "corpus": corpus,
            "extractor": extractor,
            "category_block_weight": block_weight,
            "community_weights": weighted,
            "corpus_seeds": [row["corpus_seed"] for row in group],
        }
        for key in DRAW_KEYS:
            each = [row["draws"][key]["each"] for row in group]
            flat = list(chain.from_iterable(each))
            summary[key] = {"each": each, "min": min(flat), "mean": round(float(np.mean(flat)), 3), "max": max(flat)}
        met = {
            "placement": [
                value >= PLACEMENT_TARGET for value in chain.from_iterable(summary["placement_accuracy"]["each"])
            ],
            "leaf_nmi": [value >= LEAF_NMI_TARGET for value in chain.from_iterable(summary["leaf_nmi"]["each"])],
            "category_nmi": [
                value >= CATEGORY_NMI_TARGET for value in chain.from_iterable(summary["worst_category_nmi"]["each"])
            ],
            "leaf_count": [
                abs(count / row["true_subcategories"] - 1) <= LEAF_COUNT_TOLERANCE
                for row in group
                for count in row["draws"]["leaves"]["each"]
            ],
        }
        summary["targets_met"] = {target: f"{sum(flags)} of {len(flags)}" for target, flags in met.items()}
        summaries.append(summary)
    return summaries


def transductive_labels(model, values: np.ndarray, known: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Category code of every row from a semi-supervised fit on all rows, the codes of rows ``known`` given."""
    partial = np.full(len(values), -1)
    partial[known] = codes[known]
    model.fit(values, partial)
    return model.transduction_ if hasattr(model, "transduction_") else model.predict(values)


def transductive_cv(make_model, values: np.ndarray, codes: np.ndarray, labelled: np.ndarray, seed: int) -> float:
    """Balanced accuracy on hidden folds of the labelled rows, each fit seeing every row but the fold's labels.

    The folds are :class:`CategoryPlacer`'s (stratified 5-fold, shuffled with
    ``seed``), so the score compares with its ``cv_results_``; no unlabelled
    row's truth is used.
    """
    folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(labelled, codes[labelled])
    truth, predicted = [], []
    for train, test in folds:
        labels = transductive_labels(make_model(), values, labelled[train], codes)
        truth.append(codes[labelled[test]])
        predicted.append(labels[labelled[test]])
    with warnings.catch_warnings():  # a fold may hide no row of a category the fit still predicts
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true", UserWarning)
        return float(balanced_accuracy_score(np.concatenate(truth), np.concatenate(predicted)))


def semi_supervised_study(values: np.ndarray, categories: np.ndarray, draw: int) -> dict:
    """Placement accuracy of the unlabelled rows for the supervised placer, label spreading and self-training.

    The supervised placer is :class:`CategoryPlacer` comparing its supervised
    classifiers only (:data:`~semcurate.clustering.placement.SUPERVISED`),
    as it did before it compared label spreading too.  On these
    standardised descriptor rows spreading did not win every draw; on the
    acquisition-invariant projection it does (see :class:`CategoryPlacer`).

    One stratified 15 % draw (seed ``draw``). Label spreading (kNN graph on the
    standardised rows) and self-training (around the placer's logistic
    regression) each take the member of their grid with the best
    :func:`transductive_cv`; ``cv_selected`` is the candidate a placer
    choosing among all three by that score would have shipped. ``best_in_grid``
    is the best unlabelled accuracy of any grid member: an oracle, for scale only.
    """
    codes = np.unique(categories, return_inverse=True)[1]
    labelled = np.flatnonzero(stratified_labelled(categories, LABELLED_SHARE, draw))
    unlabelled = np.setdiff1d(np.arange(len(values)), labelled)
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        placer = CategoryPlacer(classifiers=SUPERVISED, random_state=draw).fit(values[labelled], codes[labelled])
        rows: dict = {
            "supervised": {
                "choice": placer.classifier_,
                "cv": max(result["balanced_accuracy"] for result in placer.cv_results_),
                "unlabelled": float(np.mean(placer.predict(values[unlabelled]) == codes[unlabelled])),
            }
        }
        grids = {
            "label_spreading": {
                f"knn{neighbours}_alpha{alpha}": lambda neighbours=neighbours, alpha=alpha: LabelSpreading(
                    kernel="knn", n_neighbors=neighbours, alpha=alpha, max_iter=1000
                )
                for neighbours, alpha in SPREADING_GRID
            },
            "self_training": {
                f"threshold{threshold}": lambda threshold=threshold: SelfTrainingClassifier(
                    make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), threshold=threshold
                )
                for threshold in SELF_TRAINING_GRID
            },
        }
        for method, grid in grids.items():
            scored = {
                name: (
                    transductive_cv(make_model, values, codes, labelled, draw),
                    float(
                        np.mean(
                            transductive_labels(make_model(), values, labelled, codes)[unlabelled] == codes[unlabelled]
                        )
                    ),
                )
                for name, make_model in grid.items()
            }
            choice = max(scored, key=lambda name: scored[name][0])
            rows[method] = {
                "choice": choice,
                "cv": scored[choice][0],
                "unlabelled": scored[choice][1],
                "best_in_grid": max(unlabelled_accuracy for _cv, unlabelled_accuracy in scored.values()),
            }
    selected = max(rows, key=lambda method: rows[method]["cv"])
    rounded = {
        method: {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()} for method, row in rows.items()
    }
    return {
        "draw": draw,
        "labelled": len(labelled),
        **rounded,
        "cv_selected": {"method": selected, "unlabelled": round(rows[selected]["unlabelled"], 3)},
        "seconds": round(time.perf_counter() - started, 1),
    }


def study_summary(rows: list[dict]) -> dict:
    """Mean and minimum unlabelled accuracy per corpus × features × candidate over the draws, and the verdict.

    A semi-supervised candidate wins only if it beats the supervised placer on
    every draw of every corpus (per feature set).
    """
    summary: dict = {}
    for row in rows:
        cell = summary.setdefault(f"{row['corpus']} | {row['features']}", {})
        for method in ("supervised", "label_spreading", "self_training", "cv_selected"):
            cell.setdefault(method, []).append(row[method]["unlabelled"])
    verdict = {}
    for features in sorted({row["features"] for row in rows}):
        of_features = [row for row in rows if row["features"] == features]
        verdict[features] = {
            method: all(row[method]["unlabelled"] > row["supervised"]["unlabelled"] for row in of_features)
            for method in ("label_spreading", "self_training")
        }
    return {
        "accuracy": {
            key: {method: {"mean": round(float(np.mean(v)), 3), "min": min(v)} for method, v in cell.items()}
            for key, cell in summary.items()
        },
        "wins_on_every_draw_of_both_corpora": verdict,
    }


#: Epochs and batch size of the autoencoder behind an ``.ae`` extractor name, as ``semcurate demo`` trains it.
AUTOENCODER_EPOCHS, AUTOENCODER_BATCH = 30, 64


def autoencoder_codes(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """Codes of a tied autoencoder trained on the standardised ``values``: hidden layers of 400 and 100 units,
    the code size :func:`~semcurate.features.intrinsic_dimension.suggest_code_size` gives for the rows' 2-NN
    intrinsic dimension, :data:`AUTOENCODER_EPOCHS` epochs of global training. ``semcurate demo`` also picks the
    hidden sizes by a grid search; this does not, so its codes are one of the grid's candidates."""
    from semcurate.features.autoencoder import TiedAutoencoder
    from semcurate.features.intrinsic_dimension import id_scan, suggest_code_size

    rows = preprocess(values, "standard")
    code_size = suggest_code_size(id_scan(rows, random_state=seed))
    autoencoder = TiedAutoencoder(
        n_hidden=(400, 100, code_size),
        phases=(("g", AUTOENCODER_EPOCHS),),
        batch_size=AUTOENCODER_BATCH,
        random_state=seed,
    )
    return autoencoder.fit(rows).transform(rows)


def variant_side(name: str) -> int:
    """Side in pixels the variants of extractor ``name`` are drawn at (``a+b``: the largest side either looks at,
    each shrinking the variant further as it shrinks an image). At the default ``--size`` of 256 classic shrinks
    nothing."""
    return max(working_side(create_extractor(part)) for part in name.split("+"))


def invariant_codes(name: str, values: np.ndarray, images: list[np.ndarray], seed: int = 0) -> np.ndarray:
    """Codes of :class:`~semcurate.features.invariance.NuisanceProjection` (code size ``"auto"``) fitted on
    ``values`` and on one :func:`~semcurate.features.invariance.acquisition_variant` of each of
    :data:`~semcurate.features.methods.VARIANT_IMAGES` images drawn at random, described by extractor ``name``:
    what ``semcurate reduce --method invariant`` stores, without the database."""
    from semcurate.features.invariance import NuisanceProjection, acquisition_variant, shrunk_for_variant

    rng = np.random.default_rng(seed)
    drawn = np.sort(rng.permutation(len(images))[:VARIANT_IMAGES])
    side = variant_side(name)
    variants = extract(name, [acquisition_variant(shrunk_for_variant(images[index], side), rng) for index in drawn], {})
    projection = NuisanceProjection().fit(values, originals=values[drawn], variants=variants)
    return projection.transform(values)


#: Feature sets that another extractor fills in its pass (``features extract --extractor classic_particles`` stores
#: ``particle_facets`` too): the extractor to run for them.
EXTRACTOR_OF_OUTPUT = {"particle_facets": "classic_particles"}


def extract(names: str, images: list[np.ndarray], cache: dict) -> np.ndarray:
    """Feature rows of extractor ``names`` (or of a set another extractor fills, :data:`EXTRACTOR_OF_OUTPUT`;
    ``a+b`` concatenates the columns of ``a`` and ``b``; ``a.ae`` are the
    :func:`autoencoder_codes` of ``a``, ``a.inv`` its :func:`invariant_codes`, ``(a+b).inv`` the invariant codes of
    the concatenated columns: one projection fitted on both), extracting each part once per corpus (``cache``,
    keyed by name; one pass caches every set its extractor fills)."""
    if names.startswith("(") and names.endswith(").inv"):
        if names not in cache:
            inner = names[1:-5]
            cache[names] = invariant_codes(inner, extract(inner, images, cache), images)
        return cache[names]
    parts = []
    for name in names.split("+"):
        if name.endswith(".inv"):
            if name not in cache:
                base = name.removesuffix(".inv")
                cache[name] = invariant_codes(base, extract(base, images, cache), images)
            parts.append(cache[name])
            continue
        if name.endswith(".ae"):
            if name not in cache:
                cache[name] = autoencoder_codes(extract(name.removesuffix(".ae"), images, cache))
            parts.append(cache[name])
            continue
        if name not in cache:
            extractor = create_extractor(EXTRACTOR_OF_OUTPUT.get(name, name))
            fitted = extractor.fit(images) if hasattr(extractor, "fit") else extractor
            # {output name: rows}; the first output is the extractor's features, the others the sets its pass fills
            outputs = fitted.transform(images)
            cache[name] = np.asarray(outputs[name] if name in outputs else next(iter(outputs.values())), np.float64)
            for output, rows in outputs.items():  # classic_particles' pass gives classic and particle_facets too
                cache.setdefault(feature_set_name(fitted, output), np.asarray(rows, np.float64))
        parts.append(cache[name])
    return np.hstack(parts)


#: The packages whose source decides what :func:`extract` returns for a corpus: the extractors and projections, and
#: the generators that draw the corpora.
EXTRACTION_SOURCES = ("semcurate.features", "semcurate.datasets")


def extraction_code() -> str:
    """The source of this script's functions that draw and describe the corpora, and the values of the constants
    they read: the part of the script that decides the extracted rows (its split and scoring do not)."""
    functions = (demo_specimens, other_textures, both_corpora, extract, invariant_codes, autoencoder_codes)
    functions += (variant_side,)
    constants = (AUTOENCODER_EPOCHS, AUTOENCODER_BATCH, sorted(EXTRACTOR_OF_OUTPUT.items()))
    return "\n".join(inspect.getsource(function) for function in functions) + repr(constants)


def code_fingerprint(sources: tuple[Path, ...] | None = None) -> str:
    """SHA-256 over the text of every ``.py`` file under ``sources`` (default: the packages of
    :data:`EXTRACTION_SOURCES`), over :func:`extraction_code`, and over the name and version of every installed
    distribution.

    Why: cached rows (``--cache``) are only the rows this run would extract if nothing that draws or describes the
    images has changed since they were written: neither the project's code nor a library's release. A change to
    how the benchmark splits or scores keeps them.
    """
    if sources is None:
        sources = tuple(Path(importlib.util.find_spec(name).origin).parent for name in EXTRACTION_SOURCES)
    digest = hashlib.sha256()
    for source in sources:
        for path in sorted(source.rglob("*.py")):
            digest.update(str(path.relative_to(source.parent)).encode())
            digest.update(path.read_bytes())
    digest.update(extraction_code().encode())
    versions = sorted(f"{dist.metadata['Name']}=={dist.version}" for dist in importlib.metadata.distributions())
    digest.update("\n".join(versions).encode())
    return digest.hexdigest()


def cache_path(folder: Path, corpus: str, seed: int, per_leaf: int, size: int) -> Path:
    """The file under ``folder`` that keeps one corpus draw's extracted rows (see :func:`load_cached_rows`)."""
    return folder / f"{corpus.replace(' ', '_')}-seed{seed}-{per_leaf}per_leaf-{size}px.npz"


def load_cached_rows(path: Path, fingerprint: str) -> dict[str, np.ndarray]:
    """``{feature set name: rows}`` that :func:`save_cached_rows` wrote to ``path``, or ``{}`` when there is no such
    file, it cannot be read, or it was written under another :func:`code_fingerprint` (the rows would differ)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["fingerprint"]) != fingerprint:
                print(f"cache: {path} was extracted by other code or library versions; extracting again")
                return {}
            return {str(name): stored[f"rows_{index}"] for index, name in enumerate(stored["names"])}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        print(f"cache: {path} cannot be read ({error}); extracting again")
        return {}


def save_cached_rows(path: Path, rows: dict[str, np.ndarray], fingerprint: str) -> bool:
    """Write ``rows`` (:func:`extract`'s cache for one corpus draw) to ``path`` with ``fingerprint``, whole or not at
    all: a temporary file in the same folder replaces ``path``, so a second run beside this one never reads half a
    file. Whether it was written: a folder that cannot be written (a full disk, no permission) costs the cache, not
    the run, and says so in one line."""
    names = sorted(rows)
    arrays = {f"rows_{index}": np.asarray(rows[name]) for index, name in enumerate(names)}
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=".npz", dir=path.parent)
        with os.fdopen(handle, "wb") as file:
            np.savez(file, names=np.array(names), fingerprint=np.array(fingerprint), **arrays)
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        print(f"cache: cannot write {path} ({error}); the run goes on without it")
        return False
    finally:
        if temporary is not None:  # written in part, or not moved into place
            Path(temporary).unlink(missing_ok=True)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--per-leaf", type=int, default=36, help="images per sub-category (36 × 36 = 1,296 demo images)"
    )
    parser.add_argument("--size", type=int, default=256, help="image side in px")
    parser.add_argument(
        "--extractor",
        nargs="+",
        default=["classic"],
        help="extractors to compare (by name; a+b concatenates their columns)",
    )
    parser.add_argument(
        "--semi-supervised-study",
        type=int,
        nargs="*",
        default=[],
        metavar="DRAW",
        help="also compare semi-supervised placement with the supervised one on these labelled draws (seeds)",
    )
    parser.add_argument(
        "--place-with",
        metavar="EXTRACTOR",
        help="place the unlabelled images by this extractor's standardised rows, split each --extractor's",
    )
    parser.add_argument(
        "--draws",
        type=int,
        nargs="+",
        default=[0],
        metavar="DRAW",
        help="labelled 15 %% draws (seeds) to place and split on; the row's figures are the first draw's, every "
        "draw's are under 'draws'",
    )
    parser.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[0],
        metavar="SEED",
        help="seeds of the corpora: each draws new images of both generators; with several, every row is one "
        "corpus seed's and 'over_corpus_seeds' says on how many (corpus seed, draw) pairs each target is met",
    )
    parser.add_argument(
        "--split-method",
        choices=("ward", "louvain"),
        default="ward",
        help="the tree's clustering method (tree build --method): Ward with the gap rule, or Louvain's own rule",
    )
    parser.add_argument(
        "--min-silhouette",
        type=float,
        default=MIN_SILHOUETTE,
        help="the tree's silhouette floor (tree build --min-silhouette)",
    )
    parser.add_argument(
        "--category-block",
        metavar="EXTRACTOR",
        help="append this extractor's rows (or a set one fills, e.g. particle_facets) to each category's rows "
        "before it is split, as tree build --category-block does",
    )
    parser.add_argument(
        "--category-block-weight",
        type=float,
        nargs="+",
        default=[CATEGORY_BLOCK_WEIGHT],
        help="the block's spread within a category in typical columns (tree build --category-block-weight); "
        "several: a row for each, on the same extraction and placement",
    )
    parser.add_argument(
        "--community-weights",
        choices=("off", "on"),
        nargs="+",
        default=["off"],
        help="split without or with each category's columns weighted by its Louvain communities (tree build "
        "--community-weights); both: a row for each, on the same extraction and placement",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="WEIGHT:off|on",
        help="of the --category-block-weight × --community-weights settings, only these (e.g. 4:off 3:on)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="keep each corpus draw's extracted rows in DIR and reuse them while the code and library versions that "
        "draw and describe the images are the same (a new split setting then costs minutes, not an hour)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "categorisation.json")
    args = parser.parse_args()
    if not 0 <= args.min_silhouette < 1:
        parser.error(f"--min-silhouette must be in [0, 1) as tree build's (0: no floor); got {args.min_silhouette}")
    settings = [(weight, weighted) for weight in args.category_block_weight for weighted in args.community_weights]
    if args.only is not None:
        unknown = sorted(set(args.only) - {f"{weight:g}:{weighted}" for weight, weighted in settings})
        if unknown:
            parser.error(f"--only names settings not asked for: {', '.join(unknown)}")
        settings = [(weight, weighted) for weight, weighted in settings if f"{weight:g}:{weighted}" in args.only]

    if args.cache is not None and args.cache.exists() and not args.cache.is_dir():
        parser.error(f"--cache must name a folder (made if missing); {args.cache} is a file")
    fingerprint = code_fingerprint() if args.cache is not None else None
    load_before = [round(load, 2) for load in os.getloadavg()]
    rows, study_rows = [], []
    for corpus_seed, corpus, (images, categories, leaves) in (
        (seed, corpus, drawn)
        for seed in args.seed
        for corpus, drawn in both_corpora(args.per_leaf, args.size, seed).items()
    ):
        stored = None if args.cache is None else cache_path(args.cache, corpus, corpus_seed, args.per_leaf, args.size)
        cache: dict = {} if stored is None else load_cached_rows(stored, fingerprint)
        loaded = frozenset(cache)
        written = set(loaded)
        for name in args.extractor:
            started = time.perf_counter()
            # invariant codes are in units of acquisition's change: standardising them would undo the projection
            values = preprocess(extract(name, images, cache), "none" if name.endswith(".inv") else "standard")
            extract_s = time.perf_counter() - started
            for draw in args.semi_supervised_study:
                study_rows.append(
                    {
                        "corpus": corpus,
                        "corpus_seed": corpus_seed,
                        "features": name,
                        **semi_supervised_study(values, categories, draw),
                    }
                )
                print("   semi-supervised study:", study_rows[-1])
            placing = None if args.place_with is None else preprocess(extract(args.place_with, images, cache))
            block = None if args.category_block is None else extract(args.category_block, images, cache)
            if stored is not None and not set(cache) <= written and save_cached_rows(stored, cache, fingerprint):
                written = set(cache)
            for block_weight, weighted in settings:
                results = [
                    categorise(
                        values,
                        categories,
                        leaves,
                        draw,
                        placing,
                        args.split_method,
                        min_silhouette=args.min_silhouette,
                        block=block,
                        block_weight=block_weight,
                        community_weights=weighted == "on",
                    )
                    for draw in args.draws
                ]
                result = results[0]
                rows.append(
                    {
                        "corpus": corpus,
                        "corpus_seed": corpus_seed,
                        "extractor": name,
                        "placed_with": args.place_with or name,
                        "category_block_weight": None if block is None else block_weight,
                        "community_weights": weighted == "on",
                        "extract_s": round(extract_s, 1),
                        "rows_from_cache": name in loaded,
                        **result,
                        "draws": draw_summary(args.draws, results),
                    }
                )
                print(
                    f"{corpus} (seed {corpus_seed}) | {name} | block weight {block_weight} | "
                    f"community weights {weighted} | "
                    f"placement {result['placement_accuracy']} ({result['classifier']}) | "
                    f"leaf NMI {result['leaf_nmi']} | worst category {result['worst_category_nmi']} | "
                    f"leaves {result['leaves']}/{result['true_subcategories']} | "
                    f"{extract_s:.0f}+{result['placement_s']}+{result['split_s']} s"
                )
                print("   per category:", {k: v["nmi"] for k, v in result["per_category"].items()})
                print("   with the true categories:", result["with_true_categories"])
                if len(results) > 1:
                    print("   over the draws:", {key: rows[-1]["draws"][key] for key in DRAW_KEYS})
    results = {
        "benchmark": "categorisation",
        "targets": {
            "placement_accuracy": f">= {PLACEMENT_TARGET} with {LABELLED_SHARE:.0%} labelled",
            "leaf_nmi": f">= {LEAF_NMI_TARGET}",
            "category_nmi": f">= {CATEGORY_NMI_TARGET} in every category",
            "leaf_count": f"within ±{LEAF_COUNT_TOLERANCE:.0%} of the true number",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15min_before": load_before,
            "load_average_1_5_15min_after": [round(load, 2) for load in os.getloadavg()],
        },
        "date": time.strftime("%Y-%m-%d"),
        "settings": {
            "per_leaf": args.per_leaf,
            "size": args.size,
            "seeds": args.seed,
            "draws": args.draws,
            "labelled": LABELLED_SHARE,
            "split_method": args.split_method,
            "min_silhouette": args.min_silhouette,
            "category_block": args.category_block,
            "category_block_weight": None if args.category_block is None else args.category_block_weight,
            "community_weights": args.community_weights,
            "only": args.only,
            "cache": None if args.cache is None else str(args.cache),
        },
        "rows": rows,
        "over_corpus_seeds": over_corpus_seeds(rows),
    }
    for summary in results["over_corpus_seeds"]:
        print(
            f"{summary['corpus']} | {summary['extractor']} | block weight {summary['category_block_weight']} | "
            f"community weights {summary['community_weights']} | "
            "targets met on (corpus seed, draw) pairs:",
            summary["targets_met"],
        )
    if study_rows:
        results["semi_supervised_study"] = {
            "question": "does semi-supervised placement (label spreading, self-training) beat the supervised placer?",
            "scored_on": "the unlabelled 85 % of each draw, against the generators' categories",
            "chosen_by": "balanced accuracy on hidden folds of the labelled rows (the placer's folds); never the "
            "unlabelled truth",
            **study_summary(study_rows),
            "rows": study_rows,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=bool))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
