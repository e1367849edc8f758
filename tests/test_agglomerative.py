"""Agglomerative linkage against SciPy, and cutting trees into exactly k clusters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster import hierarchy as scipy_hierarchy

from semcurate.clustering.agglomerative import (
    LINKAGE_METHODS,
    LinkageMemoryError,
    complete_linkage_in_place,
    condensed_distances,
    linkage,
    linkage_in_place,
    matrix_bytes,
    scipy_linkage_order,
)
from semcurate.clustering.hierarchy import Cutter, HierarchyError, check_linkage, cut, first_appearance


@pytest.fixture(scope="module")
def points():
    """Three loose Gaussian groups in 6-D: distinct distances, so merge order is unambiguous."""
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 4, (3, 6))
    return np.vstack([centre + rng.normal(0, 1, (100, 6)) for centre in centres])


#: Complete linkage keeps its distances in float32: heights are SciPy's rounded to 24 bits.
HEIGHT_RTOL = {"complete": 2**-24}


@pytest.mark.parametrize("method", LINKAGE_METHODS)
def test_linkage_equals_scipy_heights_and_every_partition(points, method):
    ours, theirs = linkage(points, method), scipy_hierarchy.linkage(points, method)
    assert ours.shape == (len(points) - 1, 4)
    np.testing.assert_allclose(ours[:, 2], theirs[:, 2], rtol=HEIGHT_RTOL.get(method, 1e-10), atol=1e-12)
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


@pytest.mark.parametrize("method", ["complete", "average"])
def test_matrix_methods_refuse_beyond_the_memory_limit_with_the_numbers(method):
    points = np.zeros((1000, 2)) + np.arange(1000)[:, None]
    with pytest.raises(LinkageMemoryError, match=rf"{method} linkage of 1,000 points needs .* GiB.*ward, centroid"):
        linkage(points, method, memory_limit=matrix_bytes(1000, 2, method) - 1)
    assert linkage(points, method, memory_limit=matrix_bytes(1000, 2, method)).shape == (999, 4)


def test_matrix_bytes_counts_the_condensed_matrix_once_plus_linear_terms():
    pairs = 52_682 * 52_681 // 2  # 1.39e9 distances in the 1u-2u subset
    assert 8 * pairs < matrix_bytes(52_682, 18, "average") < 8 * pairs + 20 * 2**20
    assert 4 * pairs < matrix_bytes(52_682, 18, "complete") < 4 * pairs + 40 * 2**20
    assert matrix_bytes(52_682, 18, "complete") < 8e9, "complete linkage of the 1u-2u subset within issue 17's 8 GB"
    with pytest.raises(ValueError, match="'ward' is not a distance-matrix method"):
        matrix_bytes(10, 2, "ward")


def traced_peak(method: str, values: np.ndarray) -> tuple[int, np.ndarray]:
    """Peak traced NumPy allocation (bytes) of ``linkage(values, method)``, and the tree."""
    import tracemalloc

    tracemalloc.start()
    try:
        tree = linkage(values, method)
        return tracemalloc.get_traced_memory()[1], tree
    finally:
        tracemalloc.stop()


def test_average_linkage_holds_one_float64_matrix_and_no_copy():
    """Traced peak at the one n(n-1)/2 float64 array and X; fastcluster.linkage's copy would double it."""
    values = np.random.default_rng(5).normal(size=(3000, 18))
    condensed_bytes = 8 * 3000 * 2999 // 2
    peak, tree = traced_peak("average", values)
    assert condensed_bytes < peak < 1.3 * condensed_bytes + values.nbytes
    assert peak <= matrix_bytes(*values.shape, "average"), "the estimate checked before starting covers the real peak"
    np.testing.assert_allclose(tree[:, 2], scipy_hierarchy.linkage(values, "average")[:, 2], rtol=1e-12)


def test_complete_linkage_holds_one_float32_matrix_half_of_what_float64_needs():
    """Traced peak at the float32 matrix plus one block of float64 distances: well under one float64 matrix."""
    values = np.random.default_rng(5).normal(size=(6000, 18))
    float32_bytes = 4 * 6000 * 5999 // 2
    peak, tree = traced_peak("complete", values)
    assert float32_bytes < peak < 0.65 * (2 * float32_bytes), "the float64 matrix fastcluster needs is 2x float32"
    assert peak <= matrix_bytes(*values.shape, "complete"), "the estimate checked before starting covers the real peak"
    np.testing.assert_allclose(tree[:, 2], scipy_hierarchy.linkage(values, "complete")[:, 2], rtol=2**-24)


def test_condensed_distances_are_scipys_pdist_in_blocks(monkeypatch):
    from scipy.spatial.distance import pdist

    import semcurate.clustering.agglomerative as agglomerative

    values = np.random.default_rng(2).normal(size=(41, 5))
    monkeypatch.setattr(agglomerative, "DISTANCE_BLOCK_BYTES", 8 * 41 * 3)  # blocks of 3 rows, the last one short
    np.testing.assert_array_equal(condensed_distances(values), pdist(values).astype(np.float32))
    np.testing.assert_array_equal(condensed_distances(values, np.float64), pdist(values))


@pytest.mark.parametrize("seed", range(4))
def test_complete_linkage_is_scipys_on_the_same_float32_distances_exactly(seed):
    """SciPy given the very distances ours works in: the same merges, heights and sizes, bit for bit."""
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(seed)
    values = rng.normal(size=(int(rng.integers(2, 400)), int(rng.integers(1, 9))))
    distances = pdist(values).astype(np.float32)
    ours = complete_linkage_in_place(distances.copy(), len(values))
    np.testing.assert_array_equal(ours, scipy_hierarchy.linkage(distances.astype(np.float64), "complete"))


def test_complete_linkage_on_tied_distances_gives_scipys_heights_and_a_valid_tree():
    """Points on an integer grid: most distances tie, which a chain must not cycle on."""
    grid = np.array([(x, y) for x in range(12) for y in range(9)], dtype=float)
    ours = linkage(grid, "complete")
    check_linkage(ours)
    np.testing.assert_array_equal(ours[-1, 3], len(grid))
    np.testing.assert_allclose(ours[:, 2], scipy_hierarchy.linkage(grid, "complete")[:, 2], rtol=2**-24)


def test_scipy_linkage_order_numbers_clusters_like_scipy():
    """Merges given as observation pairs in chain order become SciPy's tree of the same heights."""
    rng = np.random.default_rng(9)
    values = rng.normal(size=(60, 3))
    tree = scipy_hierarchy.linkage(values, "single")
    members = {index: [index] for index in range(60)}
    merges = []
    for step, (first, second, height, _) in enumerate(tree):
        merges.append((members[int(first)][-1], members[int(second)][0], height))
        members[60 + step] = members[int(first)] + members[int(second)]
    shuffled = np.array(merges)[rng.permutation(59)]
    np.testing.assert_array_equal(scipy_linkage_order(shuffled, 60), tree)


def test_complete_linkage_in_place_refuses_a_matrix_of_the_wrong_size():
    with pytest.raises(ValueError, match="4 points has 6 entries"):
        complete_linkage_in_place(np.zeros(5, dtype=np.float32), 4)


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
