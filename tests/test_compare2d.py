"""Thesis Fig. 4.1: five clustering algorithms on scikit-learn's 2-D toy datasets.

Expected values are the generating labels of the datasets and the thesis' reading of its figure (which
algorithm finds which shape), checked as adjusted Rand index with wide margins; never a number the code under
test produced.  600 points per dataset keep the module well under a second of clustering.
"""

from __future__ import annotations

import io
import json
import re
import time
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.figure import Figure

from semcurate.clustering.density_peaks import DensityPeaks
from semcurate.evaluation import compare2d
from semcurate.evaluation.compare2d import (
    ALGORITHMS,
    DATASETS,
    TITLES,
    as_records,
    cluster_2d,
    compare_2d,
    figure_2d,
    format_seconds,
    make_datasets,
)

N = 600
LINKAGES = ("single", "complete", "centroid", "ward")


@pytest.fixture(scope="module")
def calls():
    return []


@pytest.fixture(scope="module")
def wall():
    """Wall-clock seconds of the whole ``compare_2d`` call, measured here."""
    return {}


@pytest.fixture(scope="module")
def result(calls, wall):
    started = time.perf_counter()
    compared = compare_2d(n_samples=N, random_state=0, progress=calls.append)
    wall["seconds"] = time.perf_counter() - started
    return compared


def ari(result, dataset, algorithm):
    return result[dataset]["runs"][algorithm]["ari"]


def test_datasets_are_the_thesis_rows_standardised():
    datasets = make_datasets(N, 0)
    assert tuple(datasets) == DATASETS
    assert {name: k for name, (_, _, k) in datasets.items()} == {
        "noisy_circles": 2,
        "noisy_moons": 2,
        "varied": 3,
        "aniso": 3,
        "blobs": 3,
        "no_structure": 3,
    }
    for name, (X, y, k) in datasets.items():
        assert X.shape == (N, 2)
        np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-12)
        if name == "no_structure":
            assert y is None
        else:
            assert len(np.unique(y)) == k


def test_same_random_state_gives_the_same_data():
    first, again, other = make_datasets(N, 3), make_datasets(N, 3), make_datasets(N, 4)
    for name in DATASETS:
        np.testing.assert_array_equal(first[name][0], again[name][0])
    for name in ("noisy_circles", "noisy_moons", "no_structure"):
        assert not np.array_equal(first[name][0], other[name][0])
    for name in ("varied", "aniso", "blobs"):  # the example's fixed seeds place the blob centres
        np.testing.assert_array_equal(first[name][0], other[name][0])


def test_every_algorithm_gives_exactly_k_clusters(result, calls, wall):
    assert tuple(result) == DATASETS
    assert len(calls) == len(DATASETS) * len(ALGORITHMS) and set(calls) == {1}
    for name, entry in result.items():
        assert tuple(entry["runs"]) == ALGORITHMS
        for algorithm, run in entry["runs"].items():
            assert run["labels"].shape == (N,)
            assert np.array_equal(np.unique(run["labels"]), np.arange(entry["k"])), (name, algorithm)
            assert run["seconds"] > 0
            assert (run["ari"] is None) == (name == "no_structure")
    # the 30 timed clusterings are parts of the call: together they cannot take longer than all of it
    assert sum(run["seconds"] for entry in result.values() for run in entry["runs"].values()) < wall["seconds"]


