"""Preprocessing before distances (features/preprocessing.py): against scikit-learn's scalers, and what it changes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import MinMaxScaler, Normalizer, StandardScaler

from semcurate.clustering.hierarchy import Cutter
from semcurate.clustering.runs import ClusteringError, cluster_feature_set, load_clustering
from semcurate.clustering.store import ClusterStore
from semcurate.db import open_database
from semcurate.features.preprocessing import preprocess
from semcurate.features.store import FeatureStore


@pytest.fixture
def rows():
    generator = np.random.default_rng(4)
    values = generator.normal(size=(50, 6)) * [1.0, 10.0, 1e3, 0.1, 5.0, 1.0] + [0, 5, -7, 1e4, 0, 3]
    values[:, 5] = 3.0  # a constant column
    values[7] = 0.0  # an all-zero row
    return values


@pytest.mark.parametrize(
    ("how", "peer"), [("standard", StandardScaler()), ("minmax", MinMaxScaler()), ("norm", Normalizer())]
)
def test_each_preprocessing_equals_scikit_learns_scaler(rows, how, peer):
    np.testing.assert_allclose(preprocess(rows, how), peer.fit_transform(rows), rtol=1e-12, atol=1e-12)


def test_none_is_a_copy_and_an_unknown_name_is_refused(rows):
    kept = preprocess(rows, "none")
    np.testing.assert_array_equal(kept, rows)
    kept[0, 0] = -1
    assert rows[0, 0] != -1
    with pytest.raises(ValueError, match="unknown preprocessing 'zscore'; choose one of standard, norm, minmax, none"):
        preprocess(rows, "zscore")


def test_standardising_lets_the_quiet_columns_that_hold_the_structure_decide(tmp_path):
    # Four groups in 4 columns of unit spread, next to 3 columns of pure noise 300 times wider: Euclidean distances
    # on the raw rows are the noise's; on standardised rows every column weighs the same and the groups come back.
    points, groups = make_blobs(n_samples=240, centers=4, n_features=4, cluster_std=0.6, random_state=1)
    noise = np.random.default_rng(2).normal(scale=300.0, size=(240, 3))
    values = np.hstack([points, noise])
    md5s = [f"{index:032x}" for index in range(len(values))]
    sessions = open_database(str(tmp_path / "db.sqlite"))
    feature_store, cluster_store = FeatureStore(tmp_path / "features.h5"), ClusterStore(tmp_path / "clusterings.h5")
    feature_store.append("mixed", md5s, values)

    agreement = {}
    for how in ("standard", "none"):
        summary = cluster_feature_set(
            sessions, feature_store, cluster_store, "mixed", "ward", k_max=10, preprocessing=how
        )
        row, stored = load_clustering(sessions, feature_set="mixed", method="ward", subset=None)
        assert row.id == summary["clustering_id"] and json.loads(row.parameters)["preprocessing"] == how
        agreement[how] = adjusted_rand_score(groups, Cutter(stored.linkage).labels(4))
    assert agreement["standard"] > 0.9 > 0.2 > agreement["none"]
    with pytest.raises(ClusteringError, match="unknown preprocessing 'z'"):
        cluster_feature_set(sessions, feature_store, cluster_store, "mixed", "ward", k_max=10, preprocessing="z")
