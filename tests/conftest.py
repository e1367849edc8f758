"""Shared fixtures: a fresh database per test, data bars burned with known truth, the real instrument TIFFs."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from threadpoolctl import threadpool_limits

from semcurate.datasets.databar import LAYOUTS, burn_data_bar, random_data_bar_spec
from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import open_database
from semcurate.features.extract import create_extractor, extract
from semcurate.features.store import FeatureStore
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.labels import import_labels

#: The benchmark scripts, which some tests import to check their own logic.
BENCH = Path(__file__).resolve().parent.parent / "bench"


@contextmanager
def bench_script(name: str) -> Iterator[ModuleType]:
    """``bench/NAME.py`` imported as the module ``NAME`` for as long as the ``with`` block lasts.

    The bench scripts are not a package and import their neighbours, so ``bench/`` is on ``sys.path`` meanwhile;
    the module is in ``sys.modules``, where dataclasses look their module up.
    """
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def one_thread():
    """BLAS/OpenMP on one thread for a module of small fits: worker threads spin badly on a busy machine."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def postgres_server():
    """A throw-away PostgreSQL server for the session (tests/postgres_server.py).

    Without the server programs the PostgreSQL half of the database tests is
    skipped with the reason, except on CI (``$CI`` set), where it fails.
    """
    from postgres_server import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer.start()
    except PostgresUnavailable as error:
        if os.environ.get("CI"):
            pytest.fail(str(error))
        pytest.skip(str(error))
    yield server
    server.stop()


#: The database backends every database-touching test runs on (design.md, "Growing past one machine");
#: ``SEMCURATE_TEST_BACKENDS=sqlite`` narrows them (scripts/test_floors.sh: the floors run proves the dependency
#: floors, without the postgres extra; PostgreSQL runs in the main suite).
BACKENDS = tuple(os.environ.get("SEMCURATE_TEST_BACKENDS", "sqlite,postgresql").split(","))


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """URL of a new, empty database for one test: an SQLite file, then a database on the test PostgreSQL server.

    A test about one backend only (SQLite's WAL mode) says so with ``@pytest.mark.backends("sqlite")``.
    """
    marker = request.node.get_closest_marker("backends")
    if marker is not None and request.param not in marker.args:
        pytest.skip(f"{request.param}: this test is about {' and '.join(marker.args)} only")
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def sessions(db_url):
    """A session factory over the migrated test database."""
    return open_database(db_url)


#: Typefaces real instruments print their data bars in (Debian's fonts-dejavu-core, fonts-liberation,
#: fonts-freefont-ttf, installed by scripts/setup.sh), for labels the tests draw themselves.
FONTS = {
    "DejaVu Sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "Liberation Sans": "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "FreeSans": "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
}


def cap_font(path: str, cap_px: int) -> ImageFont.FreeTypeFont:
    """The smallest size of the font at ``path`` whose "0" is at least ``cap_px`` px tall (measured on its ink)."""
    for size in range(6, 80):
        font = ImageFont.truetype(path, size)
        glyph = Image.new("L", (100, 100), 0)
        ImageDraw.Draw(glyph).text((10, 10), "0", font=font, fill=255)
        rows = np.flatnonzero((np.asarray(glyph) > 100).any(axis=1))
        if rows[-1] - rows[0] + 1 >= cap_px:
            return font
    raise AssertionError(f"no size of {path} reaches {cap_px} px")


