"""Weight-free feature extractors compared for the sub-category tree (issue 13, point 4).

Which offline extractor should be the default when ImageNet weights cannot be
downloaded?  Four candidates, on two corpora:

* ``classic`` -- the multi-scale texture and shape descriptor (``features/classic.py``);
* ``scattering`` -- spatially averaged log wavelet-scattering coefficients
  (kymatio, ``features/scattering.py``; 128 px, J = 4, L = 8, rotation-invariant);
* ``contrastive`` -- a 4-block CNN trained SimCLR-style on the corpus' own
  images without labels (``features/contrastive.py``); its time per image
  includes the training, spread over the corpus;
* ``classic+scattering`` -- both, columns side by side (their times added);
* ``finetune`` -- ``semcurate finetune``'s Inception-V3 (random initial
  weights: no ImageNet here; ``--finetune-size`` px, every layer trained) on
  the labelled 15 % only, its 2048 pooled activations as features (its
  time per image includes the training)
  (``--skip-finetune`` leaves it out).

Corpora, drawn here (no data bar, no ingest, so only the features differ):

* ``demo`` -- :func:`semcurate.datasets.specimens.draw_specimen`, the demo
  corpus' 36 sub-categories of 10 categories, ``--demo-per-leaf`` images
  each at 192 x 256 px;
* ``textures`` -- :func:`semcurate.datasets.textures.make_textures`, a
  generator built differently (random fields, not drawn shapes): 15
  sub-categories of 5 categories, ``--textures-per-class`` images each at
  128 px.

Quality, per extractor and corpus (the tree's two tasks):

* ``ward_nmi`` -- the columns standardised (mean 0, variance 1), Ward
  agglomerative clustering (scikit-learn) cut at k = the number of
  sub-categories, NMI (geometric mean, as the thesis) against the
  sub-categories;
* ``placement_accuracy`` -- a stratified 15 % of the images keep their
  category label (seed 0, the same split for every extractor); a
  standardised logistic regression trained on them places the other 85 %;
  the share placed in their true category.

Rule for the winner, fixed before the run: the highest mean of the four
quality numbers (two per corpus); an extractor within 0.01 of the best counts
as tied and the fastest (CPU seconds per image, mean over the corpora) of the
tied ones wins.

Times are CPU seconds of this process per image (all threads; the machine
is shared, so wall time is shown too but not used), with the 1-minute load
average before each corpus.  Writes ``bench/results/extractors.json``
(or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from semcurate.datasets.specimens import draw_specimen
from semcurate.datasets.taxonomy import leaf_paths
from semcurate.datasets.textures import make_textures
from semcurate.features.classic import ClassicDescriptor
from semcurate.features.contrastive import ContrastiveExtractor
from semcurate.features.scattering import ScatteringExtractor, _transform

HERE = Path(__file__).resolve().parent
LABELLED_FRACTION = 0.15
TIE = 0.01


def demo_corpus(per_leaf: int, seed: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """``per_leaf`` specimens of each of the 36 demo sub-categories at 192 x 256 px, with category and leaf."""
    rng = np.random.default_rng(seed)
    images, leaves = [], []
    for leaf in leaf_paths():
        for _ in range(per_leaf):
            images.append(draw_specimen(leaf, rng, 192, 256))
            leaves.append(leaf)
    leaves_array = np.array(leaves)
    return images, np.array([leaf.split("/")[0] for leaf in leaves]), leaves_array


def texture_corpus(per_class: int, seed: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """``per_class`` textures of each of the 15 sub-categories of :mod:`semcurate.datasets.textures` at 128 px."""
    images, category, subcategory = make_textures(per_class, rng=seed, size=128)
    return list(images), category, subcategory


def ward_nmi(features: np.ndarray, subcategory: np.ndarray) -> float:
    """NMI (geometric) against the sub-categories of Ward on standardised columns at k = their number."""
    k = len(set(subcategory.tolist()))
    labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(StandardScaler().fit_transform(features))
    return float(normalized_mutual_info_score(subcategory, labels, average_method="geometric"))


def labelled_split(category: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the stratified 15 % that keep their label, and of the rest."""
    return train_test_split(
        np.arange(len(category)), train_size=LABELLED_FRACTION, stratify=category, random_state=seed
    )


