"""Clustering and the sub-category tree on the demo corpus: recovery of the generated sub-categories, storage,
the ``cluster`` and ``tree`` commands and the ``semcurate.Tree`` API."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, normalized_mutual_info_score, recall_score
from sklearn.preprocessing import StandardScaler
from sqlalchemy import func, select

import semcurate
from semcurate.clustering.runs import ClusteringError, cluster_feature_set, load_clustering
from semcurate.clustering.store import ClusterStore
from semcurate.clustering.tree_building import build_tree
from semcurate.db import (
    Clustering,
    Label,
    LabelDataset,
    Subset,
    SubsetMember,
    TreeMemberRow,
    TreeNodeRow,
    TreeRow,
)
from semcurate.evaluation.evaluate import EvaluationError, tree_scores
from semcurate.features.analysis import reduce_feature_set
from semcurate.features.store import FeatureStore
from semcurate.ingest.scale_database import create_subset


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, text=True)


def stored_placements(sessions, tree_id: int) -> dict[str, tuple[str, str, float | None, bool]]:
    """(category, assigned_by, probability, doubtful) of every image of a stored tree, read from its top nodes."""
    with sessions() as session:
        rows = session.execute(
            select(
                TreeMemberRow.image_md5,
                TreeNodeRow.category,
                TreeMemberRow.assigned_by,
                TreeMemberRow.probability,
                TreeMemberRow.doubtful,
            )
            .join(TreeNodeRow, TreeNodeRow.id == TreeMemberRow.node_id)
            .where(TreeNodeRow.tree_id == tree_id, TreeNodeRow.depth == 1)
        ).all()
    return {md5: tuple(placement) for md5, *placement in rows}


def label_a_fraction(sessions, name: str, md5s: list[str], truth: dict[str, str], fraction: float) -> set[str]:
    """Store a labelled dataset ``name`` holding the true top category of ``fraction`` of ``md5s`` (at least 3 per
    category, chosen at random within each category); return the labelled md5s. The other labels stay hidden."""
    rng = np.random.default_rng(0)
    by_category: dict[str, list[str]] = {}
    for md5 in sorted(md5s):
        by_category.setdefault(truth[md5].split("/")[0], []).append(md5)
    chosen = {
        md5
        for members in by_category.values()
        for md5 in rng.choice(members, min(len(members), max(3, round(fraction * len(members)))), replace=False)
    }
    store_labels(sessions, name, {md5: truth[md5] for md5 in chosen})
    return chosen


def store_labels(sessions, name: str, paths: dict[str, str]) -> None:
    """Store a labelled dataset ``name`` giving each md5 of ``paths`` its category path (``Category/...``)."""
    with sessions.begin() as session:
        session.add(
            LabelDataset(
                name=name,
                directory="(drawn in the test)",
                n_files=len(paths),
                n_unique=len(paths),
                n_matched=len(paths),
                n_matched_reencoded=0,
                n_unmatched=0,
                n_conflicting=0,
            )
        )
        session.flush()
        session.add_all(
            Label(
                dataset=name,
                relpath=f"{path}/{md5}.jpg",
                file_md5=md5,
                category_path=path,
                category=path.split("/")[0],
                image_md5=md5,
                match="md5",
            )
            for md5, path in paths.items()
        )


@pytest.mark.parametrize("method", ["ward", "louvain"])
def test_tree_recovers_the_generated_subcategories_better_than_random(demo_repository, method):
    root, _, sessions, truth = demo_repository
    summary = build_tree(
        sessions,
        FeatureStore(root / "features.h5"),
        root / "store",
        "classic",
        method,
        "SEM_Dataset",
        depth=1,
        min_size=5,
    )
    assert summary["rule"] == ("gap" if method == "ward" else "louvain")  # Louvain chooses its own children
    assert summary["labelled"] + summary["classified"] == summary["images"]
    assert summary["classified"] > 0
    tree = semcurate.Tree.open(sessions, summary["tree_id"], root / "store")
    rng = np.random.default_rng(0)
    observed, expected = [], []
    for category in tree.roots():
        members, found = [], []
        for number, child in enumerate(tree.children(category.path)):
            for path in tree.images(child.path):
                md5 = Path(path).stem
                if md5 in truth and truth[md5].split("/")[0] == category.category:
                    members.append("/".join(truth[md5].split("/")[:2]))
                    found.append(number)
        if len(set(members)) < 2 or len(set(found)) < 2:
            continue
        observed.append(normalized_mutual_info_score(members, found, average_method="geometric"))
        shuffled = [
            normalized_mutual_info_score(members, rng.permutation(found), average_method="geometric") for _ in range(50)
        ]
        expected.append(np.mean(shuffled))
    # the gap rule splits only where the evidence holds: 2 categories of several sub-categories in this draw
    assert len(observed) >= 2, "several categories should be split and have generated sub-categories"
    assert np.mean(observed) > np.mean(expected) + 0.15, (observed, expected)


def test_with_labels_on_15_percent_the_others_are_placed_and_the_report_is_what_it_claims(demo_repository):
    """The thesis' setting: most images unlabelled. Their placement is scored against the generated truth, the
    stored report against scikit-learn's metrics of its own confusion matrix, the stored flags against the
    probabilities."""
    root, _, sessions, truth = demo_repository
    store = FeatureStore(root / "features.h5")
    md5s, values = store.read("classic")
    with_truth = [md5 for md5 in md5s if md5 in truth]
    labelled = label_a_fraction(sessions, "fifteen-percent", with_truth, truth, 0.15)
    summary = build_tree(sessions, store, root / "store", "classic", "ward", "fifteen-percent", depth=1, min_size=5)
    assert summary["labelled"] == len(labelled) and summary["classified"] == len(md5s) - len(labelled)

    placements = stored_placements(sessions, summary["tree_id"])
    assert len(placements) == len(md5s)
    for md5 in labelled:
        assert placements[md5] == (truth[md5].split("/")[0], "label", None, False)
    hidden = [md5 for md5 in with_truth if md5 not in labelled]
    placed = [placements[md5] for md5 in hidden]
    assert all(assigned_by == "classifier" and 0 < probability <= 1 for _, assigned_by, probability, _ in placed)
    right = np.array([category == truth[md5].split("/")[0] for md5, (category, *_) in zip(hidden, placed, strict=True)])
    doubtful = np.array([flag for *_, flag in placed])
    probabilities = np.array([probability for _, _, probability, _ in placed])
    np.testing.assert_array_equal(doubtful, probabilities < 0.5)
    # Peers computed here: the largest category's share (chance) and scikit-learn's logistic regression on the same
    # standardised labelled rows.
    hidden_truth = [truth[md5].split("/")[0] for md5 in hidden]
    chance = max(np.unique(hidden_truth, return_counts=True)[1]) / len(hidden)
    rows = {md5: index for index, md5 in enumerate(md5s)}
    standardised = StandardScaler().fit_transform(values)
    peer = LogisticRegression(max_iter=2000).fit(
        standardised[[rows[md5] for md5 in sorted(labelled)]], [truth[md5].split("/")[0] for md5 in sorted(labelled)]
    )
    peer_accuracy = np.mean(peer.predict(standardised[[rows[md5] for md5 in hidden]]) == np.array(hidden_truth))
    print(f"placement accuracy {right.mean():.3f} (peer {peer_accuracy:.3f}, chance {chance:.3f}), {summary}")
    assert right.mean() > chance + 0.2 and right.mean() >= peer_accuracy - 0.05, (right.mean(), peer_accuracy)
    if doubtful.any() and (~doubtful).any():
        assert right[~doubtful].mean() > right[doubtful].mean()

    with sessions() as session:
        tree = session.get(TreeRow, summary["tree_id"])
        report = json.loads(tree.placement)
        assert tree.classifier_accuracy == report["heldout_accuracy"]
    assert report == json.loads(json.dumps(summary["placement"]))
    assert report["classifier"] == summary["classifier"] and report["doubtful"] == doubtful.sum() + sum(
        placements[md5][3] for md5 in md5s if md5 not in truth
    )
    matrix = np.array(report["confusion"]["matrix"])
    names = report["confusion"]["categories"]
    assert matrix.sum() == report["cv_rows"] == len(labelled)
    # The held-out predictions, rebuilt from the stored matrix, give the stored accuracies under scikit-learn.
    heldout_truth = np.repeat(np.repeat(names, len(names)), matrix.ravel())
    heldout_predicted = np.repeat(np.tile(names, len(names)), matrix.ravel())
    recalls = recall_score(heldout_truth, heldout_predicted, labels=names, average=None)
    for name, recall in zip(names, recalls, strict=True):
        assert report["per_category"][name]["accuracy"] == pytest.approx(recall, abs=5e-5)
        assert report["per_category"][name]["labelled"] == sum(truth[md5].split("/")[0] == name for md5 in labelled)
    assert report["heldout_accuracy"] == pytest.approx(accuracy_score(heldout_truth, heldout_predicted), abs=5e-5)
    compared = [row["classifier"] for row in report["cv"]]
    assert compared[:4] == ["logistic-regression", "knn", "gradient-boosting", "label-spreading"]
    assert len(compared) == 5 and compared[4].endswith("+label-spreading")


def test_tree_nodes_partition_their_parents_and_hold_a_representative_and_a_mean_image(demo_repository):
    root, _, sessions, _ = demo_repository
    summary = build_tree(
        sessions,
        FeatureStore(root / "features.h5"),
        root / "store",
        "classic",
        "kmeans",
        "SEM_Dataset",
        depth=2,
        min_size=5,
    )
    tree = semcurate.Tree.open(sessions, summary["tree_id"], root / "store")
    assert sum(node.size for node in tree.roots()) == summary["images"]
    with sessions() as session:
        nodes = session.scalars(select(TreeNodeRow).where(TreeNodeRow.tree_id == summary["tree_id"])).all()
        members = {
            node.id: set(session.scalars(select(TreeMemberRow.image_md5).where(TreeMemberRow.node_id == node.id)))
            for node in nodes
        }
        for node in nodes:
            assert len(members[node.id]) == node.size and node.representative_md5 in members[node.id]
            assert node.mean_image.startswith(b"\x89PNG")
            children = [child for child in nodes if child.parent_id == node.id]
            if children:
                assert set().union(*(members[child.id] for child in children)) == members[node.id]
                assert sum(child.size for child in children) == node.size
    some_md5 = next(iter(members[nodes[-1].id]))
    chain = tree.categories_of(some_md5)
    assert [node.depth for node in chain] == list(range(1, len(chain) + 1))


def test_clusterings_are_stored_and_cut_at_any_k_later(demo_repository):
    root, _, sessions, _ = demo_repository
    store, clusters = FeatureStore(root / "features.h5"), ClusterStore(root / "clusterings.h5")
    summary = cluster_feature_set(sessions, store, clusters, "classic", "ward", k_max=12)
    row, result = load_clustering(sessions, summary["clustering_id"])
    assert row.kind == "hierarchy" and result.linkage.shape == (row.n_points - 1, 4)
    assert sorted(result.md5s) == sorted(store.md5s("classic"))
    assert len(np.unique(result.labels_for(37))) == 37
    again = cluster_feature_set(sessions, store, clusters, "classic", "ward", k_max=12)
    with sessions() as session:
        same = (
            select(func.count())
            .select_from(Clustering)
            .where(Clustering.method == "ward", Clustering.parameters == row.parameters)
        )
        assert session.scalar(same) == 1
    assert clusters.keys().count(row.store_key) == 0 and again["clustering_id"] != row.id

    flat = cluster_feature_set(sessions, store, clusters, "classic", "kmeans", k_max=4, random_state=3)
    row, result = load_clustering(sessions, flat["clustering_id"])
    assert row.kind == "partitions" and sorted(result.labels_by_k) == [2, 3, 4]
    assert json.loads(row.parameters) == {"k_max": 4, "random_state": 3, "preprocessing": "standard"}


def test_clustering_bad_requests_get_one_clear_error(demo_repository):
    root, _, sessions, _ = demo_repository
    store, clusters = FeatureStore(root / "features.h5"), ClusterStore(root / "clusterings.h5")
    with pytest.raises(ClusteringError, match="unknown clustering method 'dbscan'"):
        cluster_feature_set(sessions, store, clusters, "classic", "dbscan")
    with pytest.raises(ClusteringError, match="no feature set 'inception'"):
        cluster_feature_set(sessions, store, clusters, "inception", "ward")
    with pytest.raises(ClusteringError, match=r"k_max = 100000 but there are \d+ points"):
        cluster_feature_set(sessions, store, clusters, "classic", "kmeans", k_max=100_000)
    create_subset(sessions, "nothing-at-1-mm", ["1 mm"], replace=True)
    with pytest.raises(ClusteringError, match="subset 'nothing-at-1-mm' has no images"):
        cluster_feature_set(sessions, store, clusters, "classic", "ward", subset="nothing-at-1-mm")
    md5s = store.md5s("classic")
    store.append("classic.first5", md5s[:5], store.read("classic", md5s[:5])[1])
    with sessions.begin() as session:
        session.add(Subset(name="last-ten", criteria="{}", size=10))
        session.add_all(SubsetMember(subset="last-ten", image_md5=md5) for md5 in md5s[-10:])
    no_rows = r"none of the 10 images of subset 'last-ten' has a row in classic\.first5"
    with pytest.raises(ClusteringError, match=no_rows):
        cluster_feature_set(sessions, store, clusters, "classic.first5", "ward", subset="last-ten")
    with pytest.raises(ClusteringError, match="ward linkage takes no parameters"):
        cluster_feature_set(sessions, store, clusters, "classic", "ward", parameters={"n_neighbors": 3})


@pytest.mark.slow
def test_cluster_and_tree_commands(demo_repository):
    root, db_url, sessions, _ = demo_repository
    common = ("--db", db_url, "--feature-store", str(root / "features.h5"))
    clustered = cli(
        "cluster",
        "classic",
        "--method",
        "density-peaks",
        "--param",
        "n_neighbors=12",
        "--json",
        "--cluster-store",
        str(root / "clusterings.h5"),
        *common,
    )
    assert clustered.returncode == 0, clustered.stderr
    assert json.loads(clustered.stdout)["kind"] == "hierarchy"
    listed = cli("cluster", "--list", "--db", db_url)
    assert "density-peaks" in listed.stdout and '"n_neighbors": 12' in listed.stdout

    built = cli(
        "tree",
        "build",
        "classic",
        "--method",
        "ward",
        "--depth",
        "2",
        "--min-size",
        "5",
        "--sample-size",
        "300",
        "--store",
        str(root / "store"),
        *common,
    )
    assert built.returncode == 0, built.stderr
    tree_id = re.search(r"tree (\d+) stored", built.stdout).group(1)
    with sessions() as session:
        report = json.loads(session.get(TreeRow, int(tree_id)).placement)
        stored = json.loads(session.get(TreeRow, int(tree_id)).parameters)
        assert (stored["min_silhouette"], stored["sample_size"]) == (0.15, 300)
    words = " ".join(built.stdout.split())  # rich wraps a table's title to the table's width
    assert f"chosen: {report['classifier']}, by balanced accuracy" in words
    for table in ("classifiers compared", "placement per category", "held-out confusion matrix"):
        assert table in words
    said = f"placement: {report['unreached']} images no label reached through the graph of similar images:"
    assert (said in words) == (report["unreached"] > 0)
    for name, counts in zip(report["confusion"]["categories"], report["confusion"]["matrix"], strict=True):
        assert re.search(rf"\d+\. {name}\s*│\s*" + r"\s*│\s*".join(map(str, counts)) + r"\s*│", built.stdout), name
    shown = cli("tree", "show", "--tree", tree_id, "--db", db_url)
    assert shown.returncode == 0, shown.stderr
    first_line = shown.stdout.splitlines()[0]
    category, size = re.match(r"(\w+)  \((\d+) images\)  (\S+\.jpg)$", first_line).group(1, 2)
    assert Path(first_line.split()[-1]).is_file()

    children = cli("tree", "show", category, "--depth", "1", "--tree", tree_id, "--db", db_url).stdout.splitlines()
    assert children[0].startswith(category)
    assert sum(int(re.search(r"\((\d+) images\)", line).group(1)) for line in children[1:]) == int(size)

    images = cli("tree", "images", f"{category}.1", "--limit", "3", "--tree", tree_id, "--db", db_url)
    paths = images.stdout.split()
    assert len(paths) == 3 and all(Path(path).is_file() for path in paths)

    renamed = cli("tree", "rename", f"{category}.1", "large flat areas", "--tree", tree_id, "--db", db_url)
    assert renamed.returncode == 0, renamed.stderr
    assert "“large flat areas”" in cli("tree", "show", category, "--tree", tree_id, "--db", db_url).stdout

    exported = json.loads(cli("tree", "export", "--format", "json", "--tree", tree_id, "--db", db_url).stdout)
    assert sum(node["size"] for node in exported["nodes"]) == json.loads(clustered.stdout)["points"]
    newick = cli("tree", "export", "--format", "newick", "--tree", tree_id, "--db", db_url).stdout.strip()
    assert newick.endswith(";") and newick.count("(") == newick.count(")")
    assert "'large flat areas [" in newick

    estimated = cli(
        "n-clusters", "classic", "--criterion", "silhouette", "--k-max", "5", "--out", str(root / "n_clusters"), *common
    )
    assert estimated.returncode == 0, estimated.stderr
    numbers = json.loads((root / "n_clusters" / "classic.kmeans.silhouette.json").read_text())
    assert numbers["ks"] == [2, 3, 4, 5]
    assert numbers["best_k"] == numbers["ks"][int(np.argmax(numbers["scores"]))]
    assert (root / "n_clusters" / "classic.kmeans.silhouette.png").stat().st_size > 0

    missing = cli("tree", "show", "Nowhere.9", "--tree", tree_id, "--db", db_url)
    assert missing.returncode == 2 and missing.stderr.startswith("error: no node 'Nowhere.9'")
    assert missing.stderr.count("\n") == 1
    unknown = cli("cluster", "classic", "--method", "dbscan", *common)
    assert unknown.returncode == 2 and "unknown method 'dbscan'" in unknown.stderr
    floor = cli("tree", "build", "classic", "--min-silhouette", "1.5", "--store", str(root / "store"), *common)
    assert floor.returncode == 2 and floor.stderr.count("\n") == 1
    assert floor.stderr.startswith("error: --min-silhouette must be in [0, 1) (0: no floor); got 1.5")
    sample = cli("tree", "build", "classic", "--sample-size", "9", "--store", str(root / "store"), *common)
    assert sample.returncode == 2 and sample.stderr.count("\n") == 1
    assert sample.stderr.startswith("error: --sample-size must be at least twice --min-size")


def test_place_with_places_by_another_set_and_splits_the_tree_set(demo_repository, tmp_path):
    """A tree split on PCA codes but placed with the descriptor: its supervised classifiers learn from the
    descriptor, as the descriptor's own tree's do, while label spreading's graph is the codes', as in the codes' own
    tree."""
    root, _, sessions, truth = demo_repository
    store = FeatureStore(root / "features.h5")
    md5s, values = store.read("classic")
    labelled = label_a_fraction(sessions, "place-with", [md5 for md5 in md5s if md5 in truth], truth, 0.15)
    codes = reduce_feature_set(sessions, store, "classic", "pca", 3, tmp_path)["feature_set"]
    by_descriptor = build_tree(sessions, store, root / "store", "classic", "ward", "place-with", depth=1, min_size=5)
    split_on_codes = build_tree(
        sessions,
        store,
        root / "store",
        codes,
        "ward",
        "place-with",
        depth=1,
        min_size=5,
        placement_feature_set="classic",
    )
    placed_alone = build_tree(sessions, store, root / "store", codes, "ward", "place-with", depth=1, min_size=5)

    def cross_validated(summary: dict) -> dict:
        return {row["classifier"]: (row["accuracy"], row["log_loss"]) for row in summary["placement"]["cv"]}

    mixed, descriptor, alone = map(cross_validated, (split_on_codes, by_descriptor, placed_alone))
    for name in ("logistic-regression", "knn", "gradient-boosting"):
        assert mixed[name] == descriptor[name] != alone[name], name
    assert mixed["label-spreading"] == alone["label-spreading"] != descriptor["label-spreading"]
    assert split_on_codes["labelled"] == len(labelled)
    with sessions() as session:
        tree = session.get(TreeRow, split_on_codes["tree_id"])
        assert tree.feature_set == codes
        assert json.loads(tree.parameters)["placement_feature_set"] == "classic"

    store.replace("classic-short", md5s[:-5], values[:-5])
    with pytest.raises(ClusteringError, match=f"5 of the {len(md5s)} images of classic have no row in classic-short"):
        build_tree(
            sessions, store, root / "store", "classic", "ward", "place-with", placement_feature_set="classic-short"
        )


def leaf_of_images(sessions, tree_id: int, store: Path) -> dict[str, str]:
    """The path of the leaf each image of a stored tree lies in, by md5."""
    tree = semcurate.Tree.open(sessions, tree_id, store)
    return {
        Path(image).stem: node.path for node in tree.walk() if not node.n_children for image in tree.images(node.path)
    }


def test_a_category_block_is_split_with_each_category_and_weight_0_changes_nothing(demo_repository):
    """A block that knows each image's generated sub-category (its number, plus noise) lifts the leaves' NMI against
    them when it is appended to the categories' rows; at weight 0 it is left out, and the tree is the one built
    without it. A block that misses images is refused in one line."""
    root, _, sessions, truth = demo_repository
    store = FeatureStore(root / "features.h5")
    md5s, _ = store.read("classic")
    rng = np.random.default_rng(0)
    paths = sorted({"/".join(path.split("/")[:2]) for path in truth.values()})
    # each image's sub-category numbered within its category (0, 1, ...); 0 for an image without a generated truth
    number = {
        path: sum(other.split("/")[0] == path.split("/")[0] for other in paths[:index])
        for index, path in enumerate(paths)
    }
    sub_category = np.array([number.get("/".join(truth.get(md5, "").split("/")[:2]), 0) for md5 in md5s], float)
    known = [md5 for md5 in md5s if md5 in truth]
    store.replace("oracle-block", md5s, (sub_category + rng.normal(0, 0.05, len(md5s)))[:, None])
    arguments = (sessions, store, root / "store", "classic", "louvain", "SEM_Dataset")
    options = {"depth": 2, "min_size": 5}

    def leaf_nmi(summary: dict) -> float:
        leaves = leaf_of_images(sessions, summary["tree_id"], root / "store")
        scored = [md5 for md5 in known if md5 in leaves]
        return normalized_mutual_info_score(
            ["/".join(truth[md5].split("/")[:2]) for md5 in scored], [leaves[md5] for md5 in scored]
        )

    plain = build_tree(*arguments, **options)
    unweighted = build_tree(*arguments, **options, category_block="oracle-block", category_block_weight=0.0)
    informed = build_tree(*arguments, **options, category_block="oracle-block", category_block_weight=8.0)
    plain_leaves = leaf_of_images(sessions, plain["tree_id"], root / "store")
    assert leaf_of_images(sessions, unweighted["tree_id"], root / "store") == plain_leaves
    assert leaf_nmi(informed) > leaf_nmi(plain) + 0.05, (leaf_nmi(informed), leaf_nmi(plain))
    with sessions() as session:
        stored = json.loads(session.get(TreeRow, informed["tree_id"]).parameters)
    assert (stored["category_block"], stored["category_block_weight"]) == ("oracle-block", 8.0)
    assert informed["category_block"] == "oracle-block"

    store.replace("short-block", md5s[:-3], np.zeros((len(md5s) - 3, 2)))
    with pytest.raises(ClusteringError, match=r"3 of the .* have no row in short-block: .*or build without --category"):
        build_tree(*arguments, **options, category_block="short-block")


def test_community_weights_weigh_each_categorys_rows_with_its_block_before_the_split(demo_repository, monkeypatch):
    """``community_weights``: each category's rows, the block's columns beside them, go through
    :func:`community_weighted` once, with the tree's seed and sample size, and the rows it returns are the ones
    split; the
    tree's parameters say so. Without it, it is never called."""
    import semcurate.clustering.tree_building as tree_building

    root, _, sessions, _ = demo_repository
    store = FeatureStore(root / "features.h5")
    md5s, values = store.read("classic")
    store.replace("two-block", md5s, values[:, :2])
    seen, splits = [], []
    original_split = tree_building.split

    def spy(rows, *, sample_size, random_state):
        seen.append((rows.shape, sample_size, random_state))
        return rows * 2.0

    def recorded_split(rows, *arguments, **options):
        splits.append(rows.copy())
        return original_split(rows, *arguments, **options)

    monkeypatch.setattr(tree_building, "community_weighted", spy)
    monkeypatch.setattr(tree_building, "split", recorded_split)
    arguments = (sessions, store, root / "store", "classic", "louvain", "SEM_Dataset")
    plain = build_tree(*arguments, depth=1, min_size=5, category_block="two-block", random_state=3)
    assert seen == []
    plain_rows = list(splits)
    splits.clear()
    weighted = build_tree(
        *arguments,
        depth=1,
        min_size=5,
        category_block="two-block",
        random_state=3,
        sample_size=700,
        community_weights=True,
    )
    assert len(seen) == weighted["categories"] == len(plain_rows)
    assert {shape[1] for shape, _, _ in seen} == {values.shape[1] + 2}
    assert {(sample, seed) for _, sample, seed in seen} == {(700, 3)}
    for doubled, rows in zip(splits, plain_rows, strict=True):
        np.testing.assert_allclose(doubled, 2.0 * rows)
    with sessions() as session:
        assert json.loads(session.get(TreeRow, weighted["tree_id"]).parameters)["community_weights"] is True
        assert json.loads(session.get(TreeRow, plain["tree_id"]).parameters)["community_weights"] is False


