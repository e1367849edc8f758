"""Shared fixtures: a fresh database per test, and data bars burned with known truth."""

from __future__ import annotations

import csv
import hashlib
import itertools

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from semcurate.datasets.databar import LABEL_POSITIONS, SEGMENT_STYLES, burn_data_bar, random_data_bar_spec
from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import open_database
from semcurate.features.extract import create_extractor, extract
from semcurate.features.store import FeatureStore
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.labels import import_labels


@pytest.fixture(scope="module")
def one_thread():
    """BLAS/OpenMP on one thread for a module of small fits: worker threads spin badly on a busy machine."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def db_url(tmp_path) -> str:
    """URL of a new, empty SQLite database for one test."""
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def sessions(db_url):
    """A session factory over the migrated test database."""
    return open_database(db_url)


def specimen(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random relief with noise, roughly like an SEM frame."""
    coarse = rng.random((height // 16 + 2, width // 16 + 2))
    relief = np.kron(coarse, np.ones((16, 16)))[:height, :width] * 150 + 50
    return np.clip(relief + rng.normal(0, 6, (height, width)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def bars():
    """Burned bars until every (style, polarity, label side) has appeared at least twice."""
    rng = np.random.default_rng(2024)
    wanted = {key: 2 for key in itertools.product(SEGMENT_STYLES, ("dark", "light"), LABEL_POSITIONS)}
    found = []
    while any(wanted.values()):
        width, height = [(1024, 768), (800, 600), (1280, 960), (640, 480)][len(found) % 4]
        spec = random_data_bar_spec(rng, width, height)
        key = (spec.segment_style, spec.polarity, spec.label_position)
        if not spec.has_stripe or wanted[key] == 0:
            continue
        wanted[key] -= 1
        image, truth = burn_data_bar(specimen(rng, spec.specimen_height, width), spec)
        found.append((key, image, truth))
    return found


@pytest.fixture(scope="session")
def demo_repository(tmp_path_factory):
    """360 demo images ingested, SEM_Dataset and Hierarchical labels imported, classic features extracted.

    Returns ``(root, db_url, sessions, truth)`` with ``truth`` the generated sub-category path of each image md5
    (computed from the corpus files, independently of the code under test). Shared by the clustering and
    evaluation tests; tests may add rows but must not remove what is here.
    """
    root = tmp_path_factory.mktemp("subcategories")
    corpus = root / "corpus"
    make_sem_corpus(corpus, 360, seed=11, workers=2, size_scale=0.5)
    db_url = f"sqlite:///{root / 'db.sqlite'}"
    sessions = open_database(db_url)
    ingest(corpus / "new_dati_SEM", root / "store", sessions, workers=2)
    for dataset in ("SEM_Dataset", "Hierarchical"):
        import_labels(corpus / "datasets" / dataset, dataset, sessions, root / "store", workers=2)
    extract(sessions, root / "store", FeatureStore(root / "features.h5"), create_extractor("classic"), workers=2)
    truth = {}
    with open(corpus / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["kind"] in ("original", "metadata-variant", "near-duplicate"):
                digest = hashlib.md5((corpus / row["path"]).read_bytes()).hexdigest()
                truth[digest] = row["subcategory_path"]
    return root, db_url, sessions, truth
