"""The 2-NN estimator: known dimensions, scikit-dimension as a peer, duplicates, the contract, the scan.

Every expected value is a true dimension or a hand-made property, never a number the code under test produced.
"""

from __future__ import annotations

import numpy as np
import pytest
import skdim
from matplotlib.figure import Figure
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator

from semcurate.features import TwoNN
from semcurate.features.intrinsic_dimension import (
    IdScan,
    _two_nearest,
    estimates_at,
    id_scan,
    plot_fit,
    plot_scan,
    suggest_code_size,
)


def rotation(ambient: int, dimension: int, rng: np.random.Generator) -> np.ndarray:
    """``dimension`` orthonormal rows of a random rotation of ``ambient``-space, shape (dimension, ambient)."""
    return np.linalg.qr(rng.normal(size=(ambient, ambient)))[0][:dimension]


def embedded_cube(n: int, dimension: int, ambient: int, seed: int = 0) -> np.ndarray:
    """Uniform points of the unit ``dimension``-cube, rotated into ``ambient`` dimensions."""
    rng = np.random.default_rng(seed)
    return rng.random((n, dimension)) @ rotation(ambient, dimension, rng)


def embedded_ball(n: int, dimension: int, ambient: int, seed: int = 0) -> np.ndarray:
    """Uniform points of the unit ``dimension``-ball, rotated into ``ambient`` dimensions."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n, dimension))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = rng.random((n, 1)) ** (1.0 / dimension)
    return directions * radii @ rotation(ambient, dimension, rng)


# Why these tolerances: with N = 5,000 the estimate's statistical spread is about d / sqrt(0.9 N), ~1.5 % of d.
# The larger error is a bias: points near the boundary of a cube or ball miss neighbours on one side, which
# lowers the estimate, and the share of such points grows with the dimension (about 3 % low at d = 5 in a
# ball, 10 % at d = 10).  Hence 10 % up to d = 5 and 15 % at d = 10.  These ambient dimensions (20-50) take
# the brute-force search; the k-d tree (up to 15 columns) is exercised by the tests further down.
@pytest.mark.parametrize(
    ("dimension", "ambient", "tolerance"), [(1, 20, 0.10), (2, 30, 0.10), (5, 30, 0.10), (10, 50, 0.15)]
)
def test_recovers_the_dimension_of_a_linearly_embedded_ball(dimension, ambient, tolerance):
    estimate = TwoNN().fit(embedded_ball(5000, dimension, ambient)).dimension_
    assert estimate == pytest.approx(dimension, rel=tolerance)


# A cube's corners and edges add to the boundary bias: 5 to 11 % low at d = 5 over seeds, hence 15 % there.
@pytest.mark.parametrize(("dimension", "tolerance"), [(1, 0.10), (2, 0.10), (5, 0.15)])
def test_recovers_the_dimension_of_a_linearly_embedded_cube(dimension, tolerance):
    estimate = TwoNN().fit(embedded_cube(5000, dimension, 30, seed=1)).dimension_
    assert estimate == pytest.approx(dimension, rel=tolerance)


# scikit-dimension pairs the i-th smallest ratio with F = (i + 1) / N where the thesis (and we) use i / N,
# and keeps int(N * (1 - discard_fraction)) ratios like our floor(N * fraction): the one-rank shift moves
# the slope by well under 0.5 % at N = 3,000.  12 columns take its tree search, 40 its distance matrix.
@pytest.mark.parametrize(("ambient", "seed"), [(12, 0), (40, 1), (40, 2)])
def test_agrees_with_scikit_dimension(ambient, seed):
    X = embedded_cube(3000, 6, ambient, seed)
    ours = TwoNN(fraction=0.9).fit(X).dimension_
    peer = skdim.id.TwoNN(discard_fraction=0.1).fit(X).dimension_
    assert ours == pytest.approx(peer, rel=0.005)


@pytest.mark.parametrize("ambient", [3, 30])  # the k-d tree and the brute-force search
def test_duplicates_are_collapsed_and_counted(ambient):
    X = embedded_cube(1000, 3, ambient)
    rng = np.random.default_rng(5)
    copies = X[rng.choice(1000, size=200, replace=False)]
    with_copies = np.vstack([X, copies, copies[:50]])  # 50 points appear three times
    plain, deduplicated = TwoNN().fit(X), TwoNN().fit(rng.permutation(with_copies))
    assert plain.n_duplicates_ == 0 and deduplicated.n_duplicates_ == 250
    assert deduplicated.mu_.size == 1000
    assert deduplicated.dimension_ == pytest.approx(plain.dimension_, rel=1e-12)


def test_negative_zero_is_a_duplicate_of_zero():
    X = embedded_cube(300, 2, 4)
    X[0] = 0.0
    X[1] = -0.0
    assert TwoNN().fit(X).n_duplicates_ == 1


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.ones((10, 4)), "identical"),
        (np.vstack([np.ones((10, 4)), np.zeros((5, 4))]), "identical"),
        (np.zeros((2, 3)), "at least 3 points"),
        (np.array([[0.0, np.nan]] * 5), "NaN"),
        (np.array([[0.0, np.inf]] * 5), "infinity"),
        (np.arange(5.0), "2D array"),
    ],
)
def test_bad_input_is_a_clear_error(X, message):
    with pytest.raises(ValueError, match=message):
        TwoNN().fit(X)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_fraction_must_be_a_share(fraction):
    with pytest.raises(ValueError, match="fraction"):
        TwoNN(fraction=fraction).fit(embedded_cube(100, 2, 4))


def test_fraction_must_be_a_number():
    with pytest.raises(TypeError, match=r"fraction must be a real number in \(0, 1\], got '0.9'"):
        TwoNN(fraction="0.9").fit(embedded_cube(100, 2, 4))
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        TwoNN(fraction=float("nan")).fit(embedded_cube(100, 2, 4))


def test_a_regular_lattice_has_no_slope():
    # On a line of evenly spaced points every interior point has r1 == r2, so the first 90 % of the
    # sorted ratios are all exactly 1 and log(mu) is 0: the slope is undefined.
    line = np.arange(100.0).reshape(-1, 1) * [1.0, 2.0]
    with pytest.raises(ValueError, match="lattice"):
        TwoNN().fit(line)


def test_scikit_learn_contract():
    estimator = TwoNN(fraction=0.7)
    assert clone(estimator).get_params() == {"fraction": 0.7}
    assert not hasattr(estimator, "dimension_")
    fitted = estimator.fit(embedded_cube(500, 2, 5))
    assert fitted is estimator and fitted.n_features_in_ == 5
    assert fitted.get_params() == {"fraction": 0.7}


def test_passes_scikit_learn_estimator_checks():
    # Fails with the first check that does not pass (the array-API check skips without SCIPY_ARRAY_API).
    check_estimator(TwoNN())


def test_float32_input_gives_the_float64_estimate():
    X = embedded_cube(2000, 3, 6).astype(np.float32)
    assert TwoNN().fit(X).dimension_ == pytest.approx(TwoNN().fit(X.astype(np.float64)).dimension_, rel=1e-6)


def test_tree_and_brute_force_searches_find_the_same_neighbours():
    X = embedded_cube(2000, 4, 8)  # 8 columns: k-d tree
    padded = np.hstack([X, np.zeros((2000, 12))])  # the same points in 20 columns: brute force
    for tree_distances, brute_distances in zip(_two_nearest(X), _two_nearest(padded), strict=True):
        np.testing.assert_allclose(brute_distances, tree_distances, rtol=1e-12)


def test_fit_points_follow_the_thesis_construction():
    fitted = TwoNN(fraction=0.5).fit(embedded_cube(400, 2, 3))
    ranks = np.arange(400)
    assert np.all(np.diff(fitted.mu_) >= 0) and fitted.mu_[0] >= 1.0
    np.testing.assert_allclose(fitted.neg_log_survival_, -np.log(1 - ranks / 400))
    assert fitted.n_fitted_ == 200
    x, y = fitted.log_mu_[:200], fitted.neg_log_survival_[:200]
    assert fitted.dimension_ == pytest.approx(np.linalg.lstsq(x[:, None], y, rcond=None)[0][0])


def test_estimates_at_match_one_fit_per_fraction():
    X = embedded_cube(1500, 3, 20)
    estimates = estimates_at(X)
    assert list(estimates) == [1.0, 0.9, 0.7, 0.5]
    for fraction, estimate in estimates.items():
        assert estimate == TwoNN(fraction=fraction).fit(X).dimension_


def test_scan_and_code_size_on_a_five_dimensional_set():
    X = embedded_cube(3000, 5, 20)
    scan = id_scan(X, repeats=3, random_state=0)
    assert scan.sizes[0] == 50 and scan.sizes[-1] == 3000 and np.all(np.diff(scan.sizes) > 0)
    assert scan.estimates.shape == (scan.sizes.size, 3)
    assert scan.means.shape == scan.stds.shape == scan.sizes.shape
    assert scan.stds[-1] == 0.0  # every subsample of the full size is the full set
    assert suggest_code_size(scan) in (5, 6)


def test_scan_is_reproducible_and_checks_sizes():
    X = embedded_cube(400, 2, 3)
    first, second = id_scan(X, sizes=[20, 100], random_state=3), id_scan(X, sizes=[100, 20], random_state=3)
    np.testing.assert_array_equal(first.estimates, second.estimates)
    with pytest.raises(ValueError, match="sizes"):
        id_scan(X, sizes=[2, 100])
    with pytest.raises(ValueError, match="sizes"):
        id_scan(X, sizes=[401])


def test_plateau_is_the_longest_level_run_not_the_largest_sizes():
    # The thesis' thick line (Figs. 3.4, 3.5): about 1 at small sizes, climbing towards 2 once the noise is
    # resolved.  The plateau is the level run near 1, so the code size is ceil(~1.05) = 2, not ceil(1.8).
    means = np.array([1.04, 1.02, 1.03, 1.02, 1.05, 1.3, 1.6, 1.8])
    scan = IdScan(sizes=np.geomspace(50, 50_000, means.size).astype(int), estimates=means[:, None])
    assert suggest_code_size(scan) == 2
    rising = IdScan(sizes=np.array([10, 100, 1000]), estimates=np.array([[2.0], [4.0], [8.5]]))
    assert suggest_code_size(rising) == 9  # no plateau: the largest estimate bounds the dimension


def test_plots_are_figures_with_one_axes():
    X = embedded_cube(1000, 2, 3)
    fit_figure = plot_fit(TwoNN().fit(X))
    scan_figure = plot_scan(id_scan(X, repeats=2, random_state=0))
    for figure in (fit_figure, scan_figure):
        assert isinstance(figure, Figure) and len(figure.axes) == 1
    assert "slope" in " ".join(text.get_text() for text in fit_figure.axes[0].get_legend().get_texts())
    assert scan_figure.axes[0].get_xscale() == "log"


def test_the_study_of_unchanged_rows_is_read_back_not_run_again(sessions, tmp_path, monkeypatch):
    """`semcurate demo` run again skips the ID study; a feature set that grew is studied anew."""
    from semcurate.features import intrinsic_dimension
    from semcurate.features.analysis import id_study
    from semcurate.features.store import FeatureStore

    rng = np.random.default_rng(0)
    store = FeatureStore(tmp_path / "features.h5")
    store.append(
        "base", [f"{index:032x}" for index in range(300)], rng.normal(size=(300, 4)) @ rng.normal(size=(4, 12))
    )
    first = id_study(sessions, store, "base", tmp_path / "id", repeats=2)
    assert 3.0 < first["estimates"]["0.9"] < 5.0  # points on a 4-D plane
    with monkeypatch.context() as patched:
        patched.setattr(intrinsic_dimension, "id_scan", lambda *_, **__: pytest.fail("the study ran again"))
        assert id_study(sessions, store, "base", tmp_path / "id", repeats=2) == first
    store.append("base", [f"{index:032x}" for index in range(300, 350)], rng.normal(size=(50, 12)))
    assert id_study(sessions, store, "base", tmp_path / "id", repeats=2)["rows"] == 350
    # Another 350 images (as a subset redrawn to the same size): only the md5s differ, and it is studied anew.
    store.append("other", [f"{index:032x}" for index in range(50, 400)], rng.normal(size=(350, 12)))
    import json

    earlier = json.loads((tmp_path / "id" / "base.id.json").read_text())
    assert earlier["rows"] == 350
    (tmp_path / "id" / "other.id.json").write_text(json.dumps({**earlier, "feature_set": "other"}))
    for plot in ("id_fit", "id_scan"):
        (tmp_path / "id" / f"other.{plot}.png").write_bytes((tmp_path / "id" / f"base.{plot}.png").read_bytes())
    with monkeypatch.context() as patched:
        patched.setattr(intrinsic_dimension, "id_scan", lambda *_, **__: pytest.fail("the study ran again"))
        with pytest.raises(pytest.fail.Exception, match="ran again"):
            id_study(sessions, store, "other", tmp_path / "id", repeats=2)
    assert id_study(sessions, store, "base", tmp_path / "id", repeats=3)["repeats"] == 3