def test_tree_build_takes_a_category_block_from_the_command_line(demo_repository):
    """``tree build --category-block SET --category-block-weight W`` stores both with the tree; a set the store
    does not hold, or a negative weight, is refused in one line with exit 2."""
    root, db_url, sessions, _ = demo_repository
    store = FeatureStore(root / "features.h5")
    md5s, values = store.read("classic")
    store.replace("cli-block", md5s, values[:, :2])
    common = ("--db", db_url, "--feature-store", str(root / "features.h5"), "--store", str(root / "store"))
    arguments = ("tree", "build", "classic", "--method", "louvain", "--depth", "1", "--min-size", "5", *common)
    built = cli(*arguments, "--category-block", "cli-block", "--category-block-weight", "2.5", "--community-weights")
    assert built.returncode == 0, built.stderr
    tree_id = int(re.search(r"tree (\d+) stored", built.stdout).group(1))
    with sessions() as session:
        stored = json.loads(session.get(TreeRow, tree_id).parameters)
    assert (stored["category_block"], stored["category_block_weight"], stored["community_weights"]) == (
        "cli-block",
        2.5,
        True,
    )
    for bad in (
        ("--category-block", "no-such-block"),
        ("--category-block", "cli-block", "--category-block-weight", "-1"),
    ):
        refused = cli(*arguments, *bad)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) <= 6, refused.stderr  # typer boxes a usage error
    missing = cli(*arguments, "--category-block", "no-such-block")
    assert missing.stderr.strip().count("\n") == 0 and "no-such-block" in missing.stderr, missing.stderr