def placement_accuracy(features: np.ndarray, category: np.ndarray, labelled: np.ndarray, rest: np.ndarray) -> float:
    """Share of the unlabelled rows a standardised logistic regression on the labelled rows places correctly."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(features[labelled], category[labelled])
    return float(np.mean(model.predict(features[rest]) == category[rest]))


def timed(function, *args) -> tuple[object, float, float]:
    """``function(*args)``, its CPU seconds (this process, every thread) and its wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = function(*args)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def finetune_features(images, category, labelled, size: int, epochs: int) -> np.ndarray:
    """Pooled activations of Inception-V3 trained (every layer, random start) on the labelled images only.

    The model is ``semcurate finetune``'s (:func:`~semcurate.features.finetune.build_classifier`, mode
    ``finetune``), fitted on every labelled image: ``finetune()`` itself holds 20 % of them out for validation
    and test and refuses categories with fewer than 3 labelled images, which 15 % of a 15-image category is not.
    """
    import keras

    from semcurate.features.finetune import build_classifier
    from semcurate.features.inception import to_inception_input

    classes, targets = np.unique(category[labelled], return_inverse=True)
    model = build_classifier(len(classes), mode="finetune", weights="none", image_size=size, random_state=0)
    model.fit(to_inception_input([images[i] for i in labelled], size), targets, epochs=epochs, batch_size=16, verbose=0)
    pool = keras.Model(model.inputs, model.get_layer("avg_pool").output)  # checkpoint_outputs' "pool", built once
    return np.asarray(pool.predict(to_inception_input(images, size), batch_size=64, verbose=0), dtype=np.float32)


def score(features: np.ndarray, cpu: float, wall: float, category, subcategory, split) -> dict:
    """One table row: dimension, CPU and wall ms per image, Ward NMI and placement accuracy."""
    count = len(features)
    return {
        "dimension": int(features.shape[1]),
        "cpu_ms_per_image": round(1000 * cpu / count, 1),
        "wall_ms_per_image": round(1000 * wall / count, 1),
        "ward_nmi": round(ward_nmi(features, subcategory), 3),
        "placement_accuracy": round(placement_accuracy(features, category, *split), 3),
    }


def run_corpus(name: str, images, category, subcategory, args) -> dict:
    """Every extractor on one corpus: time per image and the two quality numbers."""
    split = labelled, _ = labelled_split(category)
    load = os.getloadavg()[0]
    extractors = {
        "classic": lambda: ClassicDescriptor().transform(images),
        "scattering": lambda: ScatteringExtractor().transform(images)["scattering"],
        "contrastive": lambda: (
            ContrastiveExtractor(epochs=args.contrastive_epochs).fit(images).transform(images)["contrastive"]
        ),
    }
    if not args.skip_finetune:
        extractors["finetune"] = lambda: finetune_features(
            images, category, labelled, args.finetune_size, args.finetune_epochs
        )
    rows, computed = {}, {}
    for method, extractor in extractors.items():
        features, cpu, wall = timed(extractor)
        computed[method] = features, cpu, wall
        rows[method] = score(features, cpu, wall, category, subcategory, split)
        print(f"  {name} {method}: {rows[method]}", flush=True)
        if method == "scattering":  # the pair, from the parts already computed
            classic, classic_cpu, classic_wall = computed["classic"]
            rows["classic+scattering"] = score(
                np.hstack([classic, features]), classic_cpu + cpu, classic_wall + wall, category, subcategory, split
            )
            print(f"  {name} classic+scattering: {rows['classic+scattering']}", flush=True)
    return {
        "images": len(images),
        "categories": len(set(category.tolist())),
        "subcategories": len(set(subcategory.tolist())),
        "labelled": len(labelled),
        "load_average_1min_before": round(load, 2),
        "extractors": rows,
    }


def winner(corpora: dict) -> tuple[str, dict]:
    """The extractor with the best mean quality (ties within :data:`TIE` go to the fewest CPU ms per image)."""
    methods = list(next(iter(corpora.values()))["extractors"])
    summary = {}
    for method in methods:
        rows = [corpus["extractors"][method] for corpus in corpora.values()]
        summary[method] = {
            "mean_quality": round(float(np.mean([[r["ward_nmi"], r["placement_accuracy"]] for r in rows])), 3),
            "mean_cpu_ms_per_image": round(float(np.mean([r["cpu_ms_per_image"] for r in rows])), 1),
        }
    best = max(entry["mean_quality"] for entry in summary.values())
    tied = [method for method in methods if summary[method]["mean_quality"] >= best - TIE]
    return min(tied, key=lambda method: summary[method]["mean_cpu_ms_per_image"]), summary


