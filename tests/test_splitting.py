"""The sub-category tree core: medoids, the choice of the number of children, recursion, the classifier."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score

from semcurate.clustering.splitting import medoid, split
from semcurate.clustering.tree_building import classify_unlabelled


def nested_blobs(rng: np.random.Generator, groups: int = 3, subgroups: int = 2, per: int = 40):
    """``groups`` groups 100 apart of ``subgroups`` sub-groups 8 apart, unit noise in 5-D; points and both truths."""
    points, group_truth, sub_truth = [], [], []
    for group in range(groups):
        centre = 100.0 * np.eye(5)[group % 3] * (1 + group // 3)
        for sub in range(subgroups):
            offset = 8.0 * sub * np.eye(5)[3 + group % 2]
            points.append(centre + offset + rng.normal(0, 1, (per, 5)))
            group_truth += [group] * per
            sub_truth += [group * subgroups + sub] * per
    return np.vstack(points), np.array(group_truth), np.array(sub_truth)


def test_medoid_is_the_least_total_distance_row():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(300, 4)) * [1, 2, 3, 4]
    assert medoid(values) == int(np.argmin(cdist(values, values).sum(axis=1)))


def test_medoid_of_a_large_set_is_a_member_near_the_centre():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(5000, 3))
    chosen = medoid(values, sample_size=500)
    assert np.linalg.norm(values[chosen]) < 0.5


@pytest.mark.parametrize("method", ["ward", "average", "kmeans", "density-peaks"])
def test_split_recovers_both_levels_of_nested_groups(method):
    values, groups, subgroups = nested_blobs(np.random.default_rng(2))
    root = split(values, method, depth=2, min_size=10)
    assert len(root.children) == 3
    first_level = np.empty(len(values), dtype=int)
    second_level = np.empty(len(values), dtype=int)
    for number, child in enumerate(root.children):
        first_level[child.members] = number
        assert len(child.children) == 2, f"group {number} should split into its two sub-groups"
        for sub_number, grandchild in enumerate(child.children):
            second_level[grandchild.members] = 10 * number + sub_number
    assert adjusted_rand_score(groups, first_level) == 1.0
    assert adjusted_rand_score(subgroups, second_level) == 1.0


def test_children_partition_their_parent_and_respect_the_smallest_size():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(400, 6))
    root = split(values, "ward", depth=3, min_size=15)
    for _, node in root.walk():
        if node.children:
            together = np.concatenate([child.members for child in node.children])
            assert sorted(together.tolist()) == sorted(node.members.tolist())
            assert min(len(child.members) for child in node.children) >= 15
        assert node.representative in node.members


def test_silhouette_scores_are_recorded_per_candidate_k_and_the_best_is_chosen():
    values, _, _ = nested_blobs(np.random.default_rng(4), groups=4, subgroups=1)
    root = split(values, "ward", depth=1, min_size=5, max_children=6)
    assert root.split_rule == "silhouette" and set(root.split_scores) == {2, 3, 4, 5, 6}
    assert max(root.split_scores, key=root.split_scores.get) == len(root.children) == 4


def test_dendrogram_gap_picks_the_widest_height_interval():
    values, _, _ = nested_blobs(np.random.default_rng(5), groups=3, subgroups=1)
    root = split(values, "ward", depth=1, rule="dendrogram-gap", min_size=5)
    assert len(root.children) == 3 and root.split_rule == "dendrogram-gap"


def test_leaves_say_why_they_are_leaves():
    values, _, _ = nested_blobs(np.random.default_rng(6), groups=2, subgroups=1, per=8)
    assert "depth reached" in split(values, "ward", depth=0).note
    assert "fewer than twice" in split(values, "ward", depth=1, min_size=10).note
    assert "all feature rows are equal" in split(np.ones((50, 3)), "ward", depth=1).note


def test_bad_rules_are_refused_before_any_work():
    values = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(ValueError, match="unknown rule 'biggest'"):
        split(values, "ward", 1, rule="biggest")
    with pytest.raises(ValueError, match=r"monotone merge heights.*not centroid"):
        split(values, "centroid", 1, rule="dendrogram-gap")


def test_classifier_predicts_the_nearby_category_and_reports_a_heldout_accuracy():
    rng = np.random.default_rng(7)
    labelled = np.vstack([rng.normal(0, 1, (50, 4)), rng.normal(6, 1, (50, 4))])
    categories = ["Fibres"] * 50 + ["Tips"] * 50
    predicted, accuracy = classify_unlabelled(labelled, categories, np.array([[0.2] * 4, [5.8] * 4]))
    assert predicted == ["Fibres", "Tips"]
    assert accuracy == 1.0


def test_classifier_without_enough_labels_per_class_reports_no_accuracy():
    predicted, accuracy = classify_unlabelled(np.array([[0.0], [1.0], [5.0]]), ["A", "A", "B"], np.array([[4.5]]))
    assert predicted == ["B"] and accuracy is None
