"""``semcurate evaluate``, ``compare-2d`` and ``report`` on the demo corpus: numbers checked against scikit-learn."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score
from sqlalchemy import func, select

from semcurate.clustering.hierarchy import Cutter
from semcurate.clustering.runs import cluster_feature_set, load_clustering
from semcurate.clustering.store import ClusterStore
from semcurate.clustering.tree_building import build_tree
from semcurate.db import Clustering, Label, TreeMemberRow, TreeNodeRow
from semcurate.evaluation.evaluate import EvaluationError, evaluate, stored_clustering, tree_scores
from semcurate.features.analysis import labelled_images
from semcurate.features.store import FeatureStore

pytestmark = pytest.mark.slow  # ingests, extracts and clusters a demo corpus, then runs the CLI end to end


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, text=True)


def clustering_count(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Clustering))


def test_evaluate_reads_stored_clusterings_only_and_names_the_command_that_makes_a_missing_one(
    demo_repository, tmp_path
):
    root, _, sessions, _ = demo_repository
    feature_store = FeatureStore(root / "features.h5")
    feature_store.append("classic.unclustered", *feature_store.read("classic"))
    before = clustering_count(sessions)
    with pytest.raises(
        EvaluationError,
        match=re.escape(
            "no ward clustering of classic.unclustered is stored: "
            "run `semcurate cluster classic.unclustered --method ward` first"
        ),
    ):
        evaluate(sessions, ["classic.unclustered"], ["ward"], "SEM_Dataset", tmp_path)
    with pytest.raises(
        EvaluationError,
        match=re.escape("run `semcurate cluster classic.unclustered --method kmeans --subset 1u-2u` first"),
    ):
        stored_clustering(sessions, "classic.unclustered", "kmeans", "1u-2u")
    assert clustering_count(sessions) == before  # the evaluation stage never writes the clustering stage's output
    assert not (tmp_path / "nmi_grid.json").exists()


def test_nmi_curves_equal_scikit_learn_on_every_cut_of_the_stored_clusterings(demo_repository, tmp_path):
    root, _, sessions, _ = demo_repository
    feature_store, cluster_store = FeatureStore(root / "features.h5"), ClusterStore(root / "clusterings.h5")
    # A copy of the rows that no other test clusters, so that every clustering here is made by this test.
    feature_store.append("classic.evaluated", *feature_store.read("classic"))
    clustering_ids = {
        method: cluster_feature_set(sessions, feature_store, cluster_store, "classic.evaluated", method, k_max=30)[
            "clustering_id"
        ]
        for method in ("ward", "density-peaks", "kmeans")
    }
    before = clustering_count(sessions)
    result = evaluate(
        sessions, ["classic.evaluated"], ["ward", "density-peaks", "kmeans"], "SEM_Dataset", tmp_path, k_max=40
    )
    frame = result["frames"][0]
    assert {method: curve["clustering_id"] for method, curve in frame["curves"].items()} == clustering_ids
    categories = labelled_images(sessions, "SEM_Dataset", None)
    for method in ("ward", "density-peaks", "kmeans"):
        _row, stored = load_clustering(sessions, clustering_ids[method])
        labelled = np.array([md5 in categories for md5 in stored.md5s])
        truth = [categories[md5] for md5 in stored.md5s if md5 in categories]
        if method == "kmeans":  # flat: the stored partition of every k = 2 .. 30
            partitions = {k: stored.labels_by_k[k] for k in range(2, 31)}
        else:  # a tree: cut at every k = 2 .. k_max
            cutter = Cutter(stored.linkage)
            partitions = {k: cutter.labels(k) for k in range(2, 41)}
        expected = [
            normalized_mutual_info_score(truth, labels[labelled], average_method="geometric")
            for labels in partitions.values()
        ]
        assert frame["curves"][method]["ks"] == list(partitions)
        np.testing.assert_allclose(frame["curves"][method]["nmi"], expected, atol=1e-9)
    assert frame["n_labelled"] == len(categories)
    references = frame["references"]
    assert len(references["ideal"]) == len(references["uniform_mean"]) == len(references["ks"])
    assert all(ideal >= mean for ideal, mean in zip(references["ideal"], references["uniform_mean"], strict=True))
    assert (tmp_path / "nmi_grid.png").stat().st_size > 0
    stored = json.loads((tmp_path / "nmi_grid.json").read_text())
    assert {(row["feature_set"], row["method"]) for row in stored["best"]} == {
        ("classic.evaluated", "ward"),
        ("classic.evaluated", "density-peaks"),
        ("classic.evaluated", "kmeans"),
    }
    # "Best" is where the curve most exceeds the uniform-random reference at the same k, recomputed here.
    chance = dict(zip(references["ks"], references["uniform_mean"], strict=True))
    n_classes = len(set(categories.values()))
    for row in stored["best"]:
        curve = frame["curves"][row["method"]]
        excess = {k: value - chance[k] for k, value in zip(curve["ks"], curve["nmi"], strict=True) if k in chance}
        assert row["k"] == max(excess, key=lambda k: (excess[k], -k))
        assert row["excess_over_chance"] == pytest.approx(max(excess.values()), abs=1e-4)
        assert row["classes"] == n_classes
        assert row["nmi_at_classes"] == pytest.approx(curve["nmi"][curve["ks"].index(n_classes)], abs=1e-4)

    assert clustering_count(sessions) == before


def test_tree_scores_against_the_hierarchical_labels(demo_repository):
    root, _, sessions, _ = demo_repository
    summary = build_tree(
        sessions,
        FeatureStore(root / "features.h5"),
        root / "store",
        "classic",
        "ward",
        "SEM_Dataset",
        depth=2,
        min_size=5,
    )
    scored = tree_scores(sessions, "Hierarchical", summary["tree_id"])
    with sessions() as session:
        label_paths: dict[str, set[str]] = {}
        for md5, path in session.execute(
            select(Label.image_md5, Label.category_path).where(
                Label.dataset == "Hierarchical", Label.image_md5.is_not(None)
            )
        ):
            label_paths.setdefault(md5, set()).add(path)
        nodes = {
            node.id: node
            for node in session.scalars(select(TreeNodeRow).where(TreeNodeRow.tree_id == summary["tree_id"]))
        }
        members = {
            node_id: set(session.scalars(select(TreeMemberRow.image_md5).where(TreeMemberRow.node_id == node_id)))
            for node_id in nodes
        }
    paths = {md5: next(iter(found)) for md5, found in label_paths.items() if len(found) == 1}  # conflicts left out
    parents = {node.parent_id for node in nodes.values()}
    leaf_of = {md5: nodes[node_id].path for node_id in nodes if node_id not in parents for md5 in members[node_id]}
    labelled = [md5 for md5 in leaf_of if md5 in paths]
    assert scored["labelled_images"] == len(labelled) > 10
    expected = normalized_mutual_info_score(
        [paths[md5] for md5 in labelled], [leaf_of[md5] for md5 in labelled], average_method="geometric"
    )
    assert scored["leaf_nmi"] == pytest.approx(expected)

    # Dendrogram purity by brute force over the pairs: for every two labelled images of one class, the purity of
    # the deepest stored node holding both (all labelled images when no node does), averaged over the pairs.
    nodes_of = {md5: {node_id for node_id in nodes if md5 in members[node_id]} for md5 in labelled}
    inside = {node_id: [md5 for md5 in labelled if md5 in members[node_id]] for node_id in nodes}
    purities = []
    for first, second in itertools.combinations(labelled, 2):
        if paths[first] == paths[second]:
            common = nodes_of[first] & nodes_of[second]
            held = inside[max(common, key=lambda node_id: nodes[node_id].depth)] if common else labelled
            purities.append(sum(paths[md5] == paths[first] for md5 in held) / len(held))
    assert len(purities) >= 3  # same-path pairs are few: the Hierarchical labels are fine-grained
    assert scored["purity"] == pytest.approx(float(np.mean(purities)), rel=1e-9)

    # Per top category, every one of them: NMI of its children (depth 2; the category itself when it was not
    # split) against the labels' second level, over the labelled images of that category placed in it.
    expected_per_category = {}
    for top in (node for node in nodes.values() if node.depth == 1):
        children = {
            md5: child.path for child in nodes.values() if child.parent_id == top.id for md5 in members[child.id]
        } or dict.fromkeys(members[top.id], top.path)
        placed = [md5 for md5 in children if md5 in paths and paths[md5].split("/")[0] == top.path]
        subcategories = ["/".join(paths[md5].split("/")[:2]) for md5 in placed]
        expected_per_category[top.path] = {
            "split": any(child.parent_id == top.id for child in nodes.values()),
            "labelled": len(placed),
            "children": len(set(children.values())),
            "subcategories": len(set(subcategories)),
            "nmi": normalized_mutual_info_score(
                subcategories, [children[md5] for md5 in placed], average_method="geometric"
            )
            if placed
            else None,
        }
    assert set(scored["per_category"]) == {node.path for node in nodes.values() if node.depth == 1}
    for category, cell in scored["per_category"].items():
        expected = expected_per_category[category]
        assert {**cell, "nmi": None} == {**expected, "nmi": None}
        assert cell["nmi"] == (None if expected["nmi"] is None else pytest.approx(expected["nmi"], rel=1e-9, abs=1e-12))
    with pytest.raises(EvaluationError, match="no matched labels of dataset 'Nowhere'"):
        tree_scores(sessions, "Nowhere", summary["tree_id"])
    with pytest.raises(EvaluationError, match="no tree 999 is stored: see `semcurate tree list`"):
        tree_scores(sessions, "Hierarchical", 999)


def test_evaluate_compare_2d_and_report_from_the_command_line(demo_repository, tmp_path):
    root, db_url, sessions, _ = demo_repository
    feature_store = FeatureStore(root / "features.h5")
    feature_store.append("classic.cli", *feature_store.read("classic"))  # clustered by this test only
    build_tree(sessions, feature_store, root / "store", "classic", "ward", "SEM_Dataset", depth=2, min_size=5)
    evaluate_args = (
        "evaluate",
        "--feature-sets",
        "classic.cli",
        "--methods",
        "ward",
        "single",
        "--k-max",
        "25",
        "--hierarchy",
        "Hierarchical",
        "--out",
        str(tmp_path / "results" / "evaluate"),
        "--db",
        db_url,
    )
    missing = cli(*evaluate_args)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    assert missing.stderr == (
        "error: no ward clustering of classic.cli is stored: run `semcurate cluster classic.cli --method ward` first\n"
    )
    for method in ("ward", "single"):
        clustered = cli(
            "cluster",
            "classic.cli",
            "--method",
            method,
            "--db",
            db_url,
            "--feature-store",
            str(root / "features.h5"),
            "--cluster-store",
            str(root / "clusterings.h5"),
        )
        assert clustered.returncode == 0, clustered.stderr
    evaluated = cli(*evaluate_args)
    assert evaluated.returncode == 0, evaluated.stderr
    grid = json.loads((tmp_path / "results" / "evaluate" / "nmi_grid.json").read_text())
    assert set(grid["frames"][0]["curves"]) == {"ward", "single"}
    assert "leaf NMI" in evaluated.stdout
    assert json.loads((tmp_path / "results" / "evaluate" / "tree_scores.json").read_text())["labelled_images"] > 0

    unknown = cli("evaluate", "--feature-sets", "classic", "--dataset", "Nowhere", "--db", db_url)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: no matched labels of dataset 'Nowhere'")

    compared = cli("compare-2d", "--points", "150", "--out", str(tmp_path / "results" / "compare2d"))
    assert compared.returncode == 0, compared.stderr
    records = json.loads((tmp_path / "results" / "compare2d" / "compare2d.json").read_text())
    assert len(records) == 30 and {record["algorithm"] for record in records} == {
        "single",
        "complete",
        "centroid",
        "ward",
        "density-peaks",
    }

    report = tmp_path / "report.html"
    written = cli(
        "report", str(report), "--results", str(tmp_path / "results"), "--store", str(root / "store"), "--db", db_url
    )
    assert written.returncode == 0, written.stderr
    html = report.read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and not re.search(r"src=\"https?:", html)
    assert "Nanowires" in html or "Particles" in html
    missing_folder = cli("report", str(tmp_path / "no" / "such" / "folder" / "r.html"), "--db", db_url)
    assert missing_folder.returncode == 2 and missing_folder.stderr.count("\n") == 1


def test_an_unsplit_category_scores_zero_and_is_marked():
    from semcurate.evaluation.evaluate import category_score

    truth = {"a": "Fibres/thin", "b": "Fibres/thick", "c": "Fibres/thick", "d": "Tips/sharp"}
    unsplit = category_score(dict.fromkeys("abcd", "Fibres"), truth, "Fibres", was_split=False)
    # Image d is labelled with another category: it does not count against Fibres' sub-categories.
    assert unsplit == {"split": False, "labelled": 3, "children": 1, "subcategories": 2, "nmi": 0.0}
    split = category_score({"a": "Fibres.1", "b": "Fibres.2", "c": "Fibres.2"}, truth, "Fibres", was_split=True)
    assert split["nmi"] == pytest.approx(1.0) and split["children"] == 2
    unlabelled = category_score({"x": "Dots"}, truth, "Dots", was_split=False)
    assert unlabelled["nmi"] is None and unlabelled["labelled"] == 0


def test_tree_purity_is_undefined_not_a_crash_when_no_two_labelled_images_share_a_path(demo_repository):
    """A tiny corpus (``semcurate demo --images 120``) may label no two tree images alike."""
    from semcurate.db import LabelDataset

    root, _, sessions, _ = demo_repository
    tree_id = build_tree(
        sessions, FeatureStore(root / "features.h5"), root / "store", "classic", "ward", "SEM_Dataset", depth=1
    )["tree_id"]
    with sessions() as session:
        md5s = list(session.scalars(select(TreeMemberRow.image_md5).distinct().limit(6)))
    with sessions.begin() as session:
        session.add(LabelDataset(name="Unique", directory="-", n_files=6, n_unique=6, n_matched=6,
                                 n_matched_reencoded=0, n_unmatched=0, n_conflicting=0))  # fmt: skip
        session.flush()  # the dataset row before its labels (no ORM relationship orders them)
        for index, md5 in enumerate(md5s):
            path = f"Category{index}/Sub{index}"
            session.add(Label(dataset="Unique", relpath=f"{index}.jpg", file_md5=md5, category_path=path,
                              category=f"Category{index}", image_md5=md5, match="md5"))  # fmt: skip
    try:
        scored = tree_scores(sessions, "Unique", tree_id)
    finally:
        with sessions.begin() as session:
            session.execute(Label.__table__.delete().where(Label.dataset == "Unique"))
            session.execute(LabelDataset.__table__.delete().where(LabelDataset.name == "Unique"))
    assert scored["labelled_images"] == 6 and scored["purity"] is None