def test_a_hierarchy_stops_splits_where_its_labels_agree_and_nowhere_else(demo_repository):
    """A hierarchy that labels every image by the node it reached two levels down in a tree built without one
    (``Category/<path>``): the same tree built with it (same seed) stops at exactly those nodes, so it is the
    first tree cut two levels down; a node's labels that do not agree stop nothing."""
    root, _, sessions, _ = demo_repository
    arguments = (sessions, FeatureStore(root / "features.h5"), root / "store", "classic", "louvain", "SEM_Dataset")
    floors_off = {"depth": 3, "min_size": 5, "min_silhouette": 0.0, "min_null_z": 0.0}
    plain = build_tree(*arguments, **floors_off)
    tree = semcurate.Tree.open(sessions, plain["tree_id"], root / "store")
    second_level = [node for node in tree.walk() if node.depth == 2]
    split_again = [node for node in second_level if node.n_children]
    assert split_again, "the floors are off so that some node two levels down is split"
    store_labels(
        sessions,
        "SecondLevel",
        {md5: f"{node.category}/{node.path}" for node in second_level for md5 in tree.member_md5s(node.id)},
    )
    guided = build_tree(*arguments, **floors_off, hierarchy_dataset="SecondLevel")
    assert guided["stopped_by_labels"] == len(split_again)
    unsplit_categories = sum(1 for node in tree.roots() if not node.n_children)
    assert guided["leaves"] == len(second_level) + unsplit_categories
    cut = semcurate.Tree.open(sessions, guided["tree_id"], root / "store")
    assert [(node.path, node.size) for node in cut.walk()] == [
        (node.path, node.size) for node in tree.walk() if node.depth <= 2
    ]
    with pytest.raises(EvaluationError, match="built with --hierarchy SecondLevel, whose labels decide where its"):
        tree_scores(sessions, "SecondLevel", guided["tree_id"])


