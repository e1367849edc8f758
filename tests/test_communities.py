"""Louvain communities of the nearest-neighbour graph (clustering.communities) and the Louvain rule of the
sub-category tree (clustering.splitting.community_decision), on data drawn here with known groups: scikit-learn's
blobs, Gaussian clouds, and the nested groups of tests/test_splitting.py."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_splitting import leaves_of, nested_blobs, tree_of_blobs

from semcurate.clustering.communities import LouvainCommunities
from semcurate.clustering.flat import cluster_labels_per_k, make_flat_estimator
from semcurate.clustering.splitting import COMMUNITY_MIN_ROWS, coarsen_until_separated, split
from semcurate.datasets.clouds import make_unimodal_cloud

pytestmark = pytest.mark.usefixtures("one_thread")


@parametrize_with_checks([LouvainCommunities(random_state=0)])
def test_louvain_communities_follow_the_sklearn_contract(estimator, check):
    check(estimator)


def test_four_separate_blobs_are_four_communities_numbered_by_size():
    values, truth = make_blobs(n_samples=[160, 120, 80, 40], n_features=5, cluster_std=0.5, random_state=3)
    labels = LouvainCommunities(random_state=0).fit(values).labels_
    assert adjusted_rand_score(truth, labels) == 1.0
    assert np.bincount(labels).tolist() == [160, 120, 80, 40]
    assert cluster_labels_per_k(values, "louvain", None).keys() == {4}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_gaussian_in_ten_dimensions_is_one_community_and_in_three_it_is_cut(seed):
    """The resolution is low enough that 300 Gaussian rows in 10 dimensions stay whole; in 3 dimensions the
    neighbour graph is a mesh, which modularity cuts into pieces: what the tree's Gaussian null is for."""
    rng = np.random.default_rng(seed)
    assert LouvainCommunities(random_state=seed).fit(rng.normal(size=(300, 10))).labels_.max() == 0
    assert LouvainCommunities(random_state=seed).fit(rng.normal(size=(300, 3))).labels_.max() >= 2


def test_the_same_seed_gives_the_same_communities():
    values = np.random.default_rng(4).normal(size=(200, 3))
    first = LouvainCommunities(random_state=7).fit(values).labels_
    assert (LouvainCommunities(random_state=7).fit(values).labels_ == first).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda X: LouvainCommunities(n_neighbors=0).fit(X), r"n_neighbors must be an integer of at least 1; got 0"),
        (lambda X: LouvainCommunities(n_neighbors=2.5).fit(X), r"n_neighbors must be an integer"),
        (lambda X: LouvainCommunities(resolution=0).fit(X), r"resolution must be a number above 0; got 0"),
        (lambda X: LouvainCommunities(resolution=float("nan")).fit(X), r"resolution must be a number above 0"),
        (lambda X: make_flat_estimator("louvain", 3), r"Louvain chooses its own number of clusters; leave n_clusters"),
        (lambda X: cluster_labels_per_k(X, "louvain", [3]), r"Louvain chooses its own number .*ks=None"),
    ],
)
def test_bad_parameters_give_one_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.random.default_rng(0).normal(size=(20, 3)))


def test_the_louvain_rule_finds_nested_groups_as_leaves():
    """3 groups 100 apart of 2 sub-groups 8 apart (40 rows each, 5-D): every leaf is one sub-group, every
    sub-group one leaf, however many levels the rule takes to get there."""
    values, _groups, subgroups = nested_blobs(np.random.default_rng(2))
    root = split(values, "louvain", min_size=10)
    assert root.split_rule == "louvain" and root.children
    assert adjusted_rand_score(subgroups, leaves_of(root, len(values))) == 1.0
    assert "Louvain found" in root.note and "null standard deviations less of the variance" in root.note


@pytest.mark.parametrize(("n", "dim", "branching", "spreads"), [(300, 8, (3, (2, 3, 4)), (30.0, 5.0))])
def test_the_louvain_rule_finds_the_generated_leaves(n, dim, branching, spreads):
    values, truth = tree_of_blobs(0, n, dim, branching, spreads)
    found = leaves_of(split(values, "louvain", min_size=10), len(values))
    assert len(np.unique(found)) == 9 and normalized_mutual_info_score(truth, found) > 0.95


