"""The 2-NN estimator: known dimensions, scikit-dimension as a peer, duplicates, the scan."""

from __future__ import annotations

import numpy as np
import pytest
import skdim
from sklearn.base import clone

from semcurate.features import TwoNN
from semcurate.features.intrinsic_dimension import estimates_at, id_scan, plot_fit, plot_scan, suggest_code_size


def embedded_cube(n: int, dimension: int, ambient: int, seed: int = 0) -> np.ndarray:
    """Uniform points of a ``dimension``-cube, rotated into ``ambient`` dimensions."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(ambient, ambient)))[0][:dimension]
    return rng.random((n, dimension)) @ basis


@pytest.mark.parametrize("dimension", [1, 2, 5])
def test_recovers_the_dimension_of_a_linear_manifold(dimension):
    # 5,000 uniform points: the 2-NN estimate is unbiased for locally uniform data; 10 % covers its spread
    # and the boundary effect of the cube, which grows with the dimension.
    estimate = TwoNN().fit(embedded_cube(5000, dimension, 30)).dimension_
    assert estimate == pytest.approx(dimension, rel=0.10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_scikit_dimension(seed):
    X = embedded_cube(3000, 6, 40, seed)
    ours = TwoNN(fraction=0.9).fit(X).dimension_
    peer = skdim.id.TwoNN(discard_fraction=0.1).fit(X).dimension_
    assert ours == pytest.approx(peer, rel=0.005)


def test_duplicates_are_collapsed_and_counted():
    X = embedded_cube(1000, 3, 10)
    doubled = np.vstack([X, X[:200]])
    plain, with_copies = TwoNN().fit(X), TwoNN().fit(doubled)
    assert with_copies.n_duplicates_ == 200 and plain.n_duplicates_ == 0
    assert with_copies.dimension_ == pytest.approx(plain.dimension_)


@pytest.mark.parametrize(
    "X, message",
    [(np.ones((10, 4)), "identical"), (np.zeros((2, 3)), "at least 3"), (np.array([[0.0, np.nan]] * 5), "NaN")],
)
def test_bad_input_is_a_clear_error(X, message):
    with pytest.raises(ValueError, match=message):
        TwoNN().fit(X)


def test_fraction_must_be_a_share():
    with pytest.raises(ValueError, match="fraction"):
        TwoNN(fraction=1.5).fit(embedded_cube(100, 2, 4))


def test_scikit_learn_contract():
    estimator = TwoNN(fraction=0.7)
    assert clone(estimator).get_params() == {"fraction": 0.7}
    assert not hasattr(estimator, "dimension_")
    fitted = estimator.fit(embedded_cube(500, 2, 5))
    assert fitted is estimator and fitted.n_features_in_ == 5


def test_scan_and_code_size_on_a_five_dimensional_set():
    X = embedded_cube(3000, 5, 20)
    scan = id_scan(X, repeats=3, random_state=0)
    assert list(scan.sizes) == sorted(scan.sizes) and scan.sizes[-1] == 3000
    assert scan.estimates.shape == (len(scan.sizes), 3)
    assert suggest_code_size(scan) in (5, 6)
    assert set(estimates_at(X)) == {1.0, 0.9, 0.7, 0.5}
    assert len(plot_fit(TwoNN().fit(X)).axes) == 1 and len(plot_scan(scan).axes) == 1


def test_tree_and_brute_force_searches_agree():
    X = embedded_cube(2000, 4, 8)  # 8 columns: k-d tree
    padded = np.hstack([X, np.zeros((2000, 6))])  # same points in 14 columns: brute force
    assert TwoNN().fit(padded).dimension_ == pytest.approx(TwoNN().fit(X).dimension_, rel=1e-9)