def specimen(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random relief with noise, roughly like an SEM frame."""
    coarse = rng.random((height // 16 + 2, width // 16 + 2))
    relief = np.kron(coarse, np.ones((16, 16)))[:height, :width] * 150 + 50
    return np.clip(relief + rng.normal(0, 6, (height, width)), 0, 255).astype(np.uint8)


#: Image sizes the burned bars come in: the 512 to 2048 px frames instruments store.
BAR_SIZES = ((512, 384), (1024, 768), (2048, 1536))


@pytest.fixture(scope="session")
def bars():
    """Two burned bars per vendor layout and image size: ``(spec, image, truth)`` tuples (42 in all)."""
    rng = np.random.default_rng(2024)
    found = []
    for layout in LAYOUTS:
        for width, height in BAR_SIZES if layout != "none" else ():
            for _ in range(2):
                spec = random_data_bar_spec(rng, width, height, layout=layout)
                image, truth = burn_data_bar(specimen(rng, spec.specimen_height, width), spec)
                found.append((spec, image, truth))
    return found


def convention_length(image: np.ndarray, spec, truth) -> float:
    """A burned bar's length under the reader's convention, from the generator's truth or, for capped lines, its ink.

    The generator measures a line with end caps from end to end; the reader,
    like the Helios fixture's own metadata, between the caps' centres.  Those
    are found here from the drawn ink (whole px): the first and last columns
    whose ink is taller than the stroke.
    """
    if not (spec.bar.style == "line" and spec.bar.caps):
        return float(truth.bar_px)
    x0, y0, x1, y1 = truth.segment_box
    _sx0, sy0, _sx1, sy1 = truth.stripe_box
    ink = np.abs(image[y0:y1, x0:x1].astype(int) - int(np.median(image[sy0:sy1]))) > 60
    columns = ink.sum(axis=0)
    tall = np.flatnonzero(columns > np.median(columns[columns > 0]) + 1)
    first, last = tall[tall <= tall[0] + 8], tall[tall >= tall[-1] - 8]
    return float(last.mean() - first.mean())


#: Where ``scripts/fetch_fixtures.py`` puts the real instrument TIFFs (git-ignored, never committed).
INSTRUMENT_TIFFS = Path(__file__).resolve().parent.parent / ".cache" / "fixtures" / "instrument_tiffs"
#: The real instrument TIFFs of the hyperspy 1.7.6 wheel: Zeiss SmartSEM (1024 and 512 px, palette) and
#: Thermo Fisher/FEI Helios (512 px, 8 and 16 bits).
INSTRUMENT_TIFF_NAMES = (
    "test_tiff_Zeiss_SEM_1k.tif",
    "test_tiff_Zeiss_SEM_512pix.tif",
    "FEI-Helios-Ebeam-8bits.tif",
    "FEI-Helios-Ebeam-16bits.tif",
)


@pytest.fixture(scope="session")
def instrument_tiffs() -> dict[str, Path]:
    """Name -> path of each real instrument TIFF; fails on CI (``$CI`` set) and skips elsewhere when one is missing."""
    missing = [name for name in INSTRUMENT_TIFF_NAMES if not (INSTRUMENT_TIFFS / name).is_file()]
    if missing:
        message = f"real instrument TIFFs missing ({', '.join(missing)}): run `python scripts/fetch_fixtures.py`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return {name: INSTRUMENT_TIFFS / name for name in INSTRUMENT_TIFF_NAMES}


@pytest.fixture(scope="session", params=BACKENDS)
def demo_repository(request, tmp_path_factory):
    """360 demo images ingested, SEM_Dataset and Hierarchical labels imported, classic features extracted, in an
    SQLite file and then in a database on the test PostgreSQL server.

    Half the images are labelled in SEM_Dataset (the demo's default is the thesis' 14 %), so that 360 images give
    every category enough labelled members for the clustering and evaluation tests; the 15 % setting is tested
    on a dataset of its own that labels 15 % of them (``test_tree_building.py``).

    Returns ``(root, db_url, sessions, truth)`` with ``truth`` the generated sub-category path of each image md5
    (computed from the corpus files, independently of the code under test). Shared by the clustering and
    evaluation tests; tests may add rows but must not remove what is here.
    """
    root = tmp_path_factory.mktemp("subcategories")
    corpus = root / "corpus"
    make_sem_corpus(corpus, 360, seed=11, workers=2, size_scale=0.5, labelled_share=0.5)
    if request.param == "sqlite":
        db_url = f"sqlite:///{root / 'db.sqlite'}"
    else:
        db_url = request.getfixturevalue("postgres_server").create_database()
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
