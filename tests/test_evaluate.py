"""``semcurate evaluate``, ``compare-2d`` and ``report`` on the demo corpus: numbers checked against scikit-learn."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score
from sqlalchemy import func, select

from semcurate.clustering.hierarchy import Cutter
from semcurate.clustering.runs import load_clustering
from semcurate.clustering.store import ClusterStore
from semcurate.clustering.tree_building import build_tree
from semcurate.db import Clustering, Label, TreeMemberRow, TreeNodeRow
from semcurate.evaluation.evaluate import EvaluationError, evaluate, tree_scores
from semcurate.features.analysis import labelled_images
from semcurate.features.store import FeatureStore


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, text=True)


def test_nmi_curves_equal_scikit_learn_on_every_cut_and_reuse_stored_clusterings(demo_repository, tmp_path):
    root, _, sessions, _ = demo_repository
    stores = FeatureStore(root / "features.h5"), ClusterStore(root / "clusterings.h5")
    # A copy of the rows that no other test clusters, so that every clustering here is made by this test.
    stores[0].append("classic.evaluated", *stores[0].read("classic"))
    result = evaluate(sessions, *stores, ["classic.evaluated"], ["ward", "density-peaks", "kmeans"], "SEM_Dataset",
                      tmp_path, k_max=40)
    frame = result["frames"][0]
    categories = labelled_images(sessions, "SEM_Dataset", None)
    for method in ("ward", "density-peaks"):
        row, stored = load_clustering(sessions, frame["curves"][method]["clustering_id"])
        labelled = np.array([md5 in categories for md5 in stored.md5s])
        truth = [categories[md5] for md5 in stored.md5s if md5 in categories]
        cutter = Cutter(stored.linkage)
        expected = [normalized_mutual_info_score(truth, cutter.labels(k)[labelled], average_method="geometric")
                    for k in range(2, 41)]
        np.testing.assert_allclose(frame["curves"][method]["nmi"], expected, atol=1e-9)
    assert frame["curves"]["kmeans"]["ks"] == list(range(2, 31))
    assert frame["n_labelled"] == len(categories)
    references = frame["references"]
    assert len(references["ideal"]) == len(references["uniform_mean"]) == len(references["ks"])
    assert all(ideal >= mean for ideal, mean in zip(references["ideal"], references["uniform_mean"]))
    assert (tmp_path / "nmi_grid.png").stat().st_size > 0
    stored = json.loads((tmp_path / "nmi_grid.json").read_text())
    assert {(row["feature_set"], row["method"]) for row in stored["best"]} == {
        ("classic.evaluated", "ward"), ("classic.evaluated", "density-peaks"), ("classic.evaluated", "kmeans")}

    with sessions() as session:
        before = session.scalar(select(func.count()).select_from(Clustering))
    evaluate(sessions, *stores, ["classic.evaluated"], ["ward", "density-peaks", "kmeans"], "SEM_Dataset", tmp_path,
             k_max=40)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Clustering)) == before


def test_tree_scores_against_the_hierarchical_labels(demo_repository):
    root, _, sessions, _ = demo_repository
    summary = build_tree(sessions, FeatureStore(root / "features.h5"), root / "store", "classic", "ward",
                         "SEM_Dataset", depth=2, min_size=5)
    scored = tree_scores(sessions, "Hierarchical", summary["tree_id"])
    with sessions() as session:
        paths = dict(session.execute(select(Label.image_md5, Label.category_path).where(
            Label.dataset == "Hierarchical", Label.image_md5.is_not(None))).all())
        nodes = session.scalars(select(TreeNodeRow).where(TreeNodeRow.tree_id == summary["tree_id"])).all()
        parents = {node.parent_id for node in nodes}
        leaf_of = {}
        for node in nodes:
            if node.id not in parents:
                for md5 in session.scalars(select(TreeMemberRow.image_md5).where(TreeMemberRow.node_id == node.id)):
                    leaf_of[md5] = node.path
    labelled = [md5 for md5 in leaf_of if md5 in paths]
    assert scored["labelled_images"] == len(labelled) > 10
    expected = normalized_mutual_info_score([paths[md5] for md5 in labelled], [leaf_of[md5] for md5 in labelled],
                                            average_method="geometric")
    assert scored["leaf_nmi"] == pytest.approx(expected)
    assert 0 < scored["purity"] <= 1
    for cell in scored["per_category"].values():
        assert 0 <= cell["nmi"] <= 1 and cell["subcategories"] >= 2
    with pytest.raises(EvaluationError, match="no matched labels of dataset 'Nowhere'"):
        tree_scores(sessions, "Nowhere", summary["tree_id"])


def test_evaluate_compare_2d_and_report_from_the_command_line(demo_repository, tmp_path):
    root, db_url, _, _ = demo_repository
    common = ("--db", db_url, "--feature-store", str(root / "features.h5"))
    evaluated = cli("evaluate", "--feature-sets", "classic", "--methods", "ward", "single", "--k-max", "25",
                    "--hierarchy", "Hierarchical", "--out", str(tmp_path / "results" / "evaluate"),
                    "--cluster-store", str(root / "clusterings.h5"), *common)
    assert evaluated.returncode == 0, evaluated.stderr
    grid = json.loads((tmp_path / "results" / "evaluate" / "nmi_grid.json").read_text())
    assert set(grid["frames"][0]["curves"]) == {"ward", "single"}
    assert "leaf NMI" in evaluated.stdout
    assert json.loads((tmp_path / "results" / "evaluate" / "tree_scores.json").read_text())["labelled_images"] > 0

    unknown = cli("evaluate", "--feature-sets", "classic", "--dataset", "Nowhere", *common)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: no matched labels of dataset 'Nowhere'")

    compared = cli("compare-2d", "--points", "150", "--out", str(tmp_path / "results" / "compare2d"))
    assert compared.returncode == 0, compared.stderr
    records = json.loads((tmp_path / "results" / "compare2d" / "compare2d.json").read_text())
    assert len(records) == 30 and {record["algorithm"] for record in records} == {
        "single", "complete", "centroid", "ward", "density-peaks"}

    report = tmp_path / "report.html"
    written = cli("report", str(report), "--results", str(tmp_path / "results"), "--store", str(root / "store"),
                  "--db", db_url)
    assert written.returncode == 0, written.stderr
    html = report.read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and not re.search(r"src=\"https?:", html)
    assert "Nanowires" in html or "Particles" in html
    missing_folder = cli("report", str(tmp_path / "no" / "such" / "folder" / "r.html"), "--db", db_url)
    assert missing_folder.returncode == 2 and missing_folder.stderr.count("\n") == 1