def main() -> None:
    """Draw both corpora, run every extractor, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-per-leaf", type=int, default=15, help="demo specimens per sub-category (36 of them)")
    parser.add_argument("--textures-per-class", type=int, default=30, help="textures per sub-category (15 of them)")
    parser.add_argument("--contrastive-epochs", type=int, default=30, help="training epochs of the contrastive CNN")
    parser.add_argument("--finetune-size", type=int, default=96, help="Inception-V3 input side for finetune, px")
    parser.add_argument("--finetune-epochs", type=int, default=10, help="finetune training epochs")
    parser.add_argument("--skip-finetune", action="store_true", help="leave the finetune extractor out")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "extractors.json", help="JSON result file")
    args = parser.parse_args()

    load_before = os.getloadavg()
    _, bank_cpu, _ = timed(_transform, 4, 128, 8)  # kymatio's filter bank: built once per process, not per image
    corpora = {
        "demo": run_corpus("demo", *demo_corpus(args.demo_per_leaf, seed=0), args),
        "textures": run_corpus("textures", *texture_corpus(args.textures_per_class, seed=0), args),
    }
    best, summary = winner(corpora)
    print("\ncorpus | extractor | dim | CPU ms/image | wall ms/image | Ward NMI (k = sub-categories) | placement acc.")
    for corpus_name, corpus in corpora.items():
        for method, row in corpus["extractors"].items():
            print(
                f"{corpus_name} | {method} | {row['dimension']} | {row['cpu_ms_per_image']} | "
                f"{row['wall_ms_per_image']} | {row['ward_nmi']} | {row['placement_accuracy']}"
            )
    print("\nextractor | mean quality | mean CPU ms/image")
    for method, entry in summary.items():
        print(f"{method} | {entry['mean_quality']} | {entry['mean_cpu_ms_per_image']}")
    print(f"winner: {best}")

    import kymatio
    import tensorflow

    result = {
        "benchmark": "extractors",
        "question": "which weight-free extractor should be the offline default (issue 13, point 4)",
        "winner_rule": "highest mean of ward_nmi and placement_accuracy over both corpora; within "
        f"{TIE} of the best counts as tied, then the fewest CPU ms per image wins",
        "winner": best,
        "summary": summary,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "kymatio": kymatio.__version__,
            "tensorflow": tensorflow.__version__,
            "load_average_1_5_15min_before": [round(load, 2) for load in load_before],
            "load_average_1_5_15min_after": [round(load, 2) for load in os.getloadavg()],
        },
        "date": time.strftime("%Y-%m-%d"),
        "settings": {
            "labelled_fraction": LABELLED_FRACTION,
            "labelled_split_seed": 0,
            "nmi": "geometric mean normalisation, Ward on standardised columns, k = number of sub-categories",
            "placement": "StandardScaler + LogisticRegression(max_iter=5000) on the labelled rows, "
            "accuracy on the rest",
            "demo": {"per_leaf": args.demo_per_leaf, "size_px": [192, 256], "seed": 0},
            "textures": {"per_class": args.textures_per_class, "size_px": 128, "seed": 0},
            "scattering": {
                "size": 128,
                "J": 4,
                "L": 8,
                "rotation_invariant": True,
                "filter_bank_cpu_s": round(bank_cpu, 1),
                "note": "the filter bank is built once per process before the clocks start (its CPU seconds here)",
            },
            "contrastive": {"size": 96, "crop": 64, "epochs": args.contrastive_epochs, "batch_size": 64, "seed": 0},
            "finetune": None
            if args.skip_finetune
            else {
                "mode": "finetune",
                "weights": "none (random start)",
                "image_size": args.finetune_size,
                "epochs": args.finetune_epochs,
                "trained_on": "every labelled row (build_classifier + fit; finetune() needs 3 labelled per category)",
            },
            "times": "CPU seconds of this process (all threads) per image; contrastive and finetune include training",
        },
        "corpora": corpora,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
