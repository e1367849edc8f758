"""Ingest and label-import a generated demo corpus and compare with its ground truth."""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict

import pytest
from conftest import BACKENDS
from sqlalchemy import select

from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import File, Image, Label, open_database
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.labels import import_labels


@pytest.fixture(scope="module", params=BACKENDS)
def corpus(request, tmp_path_factory):
    """An 80-image corpus at quarter size, ingested with 2 workers, all three datasets imported, into an SQLite
    file and then into a database on the test PostgreSQL server. Half the images are labelled in SEM_Dataset (the
    default 14 % gives too few labelled files to hold a re-encoded one); seed 12 draws Hierarchical labels on more
    leaves than categories, which the dataset-table test needs to tell the two counts apart."""
    root = tmp_path_factory.mktemp("corpus")
    make_sem_corpus(root / "corpus", 80, seed=12, workers=2, size_scale=0.25, labelled_share=0.5)
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    sessions = open_database(url)
    summary = ingest(root / "corpus" / "new_dati_SEM", root / "store", sessions, workers=2)
    imports = {
        name: import_labels(root / "corpus" / "datasets" / name, name, sessions, root / "store", workers=2)
        for name in ("SEM_Dataset", "Hierarchical", "Majority")
    }
    with (root / "corpus" / "ground_truth.csv").open(encoding="utf-8") as handle:
        truth = list(csv.DictReader(handle))
    with sessions() as session:
        files = {row.relpath: row for row in session.scalars(select(File))}
        images = {row.md5: row for row in session.scalars(select(Image))}
        labels = list(session.scalars(select(Label)))
    return {
        "summary": summary,
        "imports": imports,
        "truth": truth,
        "files": files,
        "images": images,
        "labels": labels,
        "database": url,
        "root": root,
    }


def source_truth(corpus) -> list[dict]:
    return [row for row in corpus["truth"] if row["kind"] != "labelled"]


def identity_map(corpus) -> dict[str, str]:
    """Truth image id → ingested image md5, asserting every file of an id maps to one md5."""
    mapping = defaultdict(set)
    for row in source_truth(corpus):
        if row["image_id"] and row["kind"] not in ("corrupt", "unsupported"):
            mapping[row["image_id"]].add(corpus["files"][row["path"].removeprefix("new_dati_SEM/")].image_md5)
    assert all(len(md5s) == 1 and None not in md5s for md5s in mapping.values())
    return {image_id: md5s.pop() for image_id, md5s in mapping.items()}


def test_counts_equal_the_ground_truth(corpus):
    rows, summary = source_truth(corpus), corpus["summary"]
    kinds = defaultdict(int)
    for row in rows:
        kinds[row["kind"]] += 1
    image_ids = {row["image_id"] for row in rows if row["kind"] not in ("corrupt", "unsupported")}
    assert summary["files_seen"] == len(rows)
    assert summary["images_total"] == len(image_ids)
    assert summary["duplicates"] == kinds["duplicate"] + kinds["metadata-variant"] + kinds["jpg-pair"]
    # A JPG collision is a TIFF whose bytes differ from the TIFF kept for its image (the first one the walk met,
    # which may be the metadata variant rather than the original): counted here from the bytes on disk.
    mapping = identity_map(corpus)
    source = corpus["root"] / "corpus"
    collisions = sum(
        1
        for row in rows
        if row["format"] == "TIFF"
        and row["kind"] not in ("corrupt", "unsupported")
        and hashlib.md5((source / row["path"]).read_bytes()).hexdigest() != mapping[row["image_id"]]
    )
    assert summary["jpg_collisions"] == collisions >= kinds["metadata-variant"]
    assert summary["corrupt"] == kinds["corrupt"]
    assert summary["unsupported"] == kinds["unsupported"]
    assert summary["jpg_only"] == len({row["image_id"] for row in rows if row["jpg_only"] == "true"})
    # a group holds an original with its near-duplicates and re-saved variants: one group per original
    assert summary["near_duplicate_groups"] == len(
        {row["near_duplicate_of"] for row in rows if row["near_duplicate_of"]}
    )
    assert summary["pending"] == 0


