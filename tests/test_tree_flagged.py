"""``tree build`` leaves out the images the quality stage flagged unusable, counts them, and keeps them on request.

The corpus is the demo generator's, whose ``ground_truth.csv`` says which
images it drew a defect on (blank, blurred, dark, light, charging, colour):
that truth is read here from the files' own md5s, not from the code under
test.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from semcurate.cli import app
from semcurate.clustering.tree_building import build_tree
from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import open_database
from semcurate.db.models import QualityScore, TreeMemberRow, TreeNodeRow, TreeRow
from semcurate.features.extract import create_extractor, extract
from semcurate.features.store import FeatureStore
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.labels import import_labels
from semcurate.ingest.quality import UNUSABLE_PICTURE_FLAGS
from semcurate.ingest.quality_database import apply_thresholds, score_images
from semcurate.ingest.scale_database import read_scales


@pytest.fixture(scope="module")
def scored_repository(tmp_path_factory):
    """150 demo images ingested, labelled (half of them), described, their scale read and quality-scored; returns
    ``(root, db_url, sessions, defect)``, ``defect`` the generator's defect of each image md5 ("" for none)."""
    root = tmp_path_factory.mktemp("flagged")
    corpus = root / "corpus"
    make_sem_corpus(corpus, 150, seed=5, workers=2, size_scale=0.5, labelled_share=0.5)
    db_url = f"sqlite:///{root / 'db.sqlite'}"
    sessions = open_database(db_url)
    ingest(corpus / "new_dati_SEM", root / "store", sessions, workers=2)
    import_labels(corpus / "datasets" / "SEM_Dataset", "SEM_Dataset", sessions, root / "store", workers=2)
    extract(sessions, root / "store", FeatureStore(root / "features.h5"), create_extractor("classic"), workers=2)
    read_scales(sessions, root / "store", workers=2)  # the quality scores leave out the data bar it finds
    score_images(sessions, root / "store", workers=2)
    defect = {}
    with open(corpus / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["kind"] == "original":
                defect[hashlib.md5((corpus / row["path"]).read_bytes()).hexdigest()] = row["defect"]
    return root, db_url, sessions, defect


def tree_members(sessions, tree_id: int) -> set[str]:
    with sessions() as session:
        return set(
            session.scalars(
                select(TreeMemberRow.image_md5)
                .join(TreeNodeRow, TreeNodeRow.id == TreeMemberRow.node_id)
                .where(TreeNodeRow.tree_id == tree_id, TreeNodeRow.depth == 1)
            )
        )


def test_flagged_images_are_left_out_and_counted_per_flag(scored_repository):
    root, _, sessions, defect = scored_repository
    store = FeatureStore(root / "features.h5")
    described = set(store.read("classic")[0])
    with sessions() as session:
        raised = {md5: flags for md5, flags in session.execute(select(QualityScore.image_md5, QualityScore.flags))}
    unusable = {md5 for md5, flags in raised.items() if set(flags.split(",")) & set(UNUSABLE_PICTURE_FLAGS)}
    assert unusable, "the corpus should hold flagged images"

    summary = build_tree(sessions, store, root / "store", "classic", "ward", "SEM_Dataset", depth=1, min_size=5)
    members = tree_members(sessions, summary["tree_id"])
    assert members == described - unusable
    assert summary["images"] == len(members) and summary["left_out_flagged"] == len(described & unusable)
    with sessions() as session:
        parameters = json.loads(session.get(TreeRow, summary["tree_id"]).parameters)
    per_flag = Counter(
        flag for md5 in described & unusable for flag in raised[md5].split(",") if flag in UNUSABLE_PICTURE_FLAGS
    )
    assert parameters["left_out_per_flag"] == dict(per_flag) and parameters["quality_run"] is not None
    assert parameters["left_out_flagged"] == summary["left_out_flagged"] and parameters["leave_out_flagged"]

    # Against the generator's truth: most images drawn with a defect are out, almost every sound one is in.
    drawn = {md5 for md5 in described if defect.get(md5)}
    sound = {md5 for md5 in described if defect.get(md5) == ""}
    assert len(drawn) >= 8, Counter(defect.values())
    assert len(drawn - members) >= 0.8 * len(drawn), sorted(Counter(defect[md5] for md5 in drawn & members).items())
    assert len(sound & members) >= 0.95 * len(sound)


def test_keep_flagged_keeps_every_described_image_and_says_so(scored_repository):
    root, db_url, sessions, _ = scored_repository
    result = CliRunner().invoke(
        app,
        [
            "tree", "build", "classic", "--depth", "1", "--min-size", "5", "--keep-flagged",
            "--db", db_url, "--feature-store", str(root / "features.h5"), "--store", str(root / "store"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with sessions() as session:
        tree = session.scalars(select(TreeRow).order_by(TreeRow.id.desc())).first()
    parameters = json.loads(tree.parameters)
    assert tree_members(sessions, tree.id) == set(FeatureStore(root / "features.h5").read("classic")[0])
    assert parameters["left_out_flagged"] == 0 and parameters["leave_out_flagged"] is False
    assert parameters["quality_run"] is None


def test_the_help_names_every_flag_that_leaves_an_image_out():
    text = " ".join(CliRunner().invoke(app, ["tree", "build", "--help"], terminal_width=400).output.split())
    option = text[text.index("--keep-flagged") :]
    for flag in UNUSABLE_PICTURE_FLAGS:
        assert flag in option[:400], flag


def test_a_repository_flagged_through_and_through_gets_one_line_not_a_tree(scored_repository):
    """Last in this module: it re-flags the module's repository (every image 'dark')."""
    root, db_url, sessions, _ = scored_repository
    apply_thresholds(sessions, overrides={"dark": 256.0})  # brightness is 0-255: every image is below
    result = CliRunner().invoke(
        app,
        [
            "tree", "build", "classic", "--depth", "1",
            "--db", db_url, "--feature-store", str(root / "features.h5"), "--store", str(root / "store"),
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    described = len(FeatureStore(root / "features.h5").read("classic")[0])
    message = " ".join(result.output.split())
    assert f"error: the quality stage flagged every one of the {described} images of classic (" in message
    assert f"dark {described}," in message  # with the other flags the images also raise, counted
    assert "--keep-flagged" in message
    assert "Traceback" not in result.output