def test_seconds_time_the_clustering_alone(monkeypatch):
    """On a fake clock that only the clustering, the data drawing and the scoring advance, each run's seconds are
    exactly what its own clustering call spent: drawing, warm-up and scoring are outside the timed span."""
    clock = [1000.0]
    charged: list[float] = []
    real_cluster = compare2d.cluster_2d

    def cluster_spending_time(X, algorithm, n_clusters):
        charged.append(2.0 ** -(len(charged) % 7) + len(X) / 64)  # distinct, exact in binary floating point
        clock[0] += charged[-1]
        return real_cluster(X, algorithm, n_clusters)

    def spending(function, seconds):
        def spend(*args, **kwargs):
            clock[0] += seconds
            return function(*args, **kwargs)

        return spend

    monkeypatch.setattr(compare2d, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(compare2d, "cluster_2d", cluster_spending_time)
    monkeypatch.setattr(compare2d, "make_datasets", spending(compare2d.make_datasets, 50.0))
    monkeypatch.setattr(compare2d, "adjusted_rand_score", spending(compare2d.adjusted_rand_score, 30.0))
    faked = compare_2d(n_samples=64, random_state=0)
    assert len(charged) == len(ALGORITHMS) + len(DATASETS) * len(ALGORITHMS)  # 5 untimed warm-up calls first
    measured = [run["seconds"] for entry in faked.values() for run in entry["runs"].values()]
    assert measured == pytest.approx(charged[len(ALGORITHMS) :], abs=1e-9)


def test_single_linkage_is_the_only_linkage_that_finds_non_convex_clusters(result):
    for dataset in ("noisy_circles", "noisy_moons"):
        assert ari(result, dataset, "single") > 0.95
        for algorithm in ("complete", "centroid", "ward"):
            assert ari(result, dataset, algorithm) < 0.9, (dataset, algorithm)
    assert ari(result, "noisy_circles", "ward") < 0.5


def test_all_five_find_separated_blobs(result):
    for algorithm in ALGORITHMS:
        assert ari(result, "blobs", algorithm) > 0.95, algorithm


def test_only_density_peaks_separates_the_close_anisotropic_blobs(result):
    assert ari(result, "aniso", "density-peaks") > 0.95
    for algorithm in LINKAGES:
        assert ari(result, "aniso", algorithm) < 0.9, algorithm


def test_ward_is_best_on_blobs_of_varied_variance(result):
    scores = {algorithm: ari(result, "varied", algorithm) for algorithm in ALGORITHMS}
    assert max(scores, key=scores.get) == "ward"
    assert scores["ward"] > scores["single"] + 0.5  # single chains through the noise: one cluster and outliers


def test_single_linkage_rich_get_richer_on_uniform_data(result):
    runs = result["no_structure"]["runs"]
    assert np.bincount(runs["single"]["labels"]).max() > 0.9 * N
    assert np.bincount(runs["ward"]["labels"]).max() < 0.5 * N


def test_density_peaks_cannot_separate_the_circles_because_the_inner_ring_is_denser(result):
    entry = result["noisy_circles"]
    run = entry["runs"]["density-peaks"]
    assert run["ari"] < 0.1
    inner = entry["y"] == 1  # make_circles: label 1 is the inner ring, half the circumference
    assert inner[run["centers"]].all()  # both centres land in the inner ring
    X, _, _ = make_datasets(N, 0)["noisy_circles"]
    density = DensityPeaks(n_clusters=2).fit(X).density_
    assert density[inner].mean() > 1.5 * density[~inner].mean()


def test_density_peaks_centres_carry_their_labels(result):
    for entry in result.values():
        run = entry["runs"]["density-peaks"]
        assert run["centers"].shape == (entry["k"],)
        np.testing.assert_array_equal(run["labels"][run["centers"]], np.arange(entry["k"]))
        for algorithm in LINKAGES:
            assert entry["runs"][algorithm]["centers"] is None


def test_records_are_json_serialisable(result):
    records = as_records(result)
    assert len(records) == len(DATASETS) * len(ALGORITHMS)
    assert json.loads(json.dumps(records)) == records
    assert set(records[0]) == {"dataset", "algorithm", "n_samples", "k", "seconds", "ari"}
    assert [(r["dataset"], r["algorithm"]) for r in records[:2]] == [
        ("noisy_circles", "single"),
        ("noisy_circles", "complete"),
    ]
    assert all((r["ari"] is None) == (r["dataset"] == "no_structure") for r in records)


def test_figure_has_a_panel_per_dataset_and_algorithm_with_its_time(result):
    figure = figure_2d(result)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == len(DATASETS) * len(ALGORITHMS)
    axes = np.array(figure.axes).reshape(len(DATASETS), len(ALGORITHMS))
    assert [ax.get_title() for ax in axes[0]] == [TITLES[a] for a in ALGORITHMS]
    for row, name in enumerate(DATASETS):
        for column, algorithm in enumerate(ALGORITHMS):
            texts = [text.get_text() for text in axes[row, column].texts]
            assert texts == [format_seconds(result[name]["runs"][algorithm]["seconds"])]
            assert re.fullmatch(r"\d*\.\d\ds", texts[0])
        centres = axes[row, -1].collections[-1]  # Density Peaks' centres, drawn last, in black
        assert len(centres.get_offsets()) == result[name]["k"]
        np.testing.assert_allclose(centres.get_facecolor()[0], [0, 0, 0, 1])
    figure.savefig(io.BytesIO(), format="png", dpi=40)


def test_format_seconds_like_the_sklearn_example():
    assert format_seconds(0.1234) == ".12s"
    assert format_seconds(2.5) == "2.50s"


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="unknown algorithm"):
        cluster_2d(np.zeros((5, 2)), "kmeans", 2)
