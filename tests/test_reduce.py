"""Reducing a stored feature set: PCA and autoencoder codes become child feature sets."""

from __future__ import annotations

import numpy as np
import pytest

from semcurate.db import FeatureSet
from semcurate.features.analysis import StudyError, reduce_feature_set
from semcurate.features.store import FeatureStore

pytestmark = pytest.mark.slow  # trains autoencoders with TensorFlow


@pytest.fixture
def stored(tmp_path):
    """A 200 × 20 feature set lying near a 3-D plane."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 20)) + 0.01 * rng.normal(size=(200, 20))
    store = FeatureStore(tmp_path / "f.h5")
    store.append("base", [f"{index:032x}" for index in range(200)], values)
    return store, values


def test_pca_codes_are_stored_with_their_parent(sessions, stored, tmp_path):
    store, values = stored
    result = reduce_feature_set(sessions, store, "base", "pca", 3, tmp_path / "out")
    assert result["feature_set"] == "base.pca3" and result["explained_variance"] > 0.99
    assert result["preprocessing"] == "standard"
    md5s, codes = store.read("base.pca3")
    assert codes.shape == (200, 3) and md5s == store.md5s("base")
    # PCA of the standardised columns (population standard deviation), by SVD here.
    centred = (values - values.mean(axis=0)) / values.std(axis=0)
    assert np.allclose(
        np.abs(np.linalg.svd(centred, full_matrices=False)[2][:3] @ centred.T), np.abs(codes.T), atol=1e-3
    )
    assert (tmp_path / "out" / "base.pca_scree.png").exists()
    with sessions() as session:
        row = session.get(FeatureSet, "base.pca3")
    assert (row.parent, row.dimension, row.n_rows) == ("base", 3, 200)


def test_autoencoder_codes_reconstruct_better_than_the_mean(sessions, stored, tmp_path):
    store, values = stored
    result = reduce_feature_set(
        sessions, store, "base", "ae", 3, tmp_path / "out", hidden=(32, 16), epochs=40, batch_size=20
    )
    assert store.dimension("base.ae3") == 3
    assert result["reconstruction_mse"] < 0.5 * values.var(axis=0).mean()
    assert (tmp_path / "out" / "base.ae3.model").is_dir()


def test_bad_requests_are_clear(sessions, stored, tmp_path):
    store, _ = stored
    with pytest.raises(StudyError, match="code size"):
        reduce_feature_set(sessions, store, "base", "pca", 20, tmp_path)
    with pytest.raises(StudyError, match="unknown method"):
        reduce_feature_set(sessions, store, "base", "tsne", 2, tmp_path)
    with pytest.raises(StudyError, match="no images"):
        reduce_feature_set(sessions, store, "base", "pca", 2, tmp_path, subset="nothing")
    store.append("tiny", [f"{index:032x}" for index in range(2)], np.ones((2, 4)))
    with pytest.raises(StudyError, match="at least 3"):
        reduce_feature_set(sessions, store, "tiny", "pca", 2, tmp_path)


def test_grid_search_picks_the_best_held_out_configuration(sessions, stored, tmp_path):
    from semcurate.features.autoencoder import TiedAutoencoder

    store, values = stored
    result = reduce_feature_set(sessions, store, "base", "ae", 3, tmp_path / "out", epochs=1, batch_size=50, grid=True)
    grid = result["grid"]
    assert len(grid) == 3 * 3 * 2  # h1 in 200/400/600, h2 in 50/100/200, tying none/outer (thesis §3.2.4)
    assert {(row["h1"], row["h2"]) for row in grid} == {(h1, h2) for h1 in (200, 400, 600) for h2 in (50, 100, 200)}
    assert {"architecture", "n_parameters", "train_mse", "heldout_mse"} <= set(grid[0])  # the printed columns
    held_out = [row["heldout_mse"] for row in grid]
    assert held_out == sorted(held_out)
    assert (result["hidden"], result["tying"]) == ([grid[0]["h1"], grid[0]["h2"]], grid[0]["tying"])
    assert store.dimension("base.ae3") == 3
    # the codes are the grid's best model's own (thesis §3.2.4): loaded from its folder, it codes the rows the same
    # and reconstructs them with the error the result reports, its held-out error the grid's
    model = TiedAutoencoder.load(tmp_path / "out" / "base.ae3.model")
    assert model.n_hidden == (grid[0]["h1"], grid[0]["h2"], 3)
    np.testing.assert_allclose(store.read("base.ae3")[1], model.transform(values), rtol=1e-5, atol=1e-6)
    assert result["reconstruction_mse"] == pytest.approx(-model.score(values), rel=1e-5)
    assert result["heldout_mse"] == grid[0]["heldout_mse"] and "model" not in grid[0]
    assert [path.name for path in (tmp_path / "out").iterdir() if path.name.startswith(".grid")] == []


def test_a_reduction_that_finds_the_store_being_written_stops_before_writing_anything(sessions, stored, tmp_path):
    """Another process writing the store (a second ``reduce`` of the same set publishing its model and codes):
    the run stops with the store's one-line busy error and leaves no model, no codes, no catalogue row and no
    JSON behind (the grid's runs publish under the same lock, one model instead of eighteen here)."""
    from semcurate.features.store import FeatureStoreBusy

    store, _values = stored
    out = tmp_path / "out"
    with FeatureStore(store.path).writing():  # its own open file, so its flock is another holder's
        with pytest.raises(FeatureStoreBusy, match="wait for it or stop it"):
            reduce_feature_set(sessions, store, "base", "ae", 3, out, epochs=1, batch_size=50)
    assert sorted(path.name for path in out.iterdir()) == []
    assert "base.ae3" not in store.names()
    with sessions() as session:
        assert session.query(FeatureSet).filter_by(name="base.ae3").count() == 0
    # once the store is free, the same call writes them all
    result = reduce_feature_set(sessions, store, "base", "ae", 3, out, epochs=1, batch_size=50)
    assert result["feature_set"] == "base.ae3" and (out / "base.ae3.model").is_dir()
    assert store.dimension("base.ae3") == 3


def test_pca_without_preprocessing_is_the_variance_of_the_widest_columns(sessions, stored, tmp_path):
    store, values = stored
    wide = values * np.r_[1000.0, np.ones(values.shape[1] - 1)]  # one column 1,000 times wider
    store.append("wide", store.md5s("base"), wide)
    raw = reduce_feature_set(sessions, store, "wide", "pca", 1, tmp_path / "raw", preprocessing="none")
    scaled = reduce_feature_set(sessions, store, "wide", "pca", 1, tmp_path / "scaled")
    # Raw, the first component is the wide column alone and "explains" nearly everything.
    share_of_wide = wide[:, 0].var() / wide.var(axis=0).sum()
    assert raw["explained_variance"] == pytest.approx(share_of_wide, abs=0.01) and share_of_wide > 0.99
    assert scaled["explained_variance"] < 0.9
