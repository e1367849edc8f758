"""bench/store_ablation.py: its ablation on rows whose noise is known, its placement study on separable rows, and
the image attributes it reads, against the corpus files' own md5s."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest
from conftest import bench_script


@pytest.fixture(scope="module")
def store_ablation():
    with bench_script("store_ablation") as module:
        yield module


def separated_rows(rng: np.random.Generator, per_leaf: int) -> tuple[np.ndarray, np.ndarray]:
    """Two categories of two sub-categories each, every sub-category a tight cloud 20 sd from the others."""
    leaves = np.repeat(["A/x", "A/y", "B/z", "B/w"], per_leaf)
    centres = {"A/x": 0.0, "A/y": 20.0, "B/z": 40.0, "B/w": 60.0}
    values = rng.normal(0, 1, (len(leaves), 6)) + np.array([centres[leaf] for leaf in leaves])[:, None]
    return values, leaves


def test_leaving_out_the_noise_recovers_the_sub_categories_and_as_many_at_random_does_not(store_ablation):
    rng = np.random.default_rng(3)
    values, leaves = separated_rows(rng, 60)
    # 40 rows that look alike wherever their truth says they belong: uniform over the whole box
    noise = rng.uniform(-5, 65, (40, 6))
    values = np.vstack([values, noise])
    leaves = np.concatenate([leaves, rng.choice(["A/x", "A/y", "B/z", "B/w"], 40)])
    group = np.r_[np.zeros(240, bool), np.ones(40, bool)]
    rows = store_ablation.ablation(values, leaves, {"noise": group}, controls=2)
    assert [row["left_out"] for row in rows] == ["nothing", "noise"]
    assert (rows[0]["images"], rows[1]["images"]) == (280, 240)
    assert rows[1]["leaf_nmi"] == 1.0 and rows[1]["leaves"] == 4
    assert rows[0]["leaf_nmi"] < 0.95
    assert all(nmi < 0.95 for nmi in rows[1]["same_number_at_random"]["leaf_nmi"])


def test_placement_by_size_places_separable_rows_and_keeps_the_sizes(store_ablation):
    values, leaves = separated_rows(np.random.default_rng(4), 80)
    categories = np.array([leaf.split("/")[0] for leaf in leaves])
    rows = store_ablation.placement_by_size(values, values, categories, [100, 1000], draws=2)
    assert [row["images"] for row in rows] == [100, 320]  # no more than the rows there are
    assert all(accuracy == 1.0 for row in rows for accuracy in row["placement_accuracy"])
    assert rows[0]["smallest_category_in_store"] == 160


def test_image_attributes_are_the_corpus_rows_of_each_image(store_ablation, tree_truth_sessions):
    root, sessions = tree_truth_sessions
    attributes = store_ablation.image_attributes(sessions, root / "corpus" / "ground_truth.csv")
    expected = {}
    with open(root / "corpus" / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["kind"] == "original":
                digest = hashlib.md5((root / "corpus" / row["path"]).read_bytes()).hexdigest()
                expected[digest] = (row["defect"], row["jpg_only"] == "true", int(row["width"]))
    shared = set(expected) & set(attributes)
    assert len(shared) >= 0.9 * len(expected)
    for md5 in shared:
        found = attributes[md5]
        assert (found["defect"], found["jpg_only"], found["width"]) == expected[md5]
    assert any(found["defect"] for found in attributes.values())
    assert any(found["jpg_only"] for found in attributes.values())


@pytest.fixture(scope="module")
def tree_truth_sessions(demo_repository):
    root, _, sessions, _ = demo_repository
    return root, sessions
