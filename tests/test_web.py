"""The web browser (semcurate serve) over a small generated store: every route and JSON shape through FastAPI's
TestClient, the security rules (no path from the request, escaping, read-only, POST with a token), edits honoured
by `tree export`, `semcurate similar`, and a real Chromium driven by Selenium (slow)."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import BACKENDS
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

import semcurate
from semcurate.clustering.tree_building import build_tree
from semcurate.datasets.defects import DEFECT_FLAGS
from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import open_database
from semcurate.db.models import FeatureSet, ScaleReading
from semcurate.features.classic import ClassicDescriptor
from semcurate.features.extract import ExtractionError, create_extractor, extract, features_of_file
from semcurate.features.store import FeatureStore
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.labels import import_labels
from semcurate.ingest.quality import FLAGS, UNUSABLE_PICTURE_FLAGS
from semcurate.ingest.quality_database import score_images
from semcurate.ingest.scale_database import create_subset, read_scales
from semcurate.web.app import create_app

#: Starlette 1.10 asks for httpx2 in its TestClient; httpx is what FastAPI's documentation and floors use.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="module", params=BACKENDS)
def site(request, tmp_path_factory):
    """80 demo images ingested, labelled, scale-read, quality-scored, a subset, classic features and a tree of depth 2
    (silhouette rule, so every large category is split), in an SQLite file and then in a database on the test
    PostgreSQL server. Returns a dict of what the tests need."""
    root = tmp_path_factory.mktemp("web")
    corpus = root / "corpus"
    make_sem_corpus(corpus, 80, seed=3, workers=2, size_scale=0.5)
    server = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    db_url = f"sqlite:///{root / 'db.sqlite'}" if server is None else server.create_database()
    sessions = open_database(db_url)
    ingest(corpus / "new_dati_SEM", root / "store", sessions, workers=2)
    import_labels(corpus / "datasets" / "SEM_Dataset", "SEM_Dataset", sessions, root / "store", workers=2)
    read_scales(sessions, root / "store", workers=2)
    score_images(sessions, root / "store", workers=2)
    create_subset(sessions, "1u-2u", ["1um", "2um"])
    extract(sessions, root / "store", FeatureStore(root / "features.h5"), create_extractor("classic"), workers=2)
    tree_id = build_tree(
        sessions, FeatureStore(root / "features.h5"), root / "store", "classic", "ward", "SEM_Dataset",
        depth=2, rule="silhouette", min_size=3,
    )["tree_id"]  # fmt: skip
    with open(corpus / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        truth = list(csv.DictReader(handle))
    return {
        "root": root, "db": db_url, "sessions": sessions, "tree_id": tree_id, "truth": truth, "corpus": corpus,
        "server": server,
    }  # fmt: skip


@pytest.fixture(scope="module")
def client(site):
    return TestClient(create_app(open_database(site["db"], read_only=True), site["root"] / "store"))


class _QuestionMarks:
    """A psycopg connection that takes sqlite3's ``?`` placeholders, so one query text serves both backends."""

    def __init__(self, connection):
        self.connection = connection

    def execute(self, sql: str, params: tuple = ()):
        return self.connection.execute(sql.replace("?", "%s"), params)


@contextmanager
def direct(url: str, mappings: bool = False) -> Iterator:
    """A plain DB-API connection to the database at ``url`` (sqlite3 or psycopg), for reading or changing it
    beside the code under test; committed and closed on leaving. ``mappings``: rows by column name."""
    if url.startswith("sqlite:///"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        connection.row_factory = sqlite3.Row if mappings else None
        try:
            yield connection
            connection.commit()
        finally:
            connection.close()
        return
    import psycopg
    from psycopg.rows import dict_row, tuple_row

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, row_factory=dict_row if mappings else tuple_row) as connection:
        yield _QuestionMarks(connection)


