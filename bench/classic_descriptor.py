"""Weight-free "classic" descriptor: speed on 1 and 2 cores, and how well it separates the demo categories.

Targets (issue 4, machines with no CNN weights and no GPU):

* ≥ 50 images per second on 2 cores for 1024 x 768 inputs (single-process
  milliseconds per image, and the throughput of a 2-process pool);
* on a 600-image demo corpus (originals, data stripe cropped away): k-means
  (k = 10, n_init = 10) on standardised descriptors separates the 10
  categories clearly better than chance -- NMI (geometric mean) against the
  category, next to k-means at k = 36 against the leaf sub-category and the
  NMI of random labels.

Writes ``bench/results/classic_descriptor.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from semcurate.features.classic import ClassicDescriptor
from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.ingest.images import decode_image

HERE = Path(__file__).resolve().parent
SEEDS = range(5)  # k-means and random-label repeats; NMI is reported as mean and spread


def load_originals(corpus: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[str], list[str]]:
    """Full and stripe-cropped grey images of each original (TIFF, else its JPG), with category and leaf path."""
    chosen: dict[str, dict] = {}
    with (corpus / "ground_truth.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["kind"] == "original" and row["format"] in ("TIFF", "JPG"):
                if row["image_id"] not in chosen or row["format"] == "TIFF":
                    chosen[row["image_id"]] = row
    full, cropped, categories, leaves = [], [], [], []
    for image_id in sorted(chosen):
        row = chosen[image_id]
        grey = np.asarray(decode_image((corpus / row["path"]).read_bytes()).display.convert("L"))
        top = int(row["stripe_box"].split()[1]) if row["stripe_box"] else grey.shape[0]
        full.append(grey)
        cropped.append(grey[:top])
        categories.append(row["category"])
        leaves.append(row["subcategory_path"])
    return full, cropped, categories, leaves


def describe_all(images: list[np.ndarray]) -> float:
    """Worker body: describe a chunk of images; return the CPU seconds this process spent on it."""
    started = time.process_time()
    ClassicDescriptor().transform(images)
    return time.process_time() - started


def speed(images: list[np.ndarray], workers: int) -> dict:
    """Wall-clock and CPU time over ``images``; a pool is started and warmed up before the clock starts.

    The CPU time (summed over the workers) is what the images cost when the
    cores are not shared with other work; ``cpu_images_per_s`` is the
    throughput ``workers`` idle cores would give.
    """
    if workers == 1:
        describe_all(images[:1])
        started = time.perf_counter()
        cpu = describe_all(images)
    else:
        chunks = [images[i : i + 8] for i in range(0, len(images), 8)]
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(describe_all, [images[:1]] * workers))
            started = time.perf_counter()
            cpu = sum(pool.map(describe_all, chunks))
    wall = time.perf_counter() - started
    return {
        "workers": workers, "images": len(images), "wall_s": round(wall, 2),
        "ms_per_image": round(1000 * wall / len(images), 1), "images_per_s": round(len(images) / wall, 1),
        "cpu_ms_per_image": round(1000 * cpu / len(images), 1),
        "cpu_images_per_s": round(workers * len(images) / cpu, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def nmi(truth: list[str], labels: np.ndarray) -> float:
    return normalized_mutual_info_score(truth, labels, average_method="geometric")


def kmeans_nmi(features: np.ndarray, truth: list[str], k: int) -> list[float]:
    return [nmi(truth, KMeans(k, n_init=10, random_state=seed).fit_predict(features)) for seed in SEEDS]


def random_nmi(truth: list[str], k: int) -> list[float]:
    return [nmi(truth, np.random.default_rng(seed).integers(0, k, len(truth))) for seed in SEEDS]


def summary(values: list[float]) -> dict:
    return {"mean": round(float(np.mean(values)), 3), "std": round(float(np.std(values)), 3)}


def loo_1nn(features: np.ndarray, truth: list[str]) -> float:
    """Leave-one-out 1-NN accuracy (the nearest other image's label)."""
    model = KNeighborsClassifier(n_neighbors=2).fit(features, truth)
    _, index = model.kneighbors(features)
    labels = np.asarray(truth)
    return float(np.mean(labels[index[:, 1]] == labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600, help="size of the generated demo corpus")
    parser.add_argument("--corpus", type=Path, help="reuse this demo corpus (else one is generated)")
    parser.add_argument("--speed-images", type=int, default=200, help="full 1024 x 768 images timed")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "classic_descriptor.json")
    args = parser.parse_args()

    workdir = None
    corpus = args.corpus
    if corpus is None:
        workdir = Path(tempfile.mkdtemp(prefix="semcurate-bench-classic-"))
        corpus = workdir / "corpus"
        make_sem_corpus(corpus, args.images, seed=0, workers=2)
    try:
        full, cropped, categories, leaves = load_originals(corpus)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    timed = [image for image in full if image.shape == (768, 1024)][: args.speed_images]
    runs = [speed(timed, workers) for workers in (1, 2)]
    columns = ("workers", "images", "wall_s", "ms_per_image", "images_per_s", "cpu_ms_per_image", "cpu_images_per_s",
               "load_average_1min")
    print("workers | images | wall s | ms/image | images/s | CPU ms/image | images/s on idle cores | load (1 min)")
    for run in runs:
        print(" | ".join(str(run[key]) for key in columns))

    descriptor = ClassicDescriptor()
    features = descriptor.transform(cropped)
    standardised = StandardScaler().fit_transform(features)
    whitened = make_pipeline(StandardScaler(), PCA(n_components=0.95, whiten=True)).fit_transform(features)
    k_leaves = len(set(leaves))
    scores = {
        "kmeans10_vs_category": summary(kmeans_nmi(standardised, categories, 10)),
        "kmeans36_vs_subcategory": summary(kmeans_nmi(standardised, leaves, 36)),
        "random10_vs_category": summary(random_nmi(categories, 10)),
        "random36_vs_subcategory": summary(random_nmi(leaves, 36)),
        "pca_whitened_kmeans10_vs_category": summary(kmeans_nmi(whitened, categories, 10)),
        "pca_whitened_kmeans36_vs_subcategory": summary(kmeans_nmi(whitened, leaves, 36)),
        "loo_1nn_accuracy_category": round(loo_1nn(standardised, categories), 3),
        "loo_1nn_accuracy_subcategory": round(loo_1nn(standardised, leaves), 3),
    }
    print(f"\n{len(cropped)} originals, {len(set(categories))} categories, {k_leaves} leaves, "
          f"dimension {descriptor.dimension} (PCA 95 %: {whitened.shape[1]})")
    print("score | mean | std")
    for key, value in scores.items():
        print(f"{key} | " + (f"{value['mean']} | {value['std']}" if isinstance(value, dict) else f"{value} | -"))

    two_core = next(run for run in runs if run["workers"] == 2)
    separates = scores["kmeans10_vs_category"]["mean"] >= 0.3 > scores["random10_vs_category"]["mean"]
    result = {
        "benchmark": "classic_descriptor",
        "target": "≥ 50 images/s on 2 cores for 1024 x 768; k-means k=10 NMI vs category clearly above random",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "descriptor": {"name": descriptor.name, "dimension": descriptor.dimension,
                       "working_size": descriptor.working_size},
        "corpus": {"images": len(cropped), "categories": len(set(categories)), "leaves": k_leaves,
                   "kmeans_seeds": len(SEEDS)},
        "speed": runs,
        "nmi": scores,
        "target_met": two_core["images_per_s"] >= 50 and separates,
        "target_met_on_idle_cores": two_core["cpu_images_per_s"] >= 50 and separates,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
