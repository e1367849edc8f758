"""Benchmark: which property of a stored corpus costs the sub-category tree, and how placement grows with the corpus.

``bench/tree_truth.py`` showed that the tree of a ``semcurate demo`` store
falls short of what ``bench/categorisation.py`` reaches on bare specimens,
even split over the true categories.  The stored images differ from those
specimens in several ways at once; this bench takes one away at a time.

Ablation: the feature set's rows (``--feature-set``, preprocessed as
``--preprocessing`` says, ``none`` for the ``.invK`` projections as ``make
demo`` splits them) are split over the true categories with
``bench/categorisation.py``'s functions, once over every image with a truth
and once without each of these groups, read from the corpus'
``ground_truth.csv`` or the database:

* the images the newest quality run flagged with one of
  :data:`~semcurate.ingest.quality.UNUSABLE_PICTURE_FLAGS`;
* the images the generator drew a defect on (its ``defect`` column);
* the JPG-only images (no TIFF: JPEG artefacts);
* the re-saved variants and near-duplicates;
* every image not 1,024 px wide (the demo's image sizes run from 512 to 4,096).

Leaving images out changes the count, and the count alone moves the split,
so each row also gives the same number of images left out at random
(``--controls`` draws): a group costs the tree when leaving it out gains more
than leaving out as many at random.

Placement against the corpus size (``--placement-sizes``): on random samples
of the images the quality stage did not flag, 15 % stratified labels, the
rest placed by :func:`semcurate.clustering.placement.place_unlabelled` as
``tree build`` places them (supervised classifiers on the standardised
``--place-with`` rows, label spreading's graph on the feature set's), the
accuracy against the true categories.  It asks whether the placement target
is out of reach of the method or of the labels: at 14-15 % of 1,300 images a
small category has three labelled images.

Usage: ``.venv/bin/python bench/store_ablation.py DIR --feature-set SET [--place-with classic]
[--placement-sizes 1300 5000] [--json FILE]``, ``DIR`` a ``semcurate demo --out`` or ``bench/full_scale.py
--out`` folder.  Results: ``bench/results/store_ablation.json`` (rows are added per ``DIR`` and set, replacing
an earlier row of the same pair).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import categorisation
import numpy as np
from tree_truth import image_truth, mapped_rows, paired_rows

from semcurate.clustering.placement import place_unlabelled
from semcurate.datasets.demo_corpus import GROUND_TRUTH_FILE
from semcurate.db import open_database
from semcurate.features.preprocessing import preprocess
from semcurate.ingest.quality_database import raised_flags

HERE = Path(__file__).resolve().parent
#: Kinds of ``ground_truth.csv`` row that describe an image's own pixels (not a copy of another's).
OWN_ROWS = ("original", "variant")


def image_attributes(sessions, truth_csv: Path) -> dict[str, dict]:
    """``{image md5: {defect, jpg_only, resaved, width}}`` from the ``original`` or ``variant`` row of each image
    in ``truth_csv``, mapped to images as :func:`tree_truth.mapped_rows` maps them."""
    attributes: dict[str, dict] = {}
    for md5, row in mapped_rows(sessions, truth_csv):
        if row["kind"] in OWN_ROWS:
            attributes.setdefault(
                md5,
                {
                    "defect": row["defect"],
                    "jpg_only": row["jpg_only"] == "true",
                    "resaved": bool(row["variant"] or row["near_duplicate_of"]),
                    "width": int(row["width"]),
                },
            )
    return attributes


def split_scores(values: np.ndarray, categories: np.ndarray, leaves: np.ndarray) -> dict:
    """Leaf NMI, worst category and leaves of the tree split over the true ``categories``."""
    scores = categorisation.tree_scores(categorisation.tree_leaves(values, categories, 0), categories, leaves)
    return {key: scores[key] for key in ("leaf_nmi", "worst_category_nmi", "leaves")}


def ablation(values: np.ndarray, leaves: np.ndarray, groups: dict[str, np.ndarray], controls: int) -> list[dict]:
    """One row per group (a boolean mask of the rows it holds): the split without it, and without as many rows
    drawn at random (``controls`` draws, seeded 0 ..)."""
    categories = np.array([path.split("/")[0] for path in leaves])
    rows = [{"left_out": "nothing", "images": len(values), **split_scores(values, categories, leaves)}]
    for name, group in groups.items():
        kept = ~group
        at_random = []
        for seed in range(controls):
            random_kept = np.ones(len(values), dtype=bool)
            random_kept[np.random.default_rng(seed).choice(len(values), int(group.sum()), replace=False)] = False
            at_random.append(split_scores(values[random_kept], categories[random_kept], leaves[random_kept]))
        rows.append(
            {
                "left_out": name,
                "images": int(kept.sum()),
                **split_scores(values[kept], categories[kept], leaves[kept]),
                "same_number_at_random": {
                    key: [draw[key] for draw in at_random] for key in ("leaf_nmi", "worst_category_nmi", "leaves")
                },
            }
        )
    return rows


def placement_by_size(
    values: np.ndarray, placing: np.ndarray, categories: np.ndarray, sizes: list[int], draws: int
) -> list[dict]:
    """Placement accuracy of the unlabelled rows of random samples of ``sizes`` rows (15 % stratified labels)."""
    rows = []
    for size in sizes:
        size = min(size, len(values))
        accuracies, classifiers, seconds = [], [], []
        for draw in range(draws):
            sample = np.sort(np.random.default_rng([size, draw]).choice(len(values), size, replace=False))
            labelled = categorisation.stratified_labelled(categories[sample], categorisation.LABELLED_SHARE, draw)
            known, unknown = sample[labelled], sample[~labelled]
            started = time.perf_counter()
            placement = place_unlabelled(
                placing[known],
                list(categories[known]),
                placing[unknown],
                graph_labelled=values[known],
                graph_unlabelled=values[unknown],
                random_state=draw,
            )
            seconds.append(round(time.perf_counter() - started, 1))
            accuracies.append(round(float(np.mean(np.array(placement.categories) == categories[unknown])), 3))
            classifiers.append(placement.report.get("classifier"))
        smallest = min(np.bincount(np.unique(categories, return_inverse=True)[1]))
        rows.append(
            {
                "images": size,
                "placement_accuracy": accuracies,
                "classifier": classifiers,
                "seconds": seconds,
                "smallest_category_in_store": int(smallest),
            }
        )
    return rows


def study(
    folder: Path,
    feature_set: str,
    *,
    place_with: str,
    preprocessing: str,
    controls: int,
    sizes: list[int],
    draws: int,
    ablate: bool = True,
) -> dict:
    """The ablation (``ablate``, ``controls`` random draws per group) and the placement study (``draws`` labelled
    draws per size of ``sizes``) of one store's feature set (see the module docstring)."""
    sessions = open_database(f"sqlite:///{folder.resolve() / 'semcurate.db'}", read_only=True)
    truth_csv = folder / "corpus" / GROUND_TRUTH_FILE
    truth, _ = image_truth(sessions, truth_csv)
    attributes = image_attributes(sessions, truth_csv)
    quality_run, flagged = raised_flags(sessions)
    kept_md5s, values, placing = paired_rows(
        sessions, feature_set, place_with, lambda md5: md5 in truth and md5 in attributes
    )
    values = preprocess(values, preprocessing)
    placing = preprocess(placing, "standard")
    leaves = np.array([truth[md5] for md5 in kept_md5s])
    described = [attributes[md5] for md5 in kept_md5s]
    unflagged = np.array([md5 not in flagged for md5 in kept_md5s])
    groups = {
        "flagged by the quality stage": ~unflagged,
        "drawn with a defect": np.array([bool(item["defect"]) for item in described]),
        "JPG-only": np.array([item["jpg_only"] for item in described]),
        "re-saved variants and near-duplicates": np.array([item["resaved"] for item in described]),
        "not 1,024 px wide": np.array([item["width"] != 1024 for item in described]),
    }
    categories = np.array([path.split("/")[0] for path in leaves])
    result = {
        "run": str(folder),
        "feature_set": feature_set,
        "preprocessing": preprocessing,
        "place_with": place_with,
        "quality_run": quality_run,
        "images": len(kept_md5s),
        "group_sizes": {name: int(group.sum()) for name, group in groups.items()},
    }
    if ablate:
        result["ablation"] = ablation(values, leaves, groups, controls)
    if sizes:
        result["placement_by_size"] = placement_by_size(
            values[unflagged], placing[unflagged], categories[unflagged], sizes, draws
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, metavar="DIR", help="a semcurate demo --out folder")
    parser.add_argument("--feature-set", required=True, help="the set split, e.g. classic_blobs.inv46")
    parser.add_argument("--place-with", default="classic", help="the set the supervised classifiers place by")
    parser.add_argument("--preprocessing", default="none", help="of the split set (none for a .invK projection)")
    parser.add_argument("--controls", type=int, default=2, help="random draws of the same number left out")
    parser.add_argument("--placement-sizes", type=int, nargs="*", default=[], metavar="N")
    parser.add_argument("--draws", type=int, default=2, help="labelled draws per placement size")
    parser.add_argument("--no-ablation", action="store_true", help="only the placement study")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "store_ablation.json")
    args = parser.parse_args()
    result = study(
        args.run,
        args.feature_set,
        place_with=args.place_with,
        preprocessing=args.preprocessing,
        controls=args.controls,
        sizes=args.placement_sizes,
        draws=args.draws,
        ablate=not args.no_ablation,
    )
    for row in result.get("ablation", []):
        control = row.get("same_number_at_random", {}).get("leaf_nmi", "")
        print(
            f"{row['left_out']:40s} {row['images']:6d} images | leaf NMI {row['leaf_nmi']} worst "
            f"{row['worst_category_nmi']} leaves {row['leaves']} | as many at random: {control}"
        )
    for row in result.get("placement_by_size", []):
        print(f"placement at {row['images']} images: {row['placement_accuracy']} ({row['classifier']})")
    previous = json.loads(args.json.read_text(encoding="utf-8")) if args.json.exists() else {"rows": []}
    rows = [
        row for row in previous["rows"] if (row["run"], row["feature_set"]) != (result["run"], result["feature_set"])
    ]
    output = {
        "benchmark": "store_ablation",
        "machine": {"platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "rows": [*rows, result],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(output, indent=1) + "\n", encoding="utf-8")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