def copy_of(site, tmp_path: Path, name: str) -> str:
    """URL of a copy of the site's database (the module's own stays as built)."""
    if site["server"] is None:
        copy = tmp_path / f"{name}.db"
        with sqlite3.connect(site["db"].removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
            source.backup(target)
        return f"sqlite:///{copy}"
    return site["server"].copy_database(site["db"])


def a_split_node(client, tree_id: int) -> dict:
    """The first node with children in the tree's JSON."""
    nodes = client.get(f"/api/trees/{tree_id}").json()["nodes"]
    return next(node for node in nodes if node["children"])


def feature_rows(site) -> tuple[list[str], np.ndarray]:
    return FeatureStore(site["root"] / "features.h5").read("classic")


# --- every route, every JSON shape --------------------------------------------------------------------------


def test_tree_json_counts_add_up_and_match_the_labels(client, site):
    listed = client.get("/api/trees").json()
    assert [tree["id"] for tree in listed] == [site["tree_id"]]
    data = client.get(f"/api/trees/{site['tree_id']}").json()
    assert set(data["tree"]) >= {"id", "feature_set", "method", "rule", "images", "labelled"}
    with direct(site["db"]) as connection:  # every md5 the images go by (TIFF and JPG)
        image_of = {md5: md5 for (md5,) in connection.execute("SELECT md5 FROM images")}
        image_of |= dict(connection.execute("SELECT jpg_md5, md5 FROM images").fetchall())
        matched = {md5 for (md5,) in connection.execute("SELECT image_md5 FROM labels WHERE image_md5 IS NOT NULL")}
        raised = dict(connection.execute("SELECT image_md5, flags FROM quality_scores").fetchall())
    unusable = {md5 for md5, flags in raised.items() if set(flags.split(",")) & set(UNUSABLE_PICTURE_FLAGS)}
    same_bytes = {  # labelled files whose own bytes (hashed here) are an image's: certainly labelled
        image_of[digest]
        for row in site["truth"]
        if row["dataset"] == "SEM_Dataset"
        and (digest := hashlib.md5((site["corpus"] / row["path"]).read_bytes()).hexdigest()) in image_of
    }
    assert same_bytes <= matched
    labelled_images = matched - unusable  # plus those matched by re-encoding or pixels (see test_ingest for that)
    roots = data["nodes"]
    # the images the quality stage flagged unusable are left out of the tree, and counted
    assert 0 < len(unusable) < 20 and data["tree"]["left_out_flagged"] == len(unusable)
    assert sum(node["size"] for node in roots) == data["tree"]["images"] == 80 - len(unusable)
    assert sum(node["labelled"] for node in roots) == len(labelled_images)
    for node in roots:
        assert node["labelled"] + node["placed"] == node["size"] and node["moved"] == 0
        assert set(node) >= {"id", "path", "name", "title", "size", "labelled", "placed", "moved", "strip", "children"}
        assert sum(child["size"] for child in node["children"]) in (0, node["size"])


def test_the_tree_page_shows_how_the_unlabelled_images_were_placed(client, site):
    data = client.get(f"/api/trees/{site['tree_id']}").json()
    placement = data["tree"]["placement"]
    with direct(site["db"]) as connection:
        (stored,) = connection.execute("SELECT placement FROM trees WHERE id = ?", (site["tree_id"],)).fetchone()
    stored = json.loads(stored)
    # the report's placed count per category is what the tree's rows hold under that category's root
    placed_under_root = {node["category"]: node["placed"] for node in data["nodes"]}
    assert {row[0]: row[4] for row in placement["per_category"]} == placed_under_root
    assert placement["placed"] == stored["placed"] == sum(placed_under_root.values()) > 0
    assert placement["classifier"] == stored["classifier"] and placement["confusion"]
    page = client.get(f"/trees/{site['tree_id']}").text
    left_out = data["tree"]["left_out_flagged"]
    assert f'{left_out} images the <a href="/quality">quality stage</a> flagged are left out.' in page
    section = page[page.index('<details id="placement">') : page.index("</details>")]
    cells = re.findall(r"<tr>((?:<td>[^<]*</td>)+)</tr>", section)
    rows = [re.findall(r"<td>([^<]*)</td>", row) for row in cells]
    numbered = [bool(re.match(r"\d+\. ", row[0])) for row in rows]  # the confusion matrix numbers its rows
    shown = [row for row, is_numbered in zip(rows, numbered, strict=True) if not is_numbered]
    assert [(name, int(placed)) for name, *_counts, placed, _doubtful in shown] == [
        (row[0], row[4]) for row in placement["per_category"]
    ]
    confusion = [row for row, is_numbered in zip(rows, numbered, strict=True) if is_numbered]
    assert [[int(count) for count in row[1:]] for row in confusion] == stored["confusion"]["matrix"]
    assert placement["unreached"] == stored["unreached"]
    assert ("no label reached" in page) == (stored["unreached"] > 0)


def test_the_tree_page_says_how_many_images_no_label_reached(site, tmp_path):
    """A stored placement that counts images no label reached says how many and what placed them, escaped; an
    older one, which has no count, says nothing."""
    copy = copy_of(site, tmp_path, "unreached")
    with direct(copy) as target:
        (stored,) = target.execute("SELECT placement FROM trees WHERE id = ?", (site["tree_id"],)).fetchone()
        report = json.loads(stored)
        target.execute(
            "UPDATE trees SET placement = ? WHERE id = ?",
            (json.dumps({**report, "unreached": 3, "unreached_placed_by": "<knn> alone"}), site["tree_id"]),
        )
    counted = TestClient(create_app(open_database(copy, read_only=True), site["root"] / "store"))
    page = counted.get(f"/trees/{site['tree_id']}").text
    assert "3 of them no label reached through the graph of similar images: &lt;knn&gt; alone placed them." in page
    with direct(copy) as target:
        report.pop("unreached", None)
        report.pop("unreached_placed_by", None)
        target.execute("UPDATE trees SET placement = ? WHERE id = ?", (json.dumps(report), site["tree_id"]))
    older = TestClient(create_app(open_database(copy, read_only=True), site["root"] / "store"))
    assert older.get(f"/api/trees/{site['tree_id']}").json()["tree"]["placement"]["unreached"] == 0
    assert "no label reached" not in older.get(f"/trees/{site['tree_id']}").text


def test_node_gallery_is_sorted_by_distance_to_the_centre_computed_independently(client, site):
    node = a_split_node(client, site["tree_id"])
    data = client.get(f"/api/nodes/{node['id']}?per_page=500").json()
    members = semcurate.Tree.open(site["db"], site["tree_id"]).member_md5s(node["id"])
    md5s, values = feature_rows(site)
    standardised = StandardScaler().fit_transform(values)
    rows = standardised[[md5s.index(md5) for md5 in members]]
    distances = np.linalg.norm(rows - rows.mean(axis=0), axis=1)
    expected = [members[index] for index in np.argsort(distances, kind="stable")]
    assert [member["md5"] for member in data["gallery"]] == expected
    np.testing.assert_allclose([m["distance"] for m in data["gallery"]], np.sort(distances), atol=1e-3)
    assert data["node"]["members"] == node["size"] and data["pages"] == 1
    assert [child["id"] for child in data["children"]] == [child["id"] for child in node["children"]]
    labelled = [member for member in data["gallery"] if member["assigned_by"] == "label"]
    assert labelled and all(member["label"].split("/")[0] == node["category"] for member in labelled)
    paged = client.get(f"/api/nodes/{node['id']}?per_page=2&page=2").json()
    assert [member["md5"] for member in paged["gallery"]] == expected[2:4]


def test_similar_images_equal_scikit_learns_exact_neighbours(client, site):
    md5s, values = feature_rows(site)
    reference = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(StandardScaler().fit_transform(values))
    _, rows = reference.kneighbors(StandardScaler().fit_transform(values)[[10]])
    found = client.get(f"/api/images/{md5s[10]}/similar?k=5&feature_set=classic").json()
    assert [neighbour["md5"] for neighbour in found["neighbours"]] == [md5s[row] for row in rows[0][1:]]
    page = client.get(f"/api/images/{md5s[10]}").json()
    assert [n["md5"] for n in page["similar"]["neighbours"][:5]] == [md5s[row] for row in rows[0][1:]]


def test_image_json_lists_its_files_duplicates_labels_scale_and_tree_path(client, site):
    truth = [row for row in site["truth"] if row["kind"] == "duplicate"]
    duplicate = site["corpus"] / truth[0]["path"]
    digest = hashlib.md5(duplicate.read_bytes()).hexdigest()
    with direct(site["db"]) as connection:
        md5 = connection.execute("SELECT image_md5 FROM files WHERE md5 = ?", (digest,)).fetchone()[0]
    data = client.get(f"/api/images/{md5}").json()
    paths = {file["path"]: file for file in data["files"]}
    assert str(duplicate) in paths and paths[str(duplicate)]["status"] == "duplicate"
    assert paths[str(duplicate)]["reason"]
    assert set(data) >= {"labels", "subsets", "scale", "tree_paths", "near_duplicates", "similar", "feature_sets"}
    steps = [node["path"] for node in data["tree_paths"][0]["nodes"]]
    assert steps and all(deeper.startswith(higher + ".") for higher, deeper in itertools.pairwise(steps))
    assert data["scale"]["candidates"].keys() == {"ocr", "metadata", "field"}


def test_an_image_the_tree_left_out_says_for_which_flags(client, site):
    with direct(site["db"]) as connection:
        raised = dict(connection.execute("SELECT image_md5, flags FROM quality_scores").fetchall())
    unusable = {
        md5: [flag for flag in flags.split(",") if flag in UNUSABLE_PICTURE_FLAGS] for md5, flags in raised.items()
    }
    left_out = sorted(md5 for md5, flags in unusable.items() if flags)
    kept = sorted(md5 for md5, flags in unusable.items() if not flags)
    for md5, expected in ((left_out[0], unusable[left_out[0]]), (kept[0], [])):
        (entry,) = [p for p in client.get(f"/api/images/{md5}").json()["tree_paths"] if p["tree"] == site["tree_id"]]
        assert entry["left_out_for"] == expected and bool(entry["nodes"]) == (not expected)
    page = client.get(f"/images/{left_out[0]}").text
    assert f"not in this tree (left out: flagged {', '.join(unusable[left_out[0]])})" in page


def test_flags_of_a_later_quality_run_are_not_given_as_the_reason(site, tmp_path):
    """A tree built on quality run 1 does not say an image was left out for the flags a later run raised."""
    copy = copy_of(site, tmp_path, "rescored")
    with direct(copy) as target:
        raised = dict(target.execute("SELECT image_md5, flags FROM quality_scores").fetchall())
        (run_id,) = target.execute("SELECT max(id) FROM quality_runs").fetchone()
        target.execute(
            "INSERT INTO quality_runs (id, scorer_version, n_images, thresholds, config, flag_counts, created_at) "
            "SELECT id + 1, scorer_version, n_images, thresholds, config, flag_counts, created_at "
            "FROM quality_runs WHERE id = ?",
            (run_id,),
        )
        target.execute("UPDATE quality_scores SET run_id = ?", (run_id + 1,))
    md5 = next(md5 for md5, flags in raised.items() if set(flags.split(",")) & set(UNUSABLE_PICTURE_FLAGS))
    rescored = TestClient(create_app(open_database(copy, read_only=True), site["root"] / "store"))
    (entry,) = [p for p in rescored.get(f"/api/images/{md5}").json()["tree_paths"] if p["tree"] == site["tree_id"]]
    assert entry["nodes"] == [] and entry["left_out_for"] == []


def test_near_duplicates_are_shown_as_a_group(client, site):
    near = [row for row in site["truth"] if row["kind"] == "near-duplicate"]
    digest = hashlib.md5((site["corpus"] / near[0]["path"]).read_bytes()).hexdigest()
    data = client.get(f"/api/images/{digest}").json()
    assert data["near_duplicate_group"] and data["near_duplicates"]
    admin = client.get("/api/admin").json()
    assert any(digest in group["images"] for group in admin["near_duplicate_groups"])


def test_search_by_every_field(client, site):
    original = next(row for row in site["truth"] if row["kind"] == "original" and row["format"] == "TIFF")
    digest = hashlib.md5((site["corpus"] / original["path"]).read_bytes()).hexdigest()
    fragment = Path(original["path"]).name
    by_path = client.get("/api/search", params={"q": fragment, "by": "path"}).json()
    assert digest in {row["md5"] for row in by_path["results"]}
    assert client.get("/api/search", params={"q": digest[:10], "by": "md5"}).json()["results"][0]["md5"] == digest
    category = next(
        row["label_path"]
        for row in site["truth"]
        if row["dataset"] == "SEM_Dataset" and row["expected_match"] != "none"  # a label file that matches an image
    )
    by_label = client.get("/api/search", params={"q": category, "by": "label"}).json()["results"]
    assert by_label and all(category in row["match"] for row in by_label)
    with direct(site["db"]) as connection:
        two_um = {
            md5 for (md5,) in connection.execute("SELECT image_md5 FROM scale_readings WHERE value=2 AND unit='µm'")
        }
        subset = {md5 for (md5,) in connection.execute("SELECT image_md5 FROM subset_members WHERE subset='1u-2u'")}
    assert {row["md5"] for row in client.get("/api/search?q=2um&by=scale").json()["results"]} == two_um
    assert {row["md5"] for row in client.get("/api/search?q=1u-2u&by=subset").json()["results"]} == subset
    assert client.get("/api/search?q=%25&by=path").json()["results"] == []  # a LIKE wildcard is a literal here
    assert client.get("/api/search?q=xyz&by=nothing").status_code == 400
    assert client.get("/api/search?q=2%20parsecs&by=scale").status_code == 400


def test_admin_lists_what_ingest_refused_as_the_corpus_truth_says(client, site):
    admin = client.get("/api/admin").json()
    corrupt = {str(site["corpus"] / row["path"]) for row in site["truth"] if row["kind"] == "corrupt"}
    assert {row["path"] for row in admin["files_not_admitted"] if row["status"] == "corrupt"} == corrupt
    assert admin["ingest_runs"][0]["summary"]["images_total"] == 80
    assert [row["name"] for row in admin["label_datasets"]] == ["SEM_Dataset"]
    assert sum(admin["scale_status"].values()) == 80
    assert [row["name"] for row in admin["subsets"]] == ["1u-2u"]


def test_every_html_page_renders(client, site):
    node = a_split_node(client, site["tree_id"])
    md5 = node["strip"][0]
    flagged = next(row["flag"] for row in client.get("/api/quality").json()["flags"] if row["images"])
    for url in ("/trees", f"/trees/{site['tree_id']}", f"/nodes/{node['id']}", f"/images/{md5}", "/search?q=area",
                "/search?q=2um&by=scale", "/admin", "/quality", f"/quality/{flagged}", "/docs", "/static/style.css",
                "/static/app.js"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[-300:])
    assert client.get("/", follow_redirects=False).headers["location"] == f"/trees/{site['tree_id']}"
    page = client.get(f"/nodes/{node['id']}").text
    assert 'href="/static/style.css"' in page and "http" not in page.split("<main>")[0].replace("http-equiv", "")
    thumbnail = client.get(f"/thumbs/{md5}.webp")
    assert thumbnail.status_code == 200 and thumbnail.content[8:12] == b"WEBP"
    assert (site["root"] / "store" / "thumbs" / f"{md5}.webp").read_bytes() == thumbnail.content
    assert client.get(f"/files/{md5}.jpg").content == (site["root"] / "store" / f"{md5}.jpg").read_bytes()


# --- image quality ------------------------------------------------------------------------------------------


def quality_rows(site) -> list:
    """Every stored quality score row (mappings by column), read directly from the database."""
    with direct(site["db"], mappings=True) as connection:
        return connection.execute("SELECT * FROM quality_scores").fetchall()


def raised_by(site) -> dict[str, set[str]]:
    """flag → md5s whose stored flags name it (a direct read)."""
    raised: dict[str, set[str]] = {flag: set() for flag in FLAGS}
    for row in quality_rows(site):
        for flag in filter(None, row["flags"].split(",")):
            raised[flag].add(row["image_md5"])
    return raised


def scores_as_compared(site) -> dict[str, dict[str, float]]:
    """score → {md5: value} of the scored images, the derived scores recomputed here: clipped = low + high share,
    size_ratio = how many times the side √(w·h) is off the median side."""
    rows = [row for row in quality_rows(site) if row["width"] > 0]
    sides = np.sqrt([row["width"] * row["height"] for row in rows])
    median = float(np.median(sides))
    values: dict[str, dict[str, float]] = {"clipped": {}, "size_ratio": {}}
    for row, side in zip(rows, sides, strict=True):
        for name in row.keys():
            values.setdefault(name, {})[row["image_md5"]] = row[name]
        low, high = row["clipped_low"], row["clipped_high"]
        values["clipped"][row["image_md5"]] = None if low is None or high is None else low + high
        values["size_ratio"][row["image_md5"]] = max(side / median, median / side)
    return values


def test_quality_counts_per_flag_equal_the_databases_rows_and_the_corpus_defects(client, site):
    data = client.get("/api/quality").json()
    raised = raised_by(site)
    with direct(site["db"]) as connection:
        run_id, thresholds = connection.execute("SELECT id, thresholds FROM quality_runs ORDER BY id DESC").fetchone()
        scored = connection.execute("SELECT count(*) FROM quality_scores WHERE width > 0").fetchone()[0]
        image_of = dict(connection.execute("SELECT relpath, image_md5 FROM files WHERE image_md5 IS NOT NULL"))
    assert data["run"]["id"] == run_id and data["run"]["images"] == scored == 80
    assert [row["flag"] for row in data["flags"]] == list(FLAGS)
    assert {row["flag"]: row["images"] for row in data["flags"]} == {flag: len(raised[flag]) for flag in FLAGS}
    for row in data["flags"]:
        stored = json.loads(thresholds)[row["flag"]]
        assert (row["score"], row["direction"], row["threshold"], row["how"]) == (
            stored["score"], stored["direction"], stored["value"], stored["how"],
        )  # fmt: skip
    drawn: dict[str, set[str]] = {flag: set() for flag in DEFECT_FLAGS.values()}
    for row in site["truth"]:
        if row["defect"] and row["kind"] not in ("labelled", "corrupt", "unsupported"):  # the ingested files
            drawn[DEFECT_FLAGS[row["defect"]]].add(image_of[row["path"].removeprefix("new_dati_SEM/")])
    shown = {flag: {image["md5"] for image in client.get(f"/api/quality/{flag}?per_page=500").json()["gallery"]}
             for flag in drawn}  # fmt: skip
    assert all(shown[flag] & drawn[flag] for flag in drawn)  # each page shows images drawn with its defect
    hits = sum(len(shown[flag] & drawn[flag]) for flag in drawn)  # the scorer's own precision is bench/quality.py's
    assert hits >= 0.9 * sum(map(len, shown.values())) and hits >= 0.8 * sum(map(len, drawn.values()))
    page = client.get("/quality").text
    for row in data["flags"]:
        assert f"<td>{row['images']}</td>" in page.split(f">{row['flag']}<", 1)[1].split("</tr>")[0]


def test_quality_histograms_equal_numpys_over_a_direct_read(client, site):
    data = client.get("/api/quality").json()
    values = scores_as_compared(site)
    read = {row["score"] for row in data["flags"]}
    assert {histogram["score"] for histogram in data["histograms"]} == read
    for histogram in data["histograms"]:
        column = np.array([np.nan if v is None else v for v in values[histogram["score"]].values()], dtype=float)
        finite = column[np.isfinite(column)]
        marks = [mark["value"] for mark in histogram["thresholds"]]
        assert marks == [row["threshold"] for row in data["flags"] if row["score"] == histogram["score"]]
        counts, edges = np.histogram(
            finite, bins=len(histogram["counts"]), range=(min(finite.min(), *marks), max(finite.max(), *marks))
        )
        assert histogram["counts"] == counts.tolist(), histogram["score"]
        np.testing.assert_allclose(histogram["edges"], edges, rtol=1e-9)
        assert sum(histogram["counts"]) == histogram["scored"] == finite.size
        assert histogram["left_out"] == column.size - finite.size
    page = client.get("/quality").text
    assert page.count("<svg") == len(data["histograms"]) and 'class="threshold"' in page
    assert "<script" not in page.split("<main>")[1]


def test_a_quality_flags_gallery_is_worst_first_as_sorted_here(client, site):
    data = client.get("/api/quality").json()
    values, raised = scores_as_compared(site), raised_by(site)
    checked = 0
    for row in data["flags"]:
        shown = client.get(f"/api/quality/{row['flag']}?per_page=500").json()
        assert shown["images"] == row["images"] == len(shown["gallery"])
        assert {image["md5"] for image in shown["gallery"]} == raised[row["flag"]]
        if row["score"] == "size_ratio":  # listed by pixel count, not by how far off the median
            continue
        expected = sorted(
            (values[row["score"]][md5] for md5 in raised[row["flag"]]), reverse=row["direction"] == "above"
        )
        assert [image["value"] for image in shown["gallery"]] == pytest.approx(expected, rel=1e-12)
        assert all(row["flag"] in image["flags"] for image in shown["gallery"])
        checked += len(expected)
        if len(shown["gallery"]) >= 3:
            second = client.get(f"/api/quality/{row['flag']}?per_page=2&page=2").json()
            assert [image["md5"] for image in second["gallery"]] == [i["md5"] for i in shown["gallery"][2:4]]
            assert second["pages"] == -(-len(shown["gallery"]) // 2)
            html = client.get(f"/quality/{row['flag']}?per_page=2").text
            assert 'rel="next"' in html and f"/thumbs/{shown['gallery'][0]['md5']}.webp" in html
    assert checked > 0


def test_the_image_page_shows_the_databases_quality_scores(client, site):
    rows = {row["image_md5"]: row for row in quality_rows(site) if row["width"] > 0}
    flagged = next(md5 for md5, row in sorted(rows.items()) if row["flags"])
    for md5 in (flagged, next(md5 for md5, row in sorted(rows.items()) if not row["flags"])):
        data = client.get(f"/api/images/{md5}").json()["quality"]
        row = rows[md5]
        assert data["scored"] and data["flags"] == list(filter(None, row["flags"].split(",")))
        assert data["scores"] and all(data["scores"][name] == row[name] for name in data["scores"])
        assert {t["flag"] for t in data["thresholds"] if t["raised"]} == set(data["flags"])
        page = client.get(f"/images/{md5}").text
        table = page.split('id="quality"', 1)[1].split("</table>")[0]
        for name, value in data["scores"].items():
            assert f"<th>{name}</th><td>{'–' if value is None else format(value, '.4g')}</td>" in table
        for flag in data["flags"]:
            assert f'href="/quality/{flag}"' in page


def test_quality_pages_before_any_run_and_an_image_not_scored(site, tmp_path):
    md5 = quality_rows(site)[0]["image_md5"]
    copy = copy_of(site, tmp_path, "unscored")
    with direct(copy) as target:
        target.execute("DELETE FROM quality_scores")
        target.execute("DELETE FROM quality_runs")
    bare = TestClient(create_app(open_database(copy, read_only=True), site["root"] / "store"))
    assert bare.get("/api/quality").json()["run"] is None
    page = bare.get("/quality")
    assert page.status_code == 200 and "no quality scores yet: run `semcurate quality`" in page.text
    refused = bare.get("/api/quality/blurred")
    assert refused.status_code == 404 and refused.json()["error"] == "no quality scores yet: run `semcurate quality`"
    assert bare.get(f"/api/images/{md5}").json()["quality"] is None
    assert "Not scored" in bare.get(f"/images/{md5}").text


# --- errors: one clear line, never a traceback -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/nodes/999999", 404, "no tree node with id 999999"),
        ("/nodes/abc", 400, "bad node_id"),
        ("/trees/999999", 404, "no tree with id 999999"),
        ("/images/" + "f" * 32, 404, "no image with md5"),
        ("/api/nodes/999999", 404, "no tree node with id 999999"),
        ("/nowhere", 404, "no such page"),
        ("/quality/nonsense", 404, "no quality flag &#39;nonsense&#39;; the flags are blurred, dark"),
        ("/api/quality/nonsense", 404, "no quality flag 'nonsense'; the flags are blurred, dark"),
        ("/quality/%2e%2e%2fdb.sqlite", 404, "no such page"),
        ("/quality/<b onclick=alert(1)>bold", 404, "no quality flag &#39;&lt;b onclick=alert(1)&gt;bold&#39;"),
        ("/quality/blurred?page=0", 400, "page"),
        ("/quality/blurred?page=two", 400, "page"),
        ("/quality/blurred?page=50", 404, "there is no page 50"),
        ("/api/quality/blurred?per_page=100000", 400, "per_page"),
    ],
)
def test_errors_are_one_line_pages(client, url, status, words):
    response = client.get(url)
    assert response.status_code == status
    if url.startswith("/api/"):
        assert words in response.json()["error"]
    else:
        assert '<p class="error">' in response.text and words in response.text and "Traceback" not in response.text
        assert "<b onclick" not in response.text  # the flag asked for is escaped


