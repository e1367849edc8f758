"""NMI, NMI curves, reference curves and tree purities, against scikit-learn, SciPy and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.cluster.hierarchy import linkage, to_tree
from sklearn.metrics import normalized_mutual_info_score

from semcurate.clustering import DensityPeaks
from semcurate.clustering.hierarchy import Cutter
from semcurate.evaluation.scores import (
    dendrogram_purity,
    hierarchy_purity,
    leaf_nmi,
    nmi,
    nmi_curve,
    reference_curves,
)

TOY = np.arange(100)  # the 10 × 10 square of thesis section 4.3.2, labels(C_k) = TOY % k


def sk_nmi(labels_true, labels_pred) -> float:
    return normalized_mutual_info_score(labels_true, labels_pred, average_method="geometric")


def blobs(rng: np.random.Generator, n: int, n_classes: int, unlabelled: float):
    """Overlapping Gaussian blobs in 3-D; the truth with a share of the items unlabelled (-1)."""
    classes = rng.integers(0, n_classes, n)
    points = rng.normal(0, 2, (n_classes, 3))[classes] + rng.normal(0, 1, (n, 3))
    truth = np.where(rng.random(n) < unlabelled, -1, classes)
    return points, truth


def halving_partition(truth: np.ndarray, k: int) -> np.ndarray:
    """Refine ``truth`` by splitting the largest cluster (lists of indices) in two halves until there are ``k``."""
    clusters = [list(np.flatnonzero(truth == c)) for c in np.unique(truth)]
    while len(clusters) < k:
        largest = clusters.pop(max(range(len(clusters)), key=lambda i: len(clusters[i])))
        clusters += [largest[: len(largest) // 2], largest[len(largest) // 2 :]]
    labels = np.empty(len(truth), dtype=int)
    for number, members in enumerate(clusters):
        labels[members] = number
    return labels


def set_partitions(items: list):
    """Every partition of ``items`` into non-empty blocks."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        yield [[first], *partition]
        for index in range(len(partition)):
            yield [*partition[:index], [first, *partition[index]], *partition[index + 1 :]]


# --- nmi -----------------------------------------------------------------------------------------------------


def test_nmi_matches_scikit_learn_on_random_partitions_and_edge_cases():
    rng = np.random.default_rng(0)
    cases = [([0], [5]), ([0, 0], [1, 1]), ([0, 0, 0], [0, 1, 2]), ([0, 1, 2], [0, 0, 0]), ([0, 1], [1, 0])]
    cases += [([0, 0, 1, 1], [0, 1, 0, 1]), (list("aabbc"), [3, 3, 1, 1, 1])]
    for _ in range(400):
        n = int(rng.integers(1, 80))
        cases.append((rng.integers(0, rng.integers(1, 8), n), rng.integers(0, rng.integers(1, 12), n)))
    for labels_true, labels_pred in cases:
        assert nmi(labels_true, labels_pred) == pytest.approx(sk_nmi(labels_true, labels_pred), abs=1e-12)


def test_nmi_is_symmetric_and_blind_to_renaming():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 5, 200), rng.integers(0, 7, 200)
    assert nmi(a, b) == pytest.approx(nmi(b, a), abs=1e-12)
    assert nmi(a, b) == pytest.approx(nmi(rng.permutation(5)[a], 100 + 3 * b), abs=1e-12)
    assert nmi(a, a) == 1.0


