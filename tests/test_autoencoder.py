"""TiedAutoencoder (thesis section 3.2): tying, phases, reconstruction, persistence, sklearn contract, bad input.

The data are 300 points in 40 dimensions near a 3-D curved manifold
(``tanh`` of a random linear map of 3 latent normals, plus 5 % noise); the
networks are (32, 16, 3), so every fit takes a second or two on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from semcurate.features.autoencoder import (
    GRID_CODES_FILE,
    PHASES,
    TiedAutoencoder,
    grid_search,
    parse_tying,
    tying_label,
)

pytestmark = pytest.mark.slow  # trains autoencoders with TensorFlow

N_FEATURES = 40
HIDDEN = (32, 16, 3)
FAST = {"n_hidden": HIDDEN, "batch_size": 64, "random_state": 0}


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(7)
    latent = rng.normal(size=(300, 3))
    mixing = rng.normal(size=(3, N_FEATURES))
    return np.tanh(latent @ mixing) + 0.05 * rng.normal(size=(300, N_FEATURES))


@pytest.fixture(scope="module")
def trained(data) -> TiedAutoencoder:
    """Outer pair tied, global training on the first 240 rows; rows 240-299 stay unseen."""
    model = TiedAutoencoder(
        n_hidden=HIDDEN,
        tying="outer",
        learning_rate=3e-3,
        batch_size=32,
        phases=(("g", 30),),
        validation_fraction=0.1,
        random_state=0,
    )
    return model.fit(data[:240])


def kernel_parameters(model: TiedAutoencoder) -> int:
    """Entries of the distinct kernel variables the Keras network trains."""
    return sum(int(np.prod(w.shape)) for w in model.model_.trainable_weights if w.path.endswith("kernel"))


@pytest.mark.parametrize(
    ("tying", "expected_kernels"),
    [
        # 40*32 + 32*16 + 16*3 in the encoder, the same again in the decoder.
        ("none", 2 * (40 * 32 + 32 * 16 + 16 * 3)),
        # L6 borrows L1's 32x40 kernel.
        ("outer", 2 * (40 * 32 + 32 * 16 + 16 * 3) - 40 * 32),
        ("outer+inner", 2 * (40 * 32 + 32 * 16 + 16 * 3) - 40 * 32 - 16 * 3),
        # Every decoder kernel borrowed: exactly half (thesis 3.2.1).
        ("all", 40 * 32 + 32 * 16 + 16 * 3),
    ],
)
def test_tying_removes_the_decoder_kernels_of_tied_pairs(data, tying, expected_kernels):
    model = TiedAutoencoder(**FAST, tying=tying, phases=(("1_a", 1),)).fit(data[:64])
    assert kernel_parameters(model) == expected_kernels
    biases = 32 + 16 + 3 + 16 + 32 + 40  # every layer keeps its own bias
    assert model.n_parameters_ == expected_kernels + biases
    assert model.info()["n_parameters"] == model.n_parameters_
    assert sum(layer["kernel_parameters"] for layer in model.info()["layers"]) == expected_kernels


def test_tied_decoder_layer_uses_the_transposed_encoder_kernel(trained):
    encoder, decoder = trained.model_.encoder_layers, trained.model_.decoder_layers
    assert decoder[2].partner is encoder[0]  # L6 tied to L1
    assert not hasattr(decoder[0], "partner") and not hasattr(decoder[1], "partner")
    codes = np.random.default_rng(0).normal(size=(5, 32)).astype(np.float32)
    expected = codes @ np.asarray(encoder[0].kernel).T + np.asarray(decoder[2].bias)
    np.testing.assert_allclose(np.asarray(decoder[2](codes)), expected, rtol=1e-5, atol=1e-5)


def test_reconstructs_unseen_rows_better_than_the_training_mean(trained, data):
    heldout = data[240:]
    constant = np.mean((heldout - data[:240].mean(axis=0)) ** 2)
    error = np.mean((heldout - trained.reconstruct(heldout)) ** 2)
    # Three latent dimensions and three codings: the network should explain most of the variance.
    assert error < 0.5 * constant
    assert trained.score(heldout) == pytest.approx(-error)


def test_shapes_and_units(trained, data):
    codes = trained.transform(data[240:])
    assert codes.shape == (60, 3)
    assert np.all(codes > -1)  # the codings layer is ELU
    decoded = trained.inverse_transform(codes)
    assert decoded.shape == (60, N_FEATURES)
    np.testing.assert_allclose(decoded, trained.reconstruct(data[240:]))
    assert trained.n_features_in_ == N_FEATURES


def test_history_and_info(trained):
    (entry,) = trained.history_
    assert entry["phase"] == "g" and entry["epochs"] == 30
    assert len(entry["loss"]) == 30 and len(entry["val_loss"]) == 30
    assert entry["loss"][-1] < entry["loss"][0]
    info = trained.info()
    assert set(info) == {"n_features_in", "n_hidden", "tied_pairs", "layers", "n_parameters", "standardize", "history"}
    assert info["tied_pairs"] == ["outer"]
    assert [layer["name"] for layer in info["layers"]] == ["L1", "L2", "L3", "L4", "L5", "L6"]
    assert [layer["units_out"] for layer in info["layers"]] == [32, 16, 3, 16, 32, 40]
    assert [layer["tied_to"] for layer in info["layers"]] == [None] * 5 + ["L1"]
    assert info["layers"][-1]["activation"] == "linear"
    assert {layer["activation"] for layer in info["layers"][:-1]} == {"elu"}
    assert info["history"] == [
        {"phase": "g", "epochs": 30, "final_loss": entry["loss"][-1], "final_val_loss": entry["val_loss"][-1]}
    ]


def test_save_load_round_trip(trained, data, tmp_path):
    trained.save(tmp_path / "ae")
    loaded = TiedAutoencoder.load(tmp_path / "ae")
    np.testing.assert_array_equal(loaded.transform(data), trained.transform(data))
    np.testing.assert_array_equal(loaded.reconstruct(data), trained.reconstruct(data))
    assert loaded.get_params() == trained.get_params()
    assert loaded.info() == trained.info()
    # The tying survives: L6 still borrows L1's kernel rather than a copy of it.
    assert loaded.model_.decoder_layers[2].partner is loaded.model_.encoder_layers[0]


def test_load_rejects_a_folder_without_a_model(tmp_path):
    with pytest.raises(ValueError, match="does not hold"):
        TiedAutoencoder.load(tmp_path)


def test_dense_transpose_serialises_with_its_partner(trained):
    import keras

    from semcurate.features.autoencoder import DenseTranspose

    layer = trained.model_.decoder_layers[2]
    assert isinstance(layer, DenseTranspose)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(copy, DenseTranspose)
    assert copy.partner.units == 32 and copy.get_config()["activation"] == "linear"


def test_clone_keeps_parameters_unchanged():
    model = TiedAutoencoder(n_hidden=(20, 10, 2), tying=("outer", "inner"), phases=(("1_a", 3), ("g", 5)), l2=0.0)
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    assert twin.get_params()["tying"] == ("outer", "inner")
    assert twin.get_params()["phases"] == (("1_a", 3), ("g", 5))
    assert not hasattr(twin, "model_")


def test_same_seed_same_codes(data):
    first = TiedAutoencoder(**FAST, phases=(("g", 2),)).fit(data[:100])
    second = TiedAutoencoder(**FAST, phases=(("g", 2),)).fit(data[:100])
    np.testing.assert_allclose(first.transform(data), second.transform(data), rtol=1e-5, atol=1e-6)


def test_every_phase_runs(data):
    phases = tuple((label, 1) for label in ("1_a", "1_b", "1", "2", "g"))
    model = TiedAutoencoder(**FAST, phases=phases).fit(data[:100])
    assert [entry["phase"] for entry in model.history_] == list(PHASES)
    assert all(np.isfinite(entry["loss"][0]) for entry in model.history_)
    assert model.transform(data[:5]).shape == (5, 3)


def test_a_phase_trains_only_its_layers(data):
    """Same seed, same initial weights: phase 2 leaves L1, L2, L5, L6 alone; phase 1_a leaves L2 ... L5 alone."""
    outer = TiedAutoencoder(**FAST, tying="none", phases=(("1_a", 1),)).fit(data[:100])
    inner = TiedAutoencoder(**FAST, tying="none", phases=(("2", 1),)).fit(data[:100])
    layers = {
        name: [*model.model_.encoder_layers, *model.model_.decoder_layers]
        for name, model in (("outer", outer), ("inner", inner))
    }

    def same(index: int) -> bool:
        return np.array_equal(np.asarray(layers["outer"][index].kernel), np.asarray(layers["inner"][index].kernel))

    assert same(1) and same(4)  # L2, L5: untouched by both
    assert not same(0) and not same(5)  # L1, L6: trained by 1_a only
    assert not same(2) and not same(3)  # L3, L4: trained by 2 only


def _small_grid(data: np.ndarray, **options) -> list[dict]:
    """The grid of h1 16, h2 8, tying none and outer, code 3: two epochs each, batches of 64, seed 0."""
    return grid_search(
        data,
        [16],
        [8],
        ["none", "outer"],
        3,
        phases=(("g", 2),),
        estimator_params={"batch_size": 64},
        random_state=0,
        **options,
    )


def test_grid_search_rows(data):
    rows = _small_grid(data)
    assert len(rows) == 2
    assert rows[0]["heldout_mse"] <= rows[1]["heldout_mse"]
    by_tying = {row["tying"]: row for row in rows}
    assert by_tying["none"]["n_parameters"] - by_tying["outer"]["n_parameters"] == 16 * N_FEATURES
    assert by_tying["outer"]["architecture"] == "T16-8-3"
    assert by_tying["none"]["architecture"] == "16-8-3"
    assert set(rows[0]) == {
        "h1",
        "h2",
        "code",
        "tying",
        "architecture",
        "n_parameters",
        "train_mse",
        "heldout_mse",
        "train_rows",
        "heldout_rows",
    }
    n_heldout = round(0.1 * len(data))  # validation_fraction 0.1 of the rows
    assert [(row["train_rows"], row["heldout_rows"]) for row in rows] == [(len(data) - n_heldout, n_heldout)] * 2
    # Two spawned processes train the same models on the same split: the same rows, to float rounding.
    in_two = _small_grid(data, n_jobs=2)
    assert [row["architecture"] for row in in_two] == [row["architecture"] for row in rows]
    for ours, theirs in zip(in_two, rows, strict=True):
        assert ours["heldout_mse"] == pytest.approx(theirs["heldout_mse"], rel=1e-4)


def test_grid_search_keeps_each_model_with_its_codes_of_every_row(data, tmp_path):
    """``models_dir``: each configuration's model, loaded again, codes ``X`` as the codes saved beside it, row by row
    in ``X``'s order, and scores as its grid row says."""
    rows = _small_grid(data, n_jobs=2, models_dir=tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["16-8-3", "T16-8-3"]
    for row in rows:
        model = TiedAutoencoder.load(row["model"])
        np.testing.assert_allclose(np.load(Path(row["model"]) / GRID_CODES_FILE), model.transform(data), rtol=1e-5)
        assert model.tied_ == parse_tying(row["tying"])
        n_heldout = round(0.1 * len(data))  # held out and trained on: the error over all rows lies between
        overall = -model.score(data)
        assert overall == pytest.approx(
            ((len(data) - n_heldout) * row["train_mse"] + n_heldout * row["heldout_mse"]) / len(data), rel=1e-4
        )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("outer", ("outer",)),
        ("inner+outer", ("outer", "inner")),
        ("all", ("outer", "middle", "inner")),
        ("none", ()),
        (None, ()),
        (("middle",), ("middle",)),
    ],
)
def test_parse_tying(spec, expected):
    assert parse_tying(spec) == expected