def test_bad_page_numbers(client, site):
    node = a_split_node(client, site["tree_id"])
    assert client.get(f"/nodes/{node['id']}?page=0").status_code == 400
    assert client.get(f"/nodes/{node['id']}?page=-3").status_code == 400
    assert client.get(f"/nodes/{node['id']}?page=two").status_code == 400
    past = client.get(f"/nodes/{node['id']}?page=50")
    assert past.status_code == 404 and "there is no page 50" in past.text
    assert client.get(f"/api/nodes/{node['id']}?per_page=100000").status_code == 400


# --- security -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/files/../../../../etc/passwd",
        "/files/..%2f..%2f..%2fetc%2fpasswd.jpg",
        "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd.jpg",
        "/thumbs/%2e%2e%2f%2e%2e%2fdb.sqlite.webp",
        "/files//etc/passwd.jpg",
        "/files/%2Fetc%2Fpasswd.jpg",
        "/images/..%2F..%2Fdb.sqlite",
        "/static/../db.sqlite",
        "/static/%2e%2e/%2e%2e/db.sqlite",
    ],
)
def test_no_path_is_built_from_the_request(client, url):
    response = client.get(url)
    assert response.status_code in (400, 404)
    assert b"root:" not in response.content and b"SQLite format" not in response.content