def test_a_hierarchy_merges_sibling_leaves_whose_labels_agree(demo_repository):
    """A hierarchy that labels every image by the node it reached one level below its category, except that two
    siblings share one label: the tree built with it is the first tree cut one level below the categories with
    those two joined into one leaf, image for image (the category itself, when they were its only children)."""
    root, _, sessions, _ = demo_repository
    arguments = (sessions, FeatureStore(root / "features.h5"), root / "store", "classic", "louvain", "SEM_Dataset")
    floors_off = {"depth": 2, "min_size": 5, "min_silhouette": 0.0, "min_null_z": 0.0}
    tree = semcurate.Tree.open(sessions, build_tree(*arguments, **floors_off)["tree_id"], root / "store")
    widest = max(tree.roots(), key=lambda node: node.n_children)
    assert widest.n_children >= 2, "the floors are off so that some category is split"
    first_level = [node for node in tree.walk() if node.depth == 2]
    label = {node.id: f"{node.category}/{node.path}" for node in first_level}
    joined = tree.children(widest.id)[:2]
    label[joined[1].id] = label[joined[0].id]
    store_labels(sessions, "Joined", {md5: label[node.id] for node in first_level for md5 in tree.member_md5s(node.id)})

    guided = build_tree(*arguments, **floors_off, hierarchy_dataset="Joined")
    assert guided["merged_by_labels"] == 1
    expected = {frozenset(tree.member_md5s(node.id)) for node in first_level if node not in joined}
    expected |= {frozenset(tree.member_md5s(node.id)) for node in tree.roots() if not node.n_children}
    expected.add(frozenset(tree.member_md5s(joined[0].id) + tree.member_md5s(joined[1].id)))
    cut = semcurate.Tree.open(sessions, guided["tree_id"], root / "store")
    assert {frozenset(cut.member_md5s(node.id)) for node in cut.walk() if not node.n_children} == expected
    with sessions() as session:
        parameters = json.loads(session.get(TreeRow, guided["tree_id"]).parameters)
    assert (parameters["hierarchy_dataset"], parameters["merged_by_labels"]) == ("Joined", 1)


def test_a_hierarchy_without_sub_category_paths_is_refused_in_one_line(demo_repository):
    root, db_url, _, _ = demo_repository
    result = cli(
        "tree", "build", "classic", "--dataset", "SEM_Dataset", "--hierarchy", "SEM_Dataset",
        "--store", str(root / "store"), "--feature-store", str(root / "features.h5"), "--db", db_url,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "dataset 'SEM_Dataset' has no matched label with a sub-category path" in result.stderr