@pytest.mark.parametrize(
    ("kind", "n", "dim"),
    [
        ("gaussian", 300, 3),
        ("gaussian", 300, 5),
        ("gaussian", 1000, 18),
        ("correlated", 400, 8),
        ("log-normal", 500, 12),
        ("student-t", 500, 12),
    ],
)
def test_the_louvain_rule_does_not_split_a_single_cloud(kind, n, dim):
    values = make_unimodal_cloud(kind, n, dim, random_state=n + dim)
    root = split(values, "louvain", min_size=10)
    assert root.children == [] and root.stop in {"no-structure", "gaussian-like"}


def test_the_gaussian_null_is_what_stops_louvain_in_a_low_dimensional_cloud():
    values = make_unimodal_cloud("gaussian", 300, 3, random_state=303)
    assert split(values, "louvain", 1, min_size=10, min_null_z=0).children
    root = split(values, "louvain", 1, min_size=10)
    assert root.stop == "gaussian-like" and "(z = " in root.note


def test_a_node_too_small_for_a_neighbour_graph_is_a_leaf():
    values, _ = make_blobs(n_samples=COMMUNITY_MIN_ROWS - 1, centers=2, n_features=4, random_state=0)
    root = split(values, "louvain", min_size=5)
    assert (root.children, root.stop) == ([], "too-few-images")
    assert root.note.startswith(f"{COMMUNITY_MIN_ROWS - 1} images: fewer than {COMMUNITY_MIN_ROWS}")


def test_a_uniform_box_is_split_by_the_louvain_rule_where_the_gap_rule_keeps_it_whole():
    """The known cost of a Gaussian null: a box is flatter than a Gaussian, so Ward's clusters of it beat
    Ward's clusters of Gaussian rows, and the Louvain rule splits it; the gap rule's reference is uniform."""
    values = make_unimodal_cloud("uniform", 400, 4, random_state=404)
    assert split(values, "louvain", 1, min_size=10).children
    assert split(values, "ward", 1, min_size=10).children == []


def test_communities_that_do_not_separate_enough_leave_the_node_a_leaf():
    """The nested groups' communities have a mean silhouette far above 0.15 but under 0.99: with the floor at
    0.99 the root is a leaf, and says so."""
    values, _groups, _subgroups = nested_blobs(np.random.default_rng(2))
    root = split(values, "louvain", min_size=10, min_silhouette=0.99)
    assert (root.children, root.stop) == ([], "weak-structure")
    assert "whose silhouette is under 0.99 merged, leaving 1" in root.note


def test_communities_that_cut_one_cloud_are_merged_until_the_clouds_separate():
    """Two Gaussian clouds 10 SD apart in 3-D: Louvain cuts them into 6 communities whose mean silhouette is 0.198
    (scikit-learn), under a floor of 0.5, while the two clouds' is 0.778. Judged as found the node was a leaf;
    the pieces of each cloud merge (their pairwise silhouette is under the floor) and the node splits into the
    two clouds exactly."""
    values, clouds = make_blobs(n_samples=800, centers=[[0, 0, 0], [10, 0, 0]], cluster_std=1.0, random_state=1)
    communities = LouvainCommunities(random_state=0).fit(values).labels_
    assert communities.max() + 1 == 6 and silhouette_score(values, communities) < 0.5 < silhouette_score(values, clouds)
    root = split(values, "louvain", 1, min_size=10, min_silhouette=0.5)
    found = np.zeros(len(values), dtype=int)
    for index, child in enumerate(root.children):
        found[child.members] = index
    assert len(root.children) == 2 and normalized_mutual_info_score(clouds, found) == 1.0
    assert "4 pairs whose silhouette is under 0.5 merged, leaving 2" in root.note


def test_coarsening_merges_the_nearest_clusters_and_reports_scikit_learns_silhouette():
    """Four clouds on a line at 0, 3, 20 and 23 (SD 1): under a floor of 0.7 the two nearest pairs merge one
    after the other, leaving the two far groups, and the silhouette returned is scikit-learn's."""
    values, clouds = make_blobs(
        n_samples=400, centers=[[0, 0], [3, 0], [20, 0], [23, 0]], cluster_std=1.0, random_state=3
    )
    assert silhouette_score(values, clouds) < 0.7
    merged, merges, separation = coarsen_until_separated(
        values, clouds, min_silhouette=0.7, sample_size=1000, random_state=0
    )
    assert merges == 2 and normalized_mutual_info_score(clouds // 2, merged) == 1.0
    assert separation == pytest.approx(silhouette_score(values, merged))
    unchanged, none, _ = coarsen_until_separated(values, clouds, min_silhouette=0.1, sample_size=1000, random_state=0)
    assert none == 0 and np.array_equal(unchanged, clouds)