def test_a_symlink_in_the_store_is_not_followed(client, site, tmp_path):
    store = site["root"] / "store"
    md5 = sorted(store.glob("*.tif"))[-1].stem  # an image with both files: the thumbnail may come from either
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8 secret bytes")
    (store / "thumbs" / f"{md5}.webp").unlink(missing_ok=True)
    victims = [store / f"{md5}.jpg", store / f"{md5}.tif"]
    saved = [victim.read_bytes() for victim in victims]
    for victim in victims:
        victim.unlink()
        victim.symlink_to(secret)
    try:
        for url in (f"/files/{md5}.jpg", f"/thumbs/{md5}.webp"):
            response = client.get(url)
            assert response.status_code == 404 and b"secret bytes" not in response.content
            assert "not a regular file" in response.text
    finally:
        for victim, data in zip(victims, saved, strict=True):
            victim.unlink()
            victim.write_bytes(data)


def test_the_fast_thumbnail_path_serves_only_known_md5s(client, site):
    thumbs = site["root"] / "store" / "thumbs"
    node = a_split_node(client, site["tree_id"])
    shown = client.get(f"/nodes/{node['id']}").text
    md5 = client.get(f"/api/nodes/{node['id']}").json()["gallery"][0]["md5"]
    assert f"/thumbs/{md5}.webp" in shown
    first, again = client.get(f"/thumbs/{md5}.webp"), client.get(f"/thumbs/{md5}.webp")  # made, then from the cache
    assert first.content == again.content == (thumbs / f"{md5}.webp").read_bytes()
    assert again.headers["content-type"] == "image/webp" and "immutable" in again.headers["cache-control"]
    stranger = "f" * 32  # not an image of the database, though a file of that name is planted in the cache
    (thumbs / f"{stranger}.webp").write_bytes(first.content)
    try:
        refused = client.get(f"/thumbs/{stranger}.webp")
        assert refused.status_code == 404 and f"no image with md5 {stranger}" in refused.text
    finally:
        (thumbs / f"{stranger}.webp").unlink()