def test_tying_label():
    assert [tying_label(t) for t in [(), ("outer",), ("outer", "inner"), ("outer", "middle", "inner")]] == [
        "none",
        "outer",
        "outer+inner",
        "all",
    ]


def test_transform_before_fit():
    with pytest.raises(NotFittedError):
        TiedAutoencoder().transform(np.zeros((3, 4)))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"phases": (("3", 1),)}, "unknown phase"),
        ({"phases": (("g", 0),)}, "positive integer"),
        ({"phases": ()}, "at least one"),
        ({"tying": "outer+sideways"}, "unknown pair"),
        ({"n_hidden": (32, 16)}, "three positive"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_parameters_raise_at_fit(data, params, message):
    model = TiedAutoencoder(**params)  # construction never validates
    with pytest.raises(ValueError, match=message):
        model.fit(data[:10])


def test_bad_input(trained, data):
    with_nan = data[:10].copy()
    with_nan[3, 5] = np.nan
    with pytest.raises(ValueError):
        TiedAutoencoder(**FAST).fit(with_nan)
    with pytest.raises(ValueError, match="minimum of 2"):
        TiedAutoencoder(**FAST).fit(data[:1])
    with pytest.raises(ValueError, match="features"):
        trained.transform(data[:5, :30])
    with pytest.raises(ValueError, match="columns"):
        trained.inverse_transform(np.zeros((5, 4)))
    with pytest.raises(ValueError):
        trained.transform(with_nan)