def test_nmi_rounding_never_leaves_zero_to_one():
    rng = np.random.default_rng(18)
    for _ in range(300):
        n = int(rng.integers(4, 300))
        labels = rng.integers(0, rng.integers(2, 9), n)
        assert nmi(labels, labels) == 1.0
        grid = np.arange(4 * n)  # rows and columns of a 4 × n grid: independent partitions, so NMI is exactly 0
        independent = nmi(grid % 4, grid // 4)
        assert independent >= 0.0  # rounding may leave a tiny positive remainder, never a negative one
        assert independent == pytest.approx(0.0, abs=1e-12)
        assert independent == pytest.approx(sk_nmi(grid % 4, grid // 4), abs=1e-12)


@pytest.mark.parametrize("kind", ["negative ints", "None", "empty string", "NaN"])
def test_nmi_drops_unlabelled_items_from_both_partitions(kind):
    rng = np.random.default_rng(2)
    classes, pred = rng.integers(0, 4, 150), rng.integers(0, 6, 150)
    unlabelled = rng.random(150) < 0.4
    if kind == "negative ints":
        truth = np.where(unlabelled, -1 - rng.integers(0, 3, 150), classes)
    elif kind == "NaN":
        truth = np.where(unlabelled, np.nan, classes.astype(float))
    else:
        names = np.array(["tubes", "rods", "dots", "films"], dtype=object)[classes]
        truth = np.where(unlabelled, None if kind == "None" else "", names)
        if kind == "empty string":
            truth = truth.astype(str)
    assert nmi(truth, pred) == pytest.approx(sk_nmi(classes[~unlabelled], pred[~unlabelled]), abs=1e-12)


def test_nmi_refuses_length_mismatch_and_no_labelled_item():
    with pytest.raises(ValueError, match="shape"):
        nmi([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="labelled"):
        nmi([-1, -1], [0, 1])
    with pytest.raises(ValueError, match="labelled"):
        nmi([None, ""], [0, 1])


# --- nmi_curve -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ward", "centroid", "single"])
def test_nmi_curve_of_a_linkage_equals_cutting_at_every_k(method):
    rng = np.random.default_rng(3)
    points, truth = blobs(rng, 240, 5, unlabelled=0.5)
    tree = linkage(points, method)
    if method == "centroid":
        assert np.any(np.diff(tree[:, 2]) < 0), "the centroid tree should have inversions"
    ks = rng.permutation(np.arange(1, 241))
    ks = np.concatenate([ks, ks[:7]])  # any order, repeats allowed
    cutter = Cutter(tree)
    expected = [nmi(truth, cutter.labels(k)) for k in ks]
    np.testing.assert_allclose(nmi_curve(tree, truth, ks), expected, rtol=0, atol=1e-12)


def test_nmi_curve_of_density_peaks_divisive_hierarchy():
    rng = np.random.default_rng(4)
    points, truth = blobs(rng, 200, 4, unlabelled=0.3)
    tree = DensityPeaks(n_neighbors=10).fit(points).linkage_
    ks = np.arange(1, 201)[::-1]
    cutter = Cutter(tree)
    np.testing.assert_allclose(nmi_curve(tree, truth, ks), [nmi(truth, cutter.labels(k)) for k in ks], atol=1e-12)


def test_nmi_curve_when_no_merge_joins_labelled_items_or_truth_has_one_class():
    # Leaves 0 and 1 are labelled; every other item is merged in before they meet at the root.
    tree = linkage(np.array([[0.0], [100.0], [1.0], [2.0], [99.0]]), "single")
    for truth in ([0, 1, -1, -1, -1], [0, 0, -1, -1, -1]):
        ks = [5, 4, 3, 2, 1]
        np.testing.assert_allclose(nmi_curve(tree, truth, ks), [nmi(truth, Cutter(tree).labels(k)) for k in ks])


def test_nmi_curve_of_given_partitions_by_mapping_or_rows():
    rng = np.random.default_rng(5)
    truth = np.where(rng.random(90) < 0.2, -1, rng.integers(0, 3, 90))
    ks = [4, 2, 9]
    partitions = {k: rng.integers(0, k, 90) for k in ks}
    expected = [sk_nmi(truth[truth >= 0], partitions[k][truth >= 0]) for k in ks]
    np.testing.assert_allclose(nmi_curve(partitions, truth, ks), expected, atol=1e-12)
    np.testing.assert_allclose(nmi_curve(np.array([partitions[k] for k in ks]), truth, ks), expected, atol=1e-12)


def test_nmi_curve_refuses_bad_input():
    tree = linkage(np.random.default_rng(6).normal(size=(10, 2)), "ward")
    truth = [0, 1] * 5
    with pytest.raises(ValueError, match=r"1 \.\. 10"):
        nmi_curve(tree, truth, [0, 3])
    with pytest.raises(ValueError, match=r"1 \.\. 10"):
        nmi_curve(tree, truth, [11])
    with pytest.raises(ValueError, match="integers"):
        nmi_curve(tree, truth, [2.5])
    with pytest.raises(ValueError, match="neither a linkage"):
        nmi_curve(tree, truth[:8], [2])
    with pytest.raises(ValueError, match="k = \\[3\\]"):
        nmi_curve({2: truth}, truth, [2, 3])


# --- reference curves ----------------------------------------------------------------------------------------


def test_ideal_curve_above_the_class_count_is_the_halving_refinement():
    rng = np.random.default_rng(7)
    truth = rng.choice(6, 300, p=[0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    ks = np.arange(6, 301, 7)
    curves = reference_curves(truth, ks)
    np.testing.assert_array_equal(curves["ks"], ks)
    np.testing.assert_allclose(curves["ideal"], [sk_nmi(truth, halving_partition(truth, k)) for k in ks], atol=1e-12)
    assert curves["ideal"][0] == 1.0
    assert np.all(np.diff(curves["ideal"]) < 0)


def test_ideal_curve_below_the_class_count_is_a_coarsening_and_the_best_for_equal_classes():
    rng = np.random.default_rng(8)
    truth = rng.choice(6, 400, p=[0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
    coarsenings = {k: [] for k in range(1, 6)}
    for blocks in set_partitions(list(range(6))):
        group = np.empty(6, dtype=int)
        for number, block in enumerate(blocks):
            group[block] = number
        coarsenings.get(len(blocks), []).append(sk_nmi(truth, group[truth]))
    ideal = reference_curves(truth, range(1, 6))["ideal"]
    for k, value in zip(range(1, 6), ideal, strict=True):
        assert np.min(np.abs(np.array(coarsenings[k]) - value)) < 1e-12, f"k = {k} is no coarsening's NMI"
        assert value >= np.quantile(coarsenings[k], 0.75)
    # Equal classes: the best coarsening has the most even groups, whatever the number of groups.
    equal = np.repeat(np.arange(10), 12)
    for k, value in zip(range(1, 10), reference_curves(equal, range(1, 10))["ideal"], strict=True):
        group_sizes = itertools.combinations_with_replacement(range(1, 11), k)  # classes per group
        best = max(sk_nmi(equal, np.repeat(np.arange(k), sizes)[equal]) for sizes in group_sizes if sum(sizes) == 10)
        assert value == pytest.approx(best, abs=1e-12)


def test_uniform_curve_follows_its_documented_draws_per_k():
    rng = np.random.default_rng(9)
    truth = np.where(rng.random(120) < 0.25, -1, rng.integers(0, 4, 120))
    labelled = truth[truth >= 0]
    ks = [1, 3, 17, len(labelled)]
    curves = reference_curves(truth, ks, n_draws=7, random_state=11)
    for row, k in enumerate(ks):
        draws = np.random.default_rng([11, k])
        values = [sk_nmi(labelled, draws.permutation(len(labelled)) % k) for _ in range(7)]
        assert curves["uniform_mean"][row] == pytest.approx(np.mean(values), abs=1e-12)
        assert curves["uniform_std"][row] == pytest.approx(np.std(values), abs=1e-12)
    alone = reference_curves(truth, [17], n_draws=7, random_state=11)
    assert alone["uniform_mean"][0] == curves["uniform_mean"][2], "a k's draws must not depend on the other ks"
    # At k = n_labelled every uniform draw, like the ideal partition, is the partition into singletons.
    assert curves["uniform_std"][-1] == pytest.approx(0, abs=1e-12)
    assert curves["uniform_mean"][-1] == pytest.approx(curves["ideal"][-1], abs=1e-12)
    assert curves["orthogonal"][0] == curves["uniform_mean"][0] == curves["ideal"][0] == 0


def test_orthogonal_curve_deals_labels_round_robin_within_each_class():
    rng = np.random.default_rng(10)
    truth = np.where(rng.random(200) < 0.3, -1, rng.choice(5, 200, p=[0.4, 0.3, 0.15, 0.1, 0.05]))
    labelled = truth[truth >= 0]
    ks = np.arange(1, len(labelled) + 1, 5)
    expected = []
    for k in ks:
        rank = np.empty(len(labelled), dtype=int)
        for c in range(5):
            members = np.flatnonzero(labelled == c)
            rank[members] = np.arange(len(members)) % k
        expected.append(sk_nmi(labelled, rank))
    np.testing.assert_allclose(reference_curves(truth, ks)["orthogonal"], expected, atol=1e-12)
    # Classes of one size: every class spreads over the labels alike, so the labels say nothing.
    equal = np.repeat(np.arange(6), 9)[rng.permutation(54)]
    np.testing.assert_allclose(reference_curves(equal, range(1, 55))["orthogonal"], 0, atol=1e-12)


def test_reference_curves_ignore_unlabelled_items_and_refuse_too_many_clusters():
    rng = np.random.default_rng(12)
    truth = np.where(rng.random(100) < 0.3, None, rng.choice(["a", "b", "c"], 100)).astype(object)
    kept = truth[truth != None].astype(str)  # noqa: E711 (element-wise)
    with_gaps, without = reference_curves(truth, [2, 5, 9]), reference_curves(kept, [2, 5, 9])
    for key in with_gaps:
        np.testing.assert_array_equal(with_gaps[key], without[key])
    with pytest.raises(ValueError, match=f"1 .. {len(kept)}"):
        reference_curves(truth, [len(kept) + 1])


# --- the 10 × 10 toy example of thesis figures 4.2-4.3 ------------------------------------------------------


def test_toy_scores_peak_at_multiples_of_ten_and_decrease_along_them():
    scores = {k: nmi(TOY % 10, TOY % k) for k in range(1, 101)}
    for k, value in scores.items():
        assert value == pytest.approx(sk_nmi(TOY % 10, TOY % k), abs=1e-12)
    assert scores[10] == 1.0
    peaks = [scores[k] for k in range(10, 101, 10)]
    assert np.all(np.diff(peaks) < 0)
    for multiple in range(10, 101, 10):
        neighbours = [scores[k] for k in range(multiple - 9, min(multiple + 10, 101)) if k % 10]
        assert scores[multiple] > max(neighbours)


def test_toy_multiples_of_ten_are_even_refinements_at_or_below_the_halving_curve():
    # The thesis joins the scores at multiples of 10 with the ideal curve; C_k splits every column as evenly as
    # possible, which is the most even refinement and so the lowest-scoring one, and the halving refinement is
    # as even exactly where its cluster sizes are those of C_k.
    ks = np.arange(10, 101, 10)
    ideal = reference_curves(TOY % 10, ks)["ideal"]
    equal_sizes = []
    for k, reference in zip(ks, ideal, strict=True):
        value = nmi(TOY % 10, TOY % k)
        same = sorted(np.bincount(TOY % k)) == sorted(np.bincount(halving_partition(TOY % 10, k)))
        equal_sizes.append(same)
        if same:
            assert value == pytest.approx(reference, abs=1e-12)
        else:
            assert value < reference - 1e-6
    assert any(equal_sizes) and not all(equal_sizes)
    # Below 10 clusters, the C_k with k dividing 10 merge columns evenly: the best coarsenings.
    for k, reference in zip([1, 2, 5], reference_curves(TOY % 10, [1, 2, 5])["ideal"], strict=True):
        assert nmi(TOY % 10, TOY % k) == pytest.approx(reference, abs=1e-12)


def test_toy_scores_prime_to_ten_are_the_least_any_even_partition_can_reach():
    # The thesis says these coincide with the uniform baseline and that NMI(C10, C7) is close to zero. What holds:
    # by the Chinese remainder theorem every cell of the C10 × C_k table holds floor or ceil of 100 / (10 k)
    # items, and a sum of c log c with a fixed total is least for the most even cells, so C_k scores no more
    # than any partition with its cluster sizes, every uniform draw included. Far below 100 clusters it scores
    # well under the uniform mean; near 100 the two meet.
    coprime = [k for k in range(2, 100) if math.gcd(k, 10) == 1]
    curves = reference_curves(TOY % 10, coprime, n_draws=30)
    rng = np.random.default_rng(13)
    gaps = {}
    for k, mean, std in zip(coprime, curves["uniform_mean"], curves["uniform_std"], strict=True):
        value = nmi(TOY % 10, TOY % k)
        assert value <= mean + 1e-12
        assert all(value <= sk_nmi(TOY % 10, rng.permutation(100) % k) + 1e-12 for _ in range(5))
        gaps[k] = (mean - value, std)
    assert nmi(TOY % 10, TOY % 7) < 0.05
    assert all(gap > 3 * std for gap, std in (gaps[k] for k in (7, 11, 13)))
    assert all(gap <= 3 * std + 0.005 for gap, std in (gaps[k] for k in coprime if k > 80))
    np.testing.assert_allclose(curves["orthogonal"], 0, atol=1e-12)


# --- tree scores ---------------------------------------------------------------------------------------------


def tree_paths(tree: np.ndarray) -> list[tuple]:
    """Each leaf's path of child numbers (0 left, 1 right) from the root of a linkage matrix."""
    paths = [()] * (len(tree) + 1)
    stack = [(to_tree(tree), ())]
    while stack:
        node, path = stack.pop()
        if node.is_leaf():
            paths[node.id] = path
        else:
            stack += [(node.get_left(), (*path, 0)), (node.get_right(), (*path, 1))]
    return paths


def brute_force_purity(paths: list[tuple], truth: np.ndarray) -> float:
    """Mean over same-class labelled pairs of the class share of the labelled items under their common prefix."""
    labelled = np.flatnonzero(truth >= 0)
    shares = []
    for i, j in itertools.combinations(labelled, 2):
        if truth[i] != truth[j]:
            continue
        depth = 0
        while depth < min(len(paths[i]), len(paths[j])) and paths[i][depth] == paths[j][depth]:
            depth += 1
        under = [m for m in labelled if paths[m][:depth] == paths[i][:depth]]
        shares.append(np.mean(truth[under] == truth[i]))
    return float(np.mean(shares))


@pytest.mark.parametrize("method", ["ward", "centroid", "single", "average"])
def test_dendrogram_purity_matches_brute_force_over_lowest_common_ancestors(method):
    rng = np.random.default_rng(14)
    points, truth = blobs(rng, 60, 4, unlabelled=0.3)
    tree = linkage(points, method)
    # Brute force from SciPy's parent pointers, independently of the path form.
    n = len(truth)
    parent = {int(child): n + row for row, pair in enumerate(tree[:, :2]) for child in pair}
    members = {leaf: {leaf} for leaf in range(n)}
    for row, (a, b) in enumerate(tree[:, :2].astype(int)):
        members[n + row] = members[a] | members[b]
    labelled = np.flatnonzero(truth >= 0)
    shares = []
    for i, j in itertools.combinations(labelled, 2):
        if truth[i] == truth[j]:
            ancestor = int(i)
            while j not in members[ancestor]:
                ancestor = parent[ancestor]
            under = [m for m in members[ancestor] if truth[m] >= 0]
            shares.append(np.mean(truth[under] == truth[i]))
    assert dendrogram_purity(tree, truth) == pytest.approx(np.mean(shares), abs=1e-12)
    assert hierarchy_purity(tree_paths(tree), truth) == pytest.approx(np.mean(shares), abs=1e-12)


def test_dendrogram_purity_is_one_for_separated_classes_and_refuses_no_pairs():
    rng = np.random.default_rng(15)
    points = np.repeat([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]], 20, axis=0) + rng.normal(0, 1, (60, 2))
    truth = np.repeat([0, 1, 2], 20)
    truth[rng.random(60) < 0.3] = -1
    assert dendrogram_purity(linkage(points, "ward"), truth) == 1.0
    assert dendrogram_purity(linkage(rng.normal(size=(60, 2)), "ward"), truth) < 0.9
    with pytest.raises(ValueError, match="share a class"):
        dendrogram_purity(linkage(points[:3], "ward"), [0, 1, -1])
    with pytest.raises(ValueError, match="items"):
        dendrogram_purity(linkage(points[:3], "ward"), [0, 0])


def random_tree_paths(rng: np.random.Generator, n: int) -> list[tuple]:
    """Items in a random non-binary tree under named categories, some at internal nodes, many sharing a leaf."""
    paths = []
    for _ in range(n):
        depth = int(rng.integers(0, 4))
        paths.append((str(rng.choice(["Nanowires", "Particles", "Films"])), *rng.integers(1, 4, depth).tolist()))
    return paths


def test_hierarchy_purity_matches_brute_force_on_a_general_tree():
    rng = np.random.default_rng(16)
    for _ in range(3):
        paths = random_tree_paths(rng, 90)
        truth = np.where(rng.random(90) < 0.2, -1, rng.integers(0, 3, 90))
        assert hierarchy_purity(paths, truth) == pytest.approx(brute_force_purity(paths, truth), abs=1e-12)


def test_hierarchy_purity_refuses_string_paths_and_length_mismatch():
    with pytest.raises(ValueError, match="tuples"):
        hierarchy_purity(["Nanowires.2.1", "Nanowires.2"], [0, 0])
    with pytest.raises(ValueError, match="node paths"):
        hierarchy_purity([("a",), ("a",)], [0, 0, 0])


def test_leaf_nmi_is_the_nmi_of_the_leaves():
    rng = np.random.default_rng(17)
    paths = random_tree_paths(rng, 120)
    truth = np.where(rng.random(120) < 0.25, -1, rng.integers(0, 4, 120))
    leaf_ids = np.array([sorted(set(paths)).index(path) for path in paths])
    assert leaf_nmi(paths, truth) == pytest.approx(sk_nmi(truth[truth >= 0], leaf_ids[truth >= 0]), abs=1e-12)
    assert leaf_nmi([("A", 1)] * 60 + [("A", 2)] * 60, np.repeat([0, 1], 60)) == 1.0