def test_a_missing_store_file_is_a_404_page(client, site):
    store = site["root"] / "store"
    md5 = sorted(store.glob("*.tif"))[0].stem
    (store / "thumbs" / f"{md5}.webp").unlink(missing_ok=True)
    victims = [store / f"{md5}.jpg", store / f"{md5}.tif"]
    for victim in victims:
        victim.rename(victim.with_suffix(victim.suffix + ".moved"))
    try:
        for url in (f"/thumbs/{md5}.webp", f"/files/{md5}.jpg"):
            response = client.get(url)
            assert response.status_code == 404 and f"image {md5} is missing from the store" in response.text
    finally:
        for victim in victims:
            victim.with_suffix(victim.suffix + ".moved").rename(victim)


def test_read_only_by_default_and_no_get_changes_anything(client, site):
    node = a_split_node(client, site["tree_id"])
    refused = client.post(f"/nodes/{node['id']}/rename", data={"name": "x", "token": "anything"})
    assert refused.status_code == 403 and "read-only" in refused.text
    assert client.get(f"/nodes/{node['id']}/rename?name=x").status_code in (404, 405)
    assert "token" not in client.get(f"/nodes/{node['id']}").text


@pytest.fixture
def editable(site, tmp_path):
    """An app with edits allowed over a copy of the database (the module's own stays as built)."""
    url = copy_of(site, tmp_path, "edit")
    return TestClient(create_app(open_database(url), site["root"] / "store", allow_edits=True, token="t0k")), url