def test_each_true_image_is_exactly_one_ingested_image(corpus):
    mapping = identity_map(corpus)
    assert len(set(mapping.values())) == len(mapping)  # distinct ids → distinct images
    assert set(mapping.values()) == set(corpus["images"])
    for row in source_truth(corpus):
        if row["jpg_only"] == "true" and row["image_id"]:
            assert corpus["images"][mapping[row["image_id"]]].jpg_only


def test_file_statuses_follow_their_kind(corpus):
    # Which of several byte-identical (or pixel-identical) files stands for the image is a matter of path order.
    either = {"image", "duplicate"}
    expected = {
        "corrupt": {"corrupt"},
        "unsupported": {"unsupported"},
        "jpg-pair": {"duplicate"},
        "duplicate": either,
        "near-duplicate": either,
        "original": either,
        "metadata-variant": either,
        "variant": {"image"},  # a resized or re-saved copy: an image of its own, grouped with its original
    }
    images_per_id = defaultdict(int)
    for row in source_truth(corpus):
        ingested = corpus["files"][row["path"].removeprefix("new_dati_SEM/")]
        assert ingested.status in expected[row["kind"]], (row["path"], row["kind"], ingested.status)
        images_per_id[row["image_id"]] += ingested.status == "image"
    assert all(count == 1 for image_id, count in images_per_id.items() if image_id)


def test_near_duplicates_share_a_group_with_their_original(corpus):
    mapping, images = identity_map(corpus), corpus["images"]
    pairs = {(row["image_id"], row["near_duplicate_of"]) for row in source_truth(corpus) if row["near_duplicate_of"]}
    assert pairs
    for near, original in pairs:
        assert images[mapping[near]].near_duplicate_group is not None
        assert images[mapping[near]].near_duplicate_group == images[mapping[original]].near_duplicate_group
    grouped = sum(1 for image in images.values() if image.near_duplicate_group)
    assert grouped == len({image for pair in pairs for image in pair})


def test_labels_match_as_the_ground_truth_expects(corpus):
    mapping = identity_map(corpus)
    truth = {
        (row["dataset"], row["path"].split("/", 2)[2]): row for row in corpus["truth"] if row["kind"] == "labelled"
    }
    how = {"jpg_md5": "md5", "reencoded": "reencoded", "none": "none"}
    assert len(corpus["labels"]) == len(truth)
    for label in corpus["labels"]:
        row = truth[(label.dataset, label.relpath)]
        assert label.match == how[row["expected_match"]], (label.relpath, row["expected_match"], label.match)
        assert label.category_path == row["label_path"]
        if label.image_md5 is not None:
            assert label.image_md5 == mapping[row["image_id"]]


def test_label_tables_count_conflicts_and_unmatched(corpus):
    for name, summary in corpus["imports"].items():
        rows = [row for row in corpus["truth"] if row["kind"] == "labelled" and row["dataset"] == name]
        labels_of = defaultdict(set)
        for row in rows:
            labels_of[row["image_id"]].add(row["label_path"])
        unmatched_ids = {row["image_id"] for row in rows if row["expected_match"] == "none"}
        assert summary["n_files"] == len(rows)
        assert summary["n_conflicting"] == sum(1 for paths in labels_of.values() if len(paths) > 1)
        assert summary["n_unmatched"] == len(unmatched_ids)
    assert corpus["imports"]["Majority"]["n_conflicting"] > 0
    assert corpus["imports"]["SEM_Dataset"]["n_matched_reencoded"] > 0


def test_the_dataset_table_counts_categories_and_leaves_apart(corpus):
    from semcurate.ingest.labels import dataset_table

    sessions = open_database(corpus["database"], read_only=True)
    table = {row["name"]: row for row in dataset_table(sessions)}
    for name in ("SEM_Dataset", "Hierarchical"):
        paths = {row["label_path"] for row in corpus["truth"] if row["kind"] == "labelled" and row["dataset"] == name}
        assert table[name]["leaves"] == len(paths)
        assert table[name]["categories"] == len({path.split("/")[0] for path in paths})
        assert corpus["imports"][name]["n_categories"] == table[name]["categories"]
        assert corpus["imports"][name]["n_leaves"] == table[name]["leaves"]
    # The hierarchical dataset has more leaves than categories; the flat one as many.
    assert table["Hierarchical"]["leaves"] > table["Hierarchical"]["categories"]
    assert table["SEM_Dataset"]["leaves"] == table["SEM_Dataset"]["categories"]
