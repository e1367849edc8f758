"""Outlier scores against scikit-learn's LocalOutlierFactor and a brute-force neighbour search, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.neighbors import LocalOutlierFactor
from typer.testing import CliRunner

from semcurate.cli import app
from semcurate.features.outliers import outlier_scores
from semcurate.features.store import FeatureStore


def test_lof_equals_scikit_learns_and_finds_the_planted_outlier():
    rng = np.random.default_rng(0)
    values = np.vstack([rng.normal(0, 1, (300, 6)), rng.normal(10, 0.2, (60, 6)), [[5.0] * 6]])
    _knn, lof = outlier_scores(values, n_neighbors=15)
    reference = LocalOutlierFactor(n_neighbors=15).fit(values)
    np.testing.assert_allclose(lof, -reference.negative_outlier_factor_, rtol=1e-10)
    assert int(np.argmax(lof)) == len(values) - 1


def test_knn_distance_is_the_mean_distance_to_the_k_nearest_others():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(80, 4))
    knn, _lof = outlier_scores(values, n_neighbors=5)
    distances = cdist(values, values)
    np.fill_diagonal(distances, np.inf)
    np.testing.assert_allclose(knn, np.sort(distances, axis=1)[:, :5].mean(axis=1), rtol=1e-12)


@pytest.mark.parametrize("values", [np.zeros((2, 3)), np.array([[np.nan, 1.0]] * 5), np.zeros(5)])
def test_unusable_rows_are_a_value_error(values):
    with pytest.raises(ValueError):
        outlier_scores(values)


def test_outliers_command_stores_and_ranks(tmp_path, db_url, sessions):
    from semcurate.db.models import Image, OutlierScore

    rng = np.random.default_rng(2)
    md5s = [f"{index:032x}" for index in range(50)]
    values = rng.normal(size=(50, 3))
    values[17] += 25
    with sessions.begin() as session:
        for md5 in md5s:
            session.add(
                Image(md5=md5, source_format="TIFF", jpg_md5=md5[::-1], width=8, height=8, mode="L", phash="0" * 16)
            )
    with FeatureStore(tmp_path / "features.h5").writing() as store:
        store.append("toy", md5s, values)
    result = CliRunner().invoke(
        app, ["outliers", "toy", "--feature-store", str(tmp_path / "features.h5"), "--json", "--db", db_url]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["images"] == 50 and summary["top"][0]["md5"] == md5s[17] and summary["top"][0]["rank"] == 1
    with sessions() as session:
        assert session.query(OutlierScore).count() == 50
    missing = CliRunner().invoke(
        app, ["outliers", "nothing", "--feature-store", str(tmp_path / "features.h5"), "--db", db_url]
    )
    assert missing.exit_code == 2 and missing.output.startswith("error:") and "Traceback" not in missing.output
