"""The categorisation benchmark's judgement over corpus seeds (bench/categorisation.py, issue 13), on rows set
by hand."""

from __future__ import annotations

import pytest
from conftest import bench_script


@pytest.fixture(scope="module")
def categorisation():
    with bench_script("categorisation") as module:
        yield module


def row(corpus: str, seed: int, placement, leaf_nmi, worst, leaves, true_subcategories=36) -> dict:
    """A row as the benchmark writes it for one corpus seed, with the given per-draw figures."""
    figures = {"placement_accuracy": placement, "leaf_nmi": leaf_nmi, "worst_category_nmi": worst, "leaves": leaves}
    return {
        "corpus": corpus,
        "corpus_seed": seed,
        "extractor": "classic",
        "true_subcategories": true_subcategories,
        "draws": {key: {"each": values} for key, values in figures.items()},
    }


def test_targets_are_counted_over_every_corpus_seed_and_draw(categorisation):
    """Two corpus seeds of two draws each: a target met on some pairs says how many, at the targets' own edges."""
    rows = [
        row("demo", 0, [0.95, 0.949], [0.90, 0.91], [0.80, 0.79], [43, 44]),
        row("demo", 1, [0.96, 0.97], [0.899, 0.92], [0.5, 0.81], [29, 28]),
        row("textures", 0, [1.0, 1.0], [0.95, 0.95], [0.82, 0.82], [18, 19], true_subcategories=15),
    ]
    demo, textures = categorisation.over_corpus_seeds(rows)
    assert demo["corpus_seeds"] == [0, 1] and textures["corpus_seeds"] == [0]
    # 36 × 1.2 = 43.2 and 36 × 0.8 = 28.8: 43 and 29 are in, 44 and 28 out; 15 × 1.2 = 18
    assert demo["targets_met"] == {
        "placement": "3 of 4",
        "leaf_nmi": "3 of 4",
        "category_nmi": "2 of 4",
        "leaf_count": "2 of 4",
    }
    assert textures["targets_met"]["leaf_count"] == "1 of 2"
    assert demo["worst_category_nmi"] == {"each": [[0.80, 0.79], [0.5, 0.81]], "min": 0.5, "mean": 0.725, "max": 0.81}
    assert demo["leaves"]["min"] == 28 and demo["leaves"]["max"] == 44