def test_a_node_renamed_to_a_script_is_escaped(editable, site):
    client, _ = editable
    node = a_split_node(client, site["tree_id"])
    page = client.get(f"/nodes/{node['id']}").text
    assert 'name="token" value="t0k"' in page
    assert client.post(f"/nodes/{node['id']}/rename", data={"name": "x", "token": "wrong"}).status_code == 403
    done = client.post(
        f"/nodes/{node['id']}/rename",
        data={"name": "<script>alert(1)</script>", "token": "t0k"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    for url in (f"/nodes/{node['id']}", f"/trees/{site['tree_id']}"):
        page = client.get(url).text
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert client.get(f"/api/nodes/{node['id']}").json()["node"]["name"] == "<script>alert(1)</script>"


def test_moves_and_misplaced_marks_are_honoured_by_tree_export(editable, site):
    client, url = editable
    node = a_split_node(client, site["tree_id"])
    first, second = node["children"][:2]
    moving = client.get(f"/api/nodes/{first['id']}").json()["gallery"][0]["md5"]
    doubtful = client.get(f"/api/nodes/{first['id']}").json()["gallery"][-1]["md5"]
    assert (
        client.post(f"/nodes/{first['id']}/move", data={"md5": moving, "to": second["id"], "token": "t0k"}).status_code
        == 200
    )
    assert client.post(f"/nodes/{first['id']}/misplaced", data={"md5": doubtful, "token": "t0k"}).status_code == 200
    exported = subprocess.run(
        [sys.executable, "-m", "semcurate", "tree", "export", "--db", url], capture_output=True, text=True, check=True
    )
    nodes = {entry["path"]: entry for entry in walk(json.loads(exported.stdout)["nodes"])}
    assert moving in nodes[second["path"]]["members"] and moving not in nodes[first["path"]]["members"]
    assert doubtful not in nodes[first["path"]]["members"] and doubtful in nodes[node["path"]]["members"]
    assert nodes[first["path"]]["misplaced"] == [doubtful]
    assert nodes[first["path"]]["size"] == first["size"] - 2 and nodes[second["path"]]["size"] == second["size"] + 1
    gallery = client.get(f"/api/nodes/{second['id']}?per_page=500").json()["gallery"]
    assert moving in [member["md5"] for member in gallery]
    # The image page's tree path follows the edits: the nodes whose exported members hold the image, top down.
    for md5 in (moving, doubtful):
        holders = sorted((path.count("."), path) for path, entry in nodes.items() if md5 in entry["members"])
        (shown,) = [p for p in client.get(f"/api/images/{md5}").json()["tree_paths"] if p["tree"] == site["tree_id"]]
        assert [node["path"] for node in shown["nodes"]] == [path for _, path in holders]
    assert [n["path"] for n in shown["nodes"]] == [node["path"]]  # marked misplaced: it stays in the parent only
    bad = client.post(f"/nodes/{first['id']}/move", data={"md5": moving, "to": second["id"], "token": "t0k"})
    assert bad.status_code == 400 and "is not in node" in bad.text


def test_api_edits_need_the_token_and_the_tree_page_counts_follow_every_edit(editable, client, site):
    editor, url = editable
    node = a_split_node(editor, site["tree_id"])
    first, second = node["children"][:2]
    gallery = editor.get(f"/api/nodes/{first['id']}").json()["gallery"]
    moving, doubtful = gallery[0]["md5"], gallery[-1]["md5"]
    api = f"/api/nodes/{first['id']}"
    refused = client.post(f"{api}/move", json={"token": "t0k", "md5": moving, "to": second["id"]})
    assert refused.status_code == 403 and "read-only" in refused.json()["error"]  # the read-only server
    wrong = editor.post(f"{api}/move", json={"token": "nope", "md5": moving, "to": second["id"]})
    assert wrong.status_code == 403 and "token" in wrong.json()["error"]
    as_form = editor.post(f"{api}/move", data={"token": "t0k", "md5": moving, "to": second["id"]})
    assert as_form.status_code == 400 and "JSON" in as_form.json()["error"]
    assert editor.post(f"{api}/move", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    moved = editor.post(f"{api}/move", json={"token": "t0k", "md5": moving, "to": second["id"]})
    assert moved.status_code == 200 and moved.json() == {"md5": moving, "from": first["id"], "to": second["id"]}
    marked = editor.post(f"{api}/misplaced", json={"token": "t0k", "md5": doubtful})
    assert marked.status_code == 200 and marked.json()["to"] is None
    renamed = editor.post(f"{api}/rename", json={"token": "t0k", "name": "wires, vertical"})
    assert renamed.json() == {"node": first["id"], "path": first["path"], "name": "wires, vertical"}
    # The tree page's counts against the membership rule of semcurate.Tree (what `tree export` writes).
    tree = semcurate.Tree.open(url, site["tree_id"])
    data = editor.get(f"/api/trees/{site['tree_id']}").json()
    assert data["tree"]["edits"] == 2
    for entry in walk(data["nodes"]):
        assert entry["size"] == len(tree.member_md5s(entry["id"])), entry["path"]
        assert entry["labelled"] + entry["placed"] + entry["moved"] == entry["size"]
    counted = {entry["id"]: entry for entry in walk(data["nodes"])}
    assert counted[second["id"]]["moved"] == 1 and counted[node["id"]]["moved"] == 0
    assert counted[first["id"]]["size"] == first["size"] - 2 and counted[node["id"]]["size"] == node["size"]
    assert "1 moved here by editors" in editor.get(f"/trees/{site['tree_id']}").text
    entry = next(
        m for m in editor.get(f"/api/nodes/{second['id']}?per_page=500").json()["gallery"] if m["md5"] == moving
    )
    assert entry["assigned_by"] == "editor"
    # An edit made elsewhere (the Python API, another server) is seen too: the kept gallery orders are checked.
    back = editor.get(f"/api/nodes/{second['id']}?per_page=500").json()["gallery"][-1]["md5"]
    tree.move(back, second["id"], first["id"])
    assert back in [m["md5"] for m in editor.get(f"/api/nodes/{first['id']}?per_page=500").json()["gallery"]]
    assert back not in [m["md5"] for m in editor.get(f"/api/nodes/{second['id']}?per_page=500").json()["gallery"]]


def walk(nodes: list[dict]):
    for node in nodes:
        yield node
        yield from walk(node["children"])


# --- semcurate similar --------------------------------------------------------------------------------------


def semcurate_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, text=True, cwd=cwd)


def test_similar_command_by_md5_by_file_and_refusing_an_unknown_file(site, tmp_path):
    md5s, values = feature_rows(site)
    reference = NearestNeighbors(n_neighbors=4, algorithm="brute").fit(StandardScaler().fit_transform(values))
    _, rows = reference.kneighbors(StandardScaler().fit_transform(values)[[3]])
    expected = [md5s[row] for row in rows[0][1:]]
    by_md5 = semcurate_cli("similar", md5s[3], "--feature-set", "classic", "-k", "3", "--json", "--db", site["db"])
    assert by_md5.returncode == 0, by_md5.stderr
    assert [row["md5"] for row in json.loads(by_md5.stdout)["neighbours"]] == expected
    outside = tmp_path / "copy.jpg"  # the same bytes outside the store: hashed and found
    shutil.copy(site["root"] / "store" / f"{md5s[3]}.jpg", outside)
    by_file = semcurate_cli(
        "similar", str(outside), "--feature-set", "classic", "-k", "3", "--json", "--db", site["db"]
    )
    assert [row["md5"] for row in json.loads(by_file.stdout)["neighbours"]] == expected
    table = semcurate_cli("similar", md5s[3], "--feature-set", "classic", "-k", "3", "--db", site["db"])
    assert table.returncode == 0 and all(md5 in table.stdout for md5 in expected)
    stranger = tmp_path / "stranger.jpg"
    stranger.write_bytes(b"not an image we know")
    refused = semcurate_cli("similar", str(stranger), "--feature-set", "classic", "--db", site["db"])
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(
        f"error: {stranger} (md5 {hashlib.md5(b'not an image we know').hexdigest()}) is not in the database and "
        "its features cannot be computed"
    )
    unknown_set = semcurate_cli("similar", md5s[3], "--feature-set", "nope", "--db", site["db"])
    assert (
        unknown_set.returncode == 2
        and unknown_set.stderr == "error: no finished feature set 'nope'; see `semcurate features list`\n"
    )


# --- the real thing: semcurate serve in a subprocess, Chromium through Selenium -------------------------------


def test_similar_computes_the_features_of_an_image_from_outside_the_repository(site, tmp_path):
    """A stored TIFF with one specimen pixel changed is a file the database does not know: its row is computed
    (data bar cut at the stripe top the scale reading recorded) and searched as scikit-learn searches it."""
    md5s, values = feature_rows(site)
    original = md5s[5]
    pixels = tifffile.imread(site["root"] / "store" / f"{original}.tif")
    pixels[0, 0] = 255 - pixels[0, 0] // 2
    outside = tmp_path / "changed.tif"
    tifffile.imwrite(outside, pixels)
    with site["sessions"]() as session:
        stripe_top = session.get(ScaleReading, original).stripe_y0
    grey = np.asarray(PILImage.open(outside).convert("L"))
    scaler = StandardScaler().fit(values)
    row = scaler.transform(ClassicDescriptor().transform([grey[:stripe_top]]))
    _, rows = NearestNeighbors(n_neighbors=4, algorithm="brute").fit(scaler.transform(values)).kneighbors(row)
    found = semcurate_cli("similar", str(outside), "--feature-set", "classic", "-k", "4", "--json", "--db", site["db"])
    assert found.returncode == 0, found.stderr
    answer = json.loads(found.stdout)
    assert answer["file"] == str(outside) and "md5" not in answer
    assert [n["md5"] for n in answer["neighbours"]] == [md5s[r] for r in rows[0]]
    assert answer["neighbours"][0]["md5"] == original and answer["neighbours"][0]["distance"] < 0.5
    table = semcurate_cli("similar", str(outside), "--feature-set", "classic", "-k", "2", "--db", site["db"])
    assert table.returncode == 0 and "features computed from the file" in table.stdout and original in table.stdout


def test_a_derived_feature_set_cannot_be_computed_for_an_outside_file_and_says_which_can(site, tmp_path):
    sessions = open_database(copy_of(site, tmp_path, "derived"))
    with sessions.begin() as session:
        parent = session.get(FeatureSet, "classic")
        session.add(
            FeatureSet(
                name="classic.ae7", extractor=parent.extractor, weights=parent.weights,
                weights_digest=parent.weights_digest, layer="code", dimension=7, n_rows=3,
                store_path=parent.store_path, parent="classic",
            )
        )  # fmt: skip
    some_file = next((site["root"] / "store").glob("*.jpg"))
    with pytest.raises(ExtractionError, match=r"derived from classic .* --feature-set classic$"):
        features_of_file(sessions, "classic.ae7", some_file)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(site):
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "semcurate", "serve", "--db", site["db"], "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SEMCURATE_DB": ""},
    )
    import httpx

    try:
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/trees", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.perf_counter() - started > 30:
                    raise AssertionError(f"semcurate serve did not start: {process.stderr.read().decode()}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_a_real_browser_walks_tree_node_image_and_similar_images(server, tmp_path):
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/setup.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        wait = WebDriverWait(browser, 20)
        browser.get(server + "/")
        wait.until(expected_conditions.presence_of_element_located((By.ID, "tree")))
        assert browser.title.startswith("Tree ")
        browser.find_element(By.CSS_SELECTOR, "#tree a.node-link").click()
        gallery = wait.until(expected_conditions.presence_of_element_located((By.ID, "gallery")))
        thumbnails = gallery.find_elements(By.CSS_SELECTOR, "img")
        assert thumbnails
        wait.until(lambda _: browser.execute_script("return arguments[0].naturalWidth", thumbnails[0]) > 0)
        browser.save_screenshot(str(tmp_path / "node.png"))
        gallery.find_element(By.CSS_SELECTOR, "a.thumb").click()
        similar = wait.until(expected_conditions.presence_of_element_located((By.ID, "similar")))
        found = similar.find_elements(By.CSS_SELECTOR, "img")
        assert len(found) == 12
        wait.until(lambda _: browser.execute_script("return arguments[0].naturalWidth", found[-1]) > 0)
        picture = browser.find_element(By.CSS_SELECTOR, "img.picture")
        assert browser.execute_script("return arguments[0].naturalWidth", picture) > 0
        browser.save_screenshot(str(tmp_path / "image.png"))
    finally:
        browser.quit()
    assert (tmp_path / "image.png").stat().st_size > 10_000
