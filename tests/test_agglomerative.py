"""Agglomerative linkage against SciPy, and cutting trees into exactly k clusters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster import hierarchy as scipy_hierarchy

from semcurate.clustering.agglomerative import (
    LINKAGE_METHODS,
    LinkageMemoryError,
    linkage,
    linkage_in_place,
    matrix_bytes,
)
from semcurate.clustering.hierarchy import Cutter, HierarchyError, check_linkage, cut, first_appearance


@pytest.fixture(scope="module")
def points():
    """Three loose Gaussian groups in 6-D: distinct distances, so merge order is unambiguous."""
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 4, (3, 6))
    return np.vstack([centre + rng.normal(0, 1, (100, 6)) for centre in centres])


@pytest.mark.parametrize("method", LINKAGE_METHODS)
def test_linkage_equals_scipy_heights_and_every_partition(points, method):
    ours, theirs = linkage(points, method), scipy_hierarchy.linkage(points, method)
    assert ours.shape == (len(points) - 1, 4)
    np.testing.assert_allclose(ours[:, 2], theirs[:, 2], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours[:, 3], theirs[:, 3])
    ours_cut, theirs_cut = Cutter(ours), Cutter(theirs)
    for k in range(1, len(points) + 1):
        np.testing.assert_array_equal(ours_cut.labels(k), theirs_cut.labels(k), err_msg=f"{method}, k = {k}")


@pytest.mark.parametrize("method", ["single", "complete", "average", "ward"])
def test_cutter_agrees_with_scipy_fcluster_on_monotone_trees(points, method):
    tree = scipy_hierarchy.linkage(points, method)
    cutter = Cutter(tree)
    for k in (1, 2, 3, 5, 17, 150, 299, 300):
        expected = first_appearance(scipy_hierarchy.fcluster(tree, k, criterion="maxclust"))
        np.testing.assert_array_equal(cutter.labels(k), expected)


def test_cut_gives_exactly_k_clusters_when_centroid_heights_invert():
    rng = np.random.default_rng(3)
    tree = linkage(rng.normal(size=(200, 2)), "centroid")
    assert np.any(np.diff(tree[:, 2]) < 0), "this sample should contain an inversion"
    for k in range(1, 201):
        labels = cut(tree, k)
        assert labels.max() + 1 == k and set(np.unique(labels)) == set(range(k))


def test_successive_cuts_refine_by_splitting_one_cluster(points):
    cutter = Cutter(linkage(points, "ward"))
    previous = cutter.labels(1)
    for k in range(2, 60):
        current = cutter.labels(k)
        pairs = set(zip(previous.tolist(), current.tolist(), strict=True))
        assert len(pairs) == k, "every new cluster lies inside one old cluster"
        assert len({old for old, _ in pairs}) == k - 1
        previous = current


def test_ward_recovers_separated_groups(points):
    truth = np.repeat(np.arange(3), 100)
    np.testing.assert_array_equal(cut(linkage(points, "ward"), 3), first_appearance(truth))


def test_duplicate_points_merge_at_height_zero():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(20, 3))
    tree = linkage(np.vstack([base, base]), "ward")
    assert np.count_nonzero(tree[:, 2] == 0) == 20
    assert cut(tree, 20).max() == 19


def test_matrix_methods_refuse_beyond_the_memory_limit_with_the_numbers():
    points = np.zeros((1000, 2)) + np.arange(1000)[:, None]
    with pytest.raises(LinkageMemoryError, match=r"complete linkage of 1,000 points needs .* GiB.*ward, centroid"):
        linkage(points, "complete", memory_limit=matrix_bytes(1000, 2) - 1)
    assert linkage(points, "complete", memory_limit=matrix_bytes(1000, 2)).shape == (999, 4)


def test_matrix_bytes_counts_the_condensed_matrix_once_plus_linear_terms():
    condensed = 8 * 52_682 * 52_681 // 2  # 11.1 GB, the figure of the 1u-2u subset
    assert condensed < matrix_bytes(52_682, 18) < condensed + 20 * 2**20
    assert matrix_bytes(52_682, 18) < 15e9


def test_complete_linkage_holds_one_condensed_matrix_and_no_copy():
    """Traced NumPy allocations peak at the one n(n-1)/2 array and X; fastcluster.linkage's copy would double it."""
    import tracemalloc

    values = np.random.default_rng(5).normal(size=(3000, 18))
    condensed_bytes = 8 * 3000 * 2999 // 2
    tracemalloc.start()
    try:
        tree = linkage(values, "complete")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert condensed_bytes < peak < 1.3 * condensed_bytes + values.nbytes
    assert peak <= matrix_bytes(*values.shape), "the estimate checked before starting covers the real peak"
    np.testing.assert_allclose(tree[:, 2], scipy_hierarchy.linkage(values, "complete")[:, 2], rtol=1e-12)


def test_linkage_in_place_refuses_a_matrix_it_could_not_safely_write():
    with pytest.raises(ValueError, match="C-contiguous float64"):
        linkage_in_place(np.zeros(6, dtype=np.float32), 4, "complete")
    with pytest.raises(ValueError, match="4 points has 6 entries"):
        linkage_in_place(np.zeros(5), 4, "complete")


@pytest.mark.parametrize(
    ("values", "method", "message"),
    [
        (np.zeros((1, 3)), "ward", "at least 2 points"),
        (np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 2.0]]), "ward", "1 of 3 feature rows contain NaN.*row 1"),
        (np.zeros(5), "ward", "2-D array"),
        (np.zeros((4, 2)), "median-ish", "unknown linkage method 'median-ish'"),
    ],
)
def test_bad_input_gets_one_clear_error(values, method, message):
    with pytest.raises(ValueError, match=message):
        linkage(values, method)


def test_k_outside_one_to_n_is_refused():
    tree = scipy_hierarchy.linkage(np.arange(10.0)[:, None], "single")
    with pytest.raises(HierarchyError, match="k = 11 clusters asked of a tree over 10 points"):
        cut(tree, 11)
    with pytest.raises(HierarchyError, match="k = 0"):
        cut(tree, 0)


def test_check_linkage_rejects_trees_that_merge_a_node_twice_or_from_the_future():
    tree = scipy_hierarchy.linkage(np.arange(5.0)[:, None], "single")
    twice = tree.copy()
    twice[1, :2] = twice[0, :2]
    with pytest.raises(HierarchyError, match="twice"):
        check_linkage(twice)
    future = tree.copy()
    future[0, 1] = 8
    with pytest.raises(HierarchyError, match="created before"):
        check_linkage(future)
    with pytest.raises(HierarchyError, match="shape"):
        check_linkage(np.zeros((3, 3)))


def test_every_linkage_runs_either_from_the_observations_or_from_the_matrix():
    from semcurate.clustering.agglomerative import MATRIX_METHODS, VECTOR_METHODS
    from semcurate.clustering.methods import LINKAGE_METHODS

    assert sorted(VECTOR_METHODS + MATRIX_METHODS) == sorted(LINKAGE_METHODS)
    assert not set(VECTOR_METHODS) & set(MATRIX_METHODS)
