"""Feature extraction from the store: data bar cropped, resumable, feature-set metadata recorded."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKENDS
from sqlalchemy import select

from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import FeatureSet, Image, ScaleReading, open_database
from semcurate.features.extract import (
    ClassicExtractor,
    ExtractionError,
    create_extractor,
    extract,
    image_tasks,
    load_specimen,
    prefetched,
)
from semcurate.features.store import FeatureStore
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.scale_database import create_subset, read_scales


@pytest.fixture(scope="module", params=BACKENDS)
def repository(request, tmp_path_factory):
    """12 demo images ingested and scale-read, in an SQLite file and then on the test PostgreSQL server."""
    root = tmp_path_factory.mktemp("extract")
    make_sem_corpus(root / "corpus", 12, seed=4, workers=2, size_scale=0.5)
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    sessions = open_database(url)
    ingest(root / "corpus" / "new_dati_SEM", root / "store", sessions, workers=2)
    read_scales(sessions, root / "store", workers=2)
    return root, sessions


def test_data_bar_is_cropped_away(repository):
    root, sessions = repository
    tasks = image_tasks(sessions, root / "store", None)
    with sessions() as session:
        stripes = dict(session.execute(select(ScaleReading.image_md5, ScaleReading.stripe_y0)).all())
        heights = dict(session.execute(select(Image.md5, Image.height)).all())
    for task in tasks:
        specimen = load_specimen(task)
        assert specimen.ndim == 2 and specimen.dtype == np.uint8
        assert specimen.shape[0] == (stripes[task.md5] or heights[task.md5])
    assert any(stripes.values())


def test_extraction_is_resumable_and_recorded(repository, tmp_path):
    root, sessions = repository
    store = FeatureStore(tmp_path / "features.h5")
    first = extract(sessions, root / "store", store, create_extractor("classic"), batch_size=5, workers=2)
    assert first == {
        "extracted": 12,
        "skipped": {},
        "feature_store": str(tmp_path / "features.h5"),
        "moved_from": None,
        "feature_sets": {"classic": 12},
    }
    again = extract(sessions, root / "store", store, create_extractor("classic"), batch_size=5)
    assert again["extracted"] == 0
    md5s, values = store.read("classic")
    assert sorted(md5s) == sorted(task.md5 for task in image_tasks(sessions, root / "store", None))
    assert np.isfinite(values).all()
    with sessions() as session:
        row = session.get(FeatureSet, "classic")
    assert (row.n_rows, row.dimension) == (12, values.shape[1])


def test_the_blob_descriptor_extracts_in_workers_into_its_own_set(repository, tmp_path):
    root, sessions = repository
    store = FeatureStore(tmp_path / "features.h5")
    extract(sessions, root / "store", store, create_extractor("classic"), batch_size=5, workers=2)
    result = extract(sessions, root / "store", store, create_extractor("classic_blobs"), batch_size=5, workers=2)
    assert result["feature_sets"] == {"classic_blobs": 12, "classic": 12}  # classic's rows kept, none doubled
    plain_md5s, plain = store.read("classic")
    blob_md5s, blobs = store.read("classic_blobs")
    order = [blob_md5s.index(md5) for md5 in plain_md5s]
    assert blobs.shape == (12, 191)
    assert np.array_equal(blobs[order, :160], plain)  # the same descriptor, with 31 columns more
    with sessions() as session:
        row = session.get(FeatureSet, "classic_blobs")
    assert (row.extractor, row.dimension) == ("classic_blobs", 191)


def test_the_blob_descriptor_fills_the_plain_set_in_the_same_pass(repository, tmp_path):
    root, sessions = repository
    alone = FeatureStore(tmp_path / "plain.h5")
    extract(sessions, root / "store", alone, create_extractor("classic"), batch_size=5)
    store = FeatureStore(tmp_path / "features.h5")
    result = extract(sessions, root / "store", store, create_extractor("classic_blobs"), batch_size=5, workers=2)
    assert result["feature_sets"] == {"classic_blobs": 12, "classic": 12}
    md5s, plain = store.read("classic")
    alone_md5s, alone_plain = alone.read("classic")
    assert len(set(md5s)) == 12
    assert np.array_equal(plain, alone_plain[[alone_md5s.index(md5) for md5 in md5s]])
    assert extract(sessions, root / "store", store, create_extractor("classic"), batch_size=5)["extracted"] == 0
    with sessions() as session:
        row = session.get(FeatureSet, "classic")
    assert (row.n_rows, row.dimension, row.layer) == (12, 160, "classic")


@pytest.mark.slow
def test_cnn_outputs_go_to_named_sets_for_a_subset(repository, tmp_path):
    root, sessions = repository
    create_subset(sessions, "some", ["1 µm", "2 µm", "200 nm", "100 nm", "10 µm", "20 µm"], replace=True)
    store = FeatureStore(tmp_path / "features.h5")
    result = extract(
        sessions, root / "store", store, create_extractor("inception_v3", "none"), subset="some", batch_size=4
    )
    sizes = set(result["feature_sets"].values())
    assert set(result["feature_sets"]) == {"inception_v3.random.pool", "inception_v3.random.logits"}
    assert len(sizes) == 1 and 0 < sizes.pop() < 12
    assert store.dimension("inception_v3.random.pool") == 2048


def test_bad_requests_are_clear_errors(repository, tmp_path):
    root, sessions = repository
    with pytest.raises(ExtractionError, match="unknown extractor"):
        create_extractor("vgg")
    with pytest.raises(ExtractionError, match="no subset"):
        image_tasks(sessions, root / "store", "missing")
    create_subset(sessions, "empty", ["300 mm"], replace=True)
    with pytest.raises(ExtractionError, match="no images"):
        image_tasks(sessions, root / "store", "empty")


def test_prefetching_keeps_order_and_passes_errors_on():
    assert list(prefetched(iter(range(10)))) == list(range(10))

    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetched(failing()))


def test_the_particle_descriptor_fills_all_three_classic_sets_and_the_facets(repository, tmp_path):
    root, sessions = repository
    store = FeatureStore(tmp_path / "features.h5")
    extract(sessions, root / "store", store, create_extractor("classic_blobs"), batch_size=5, workers=2)
    result = extract(sessions, root / "store", store, create_extractor("classic_particles"), batch_size=5, workers=2)
    assert result["feature_sets"] == {  # none doubled
        "classic_particles": 12,
        "classic_blobs": 12,
        "classic": 12,
        "particle_facets": 12,
    }
    blob_md5s, blobs = store.read("classic_blobs")
    particle_md5s, particles = store.read("classic_particles")
    assert particles.shape == (12, 203)
    facet_md5s, facets = store.read("particle_facets")
    assert facet_md5s == particle_md5s and facets.shape == (12, 3)
    assert ((facets >= 0) & (facets <= 1)).all()
    assert np.array_equal(particles[[particle_md5s.index(md5) for md5 in blob_md5s], :191], blobs)

    # without its facet block (as the variants of a projection that does not use it are described) the particle
    # descriptor's own columns are the same numbers
    tasks = {task.md5: task for task in image_tasks(sessions, root / "store", None)}
    specimens = [load_specimen(tasks[md5]) for md5 in particle_md5s]
    plain = ClassicExtractor(particles=True, facets=False).transform(specimens)
    assert set(plain) == {"classic_particles", "classic_blobs", "classic"}
    np.testing.assert_array_equal(plain["classic_particles"], particles)


def test_reduce_joins_two_sets_side_by_side_and_describes_one_variant_per_image_for_both(repository, tmp_path):
    """``reduce classic_particles+scattering --method invariant``: one projection over both sets' columns, fitted on
    variants that both extractors describe from the same re-acquired image."""
    from typer.testing import CliRunner

    from semcurate.cli import app
    from semcurate.features.analysis import StudyError, joined_rows, reduce_feature_set
    from semcurate.features.extract import variant_rows
    from semcurate.features.invariance import NuisanceProjection

    root, sessions = repository
    store = FeatureStore(tmp_path / "features.h5")
    for name in ("classic_particles", "scattering"):
        extract(sessions, root / "store", store, create_extractor(name), batch_size=6, workers=2)
    particle_md5s = store.md5s("classic_particles")
    scattering_md5s, scattering = store.read("scattering")
    # scattering ran in the 2 worker processes: the rows are the extractor's own on the cropped specimens
    tasks = {task.md5: task for task in image_tasks(sessions, root / "store", None)}
    alone = create_extractor("scattering").transform([load_specimen(tasks[md5]) for md5 in scattering_md5s])
    np.testing.assert_allclose(scattering, alone["scattering"], rtol=1e-6, atol=1e-6)
    md5s, joined = joined_rows(sessions, store, "classic_particles+scattering", None)
    assert md5s == particle_md5s and joined.shape == (12, 203 + scattering.shape[1])
    np.testing.assert_array_equal(joined[:, 203:], scattering[[scattering_md5s.index(md5) for md5 in md5s]])

    # the variants are shrunk for the larger working side (classic's 256 px against scattering's 128) and described
    # by both extractors, so the classic part equals classic's own variants and the scattering part does not
    drawn = md5s[:5]
    used, rows, skipped = variant_rows(sessions, root / "store", "classic_particles+scattering", drawn, workers=2)
    _, classic_rows, _ = variant_rows(sessions, root / "store", "classic_particles", drawn)
    _, scattering_rows, _ = variant_rows(sessions, root / "store", "scattering", drawn)
    assert used == drawn and not skipped and rows.shape == (5, joined.shape[1])
    np.testing.assert_array_equal(rows[:, :203], classic_rows)
    assert not np.allclose(rows[:, 203:], scattering_rows)
    # the facet block's own variants come from the same re-acquisitions, described with the block
    _, facet_rows, _ = variant_rows(sessions, root / "store", "classic_particles+particle_facets", drawn, workers=2)
    np.testing.assert_array_equal(facet_rows[:, :203], classic_rows)
    assert facet_rows.shape == (5, 206) and ((facet_rows[:, 203:] >= 0) & (facet_rows[:, 203:] <= 1)).all()

    result = reduce_feature_set(
        sessions,
        store,
        "classic_particles+scattering",
        "invariant",
        "4",
        tmp_path,
        image_store=root / "store",
        variant_images=6,
    )
    assert (result["feature_set"], result["parent"]) == (
        "classic_particles+scattering.inv4",
        "classic_particles+scattering",
    )
    picked = np.sort(np.random.default_rng(0).permutation(12)[:6])  # the images the reduction draws
    _, variants, _ = variant_rows(sessions, root / "store", "classic_particles+scattering", [md5s[i] for i in picked])
    expected = NuisanceProjection(n_components=4).fit(joined, originals=joined[picked], variants=variants)
    codes_md5s, codes = store.read("classic_particles+scattering.inv4")
    assert codes_md5s == md5s
    np.testing.assert_allclose(codes, expected.transform(joined), rtol=1e-6, atol=1e-9)
    with sessions() as session:
        row = session.get(FeatureSet, "classic_particles+scattering.inv4")
    assert (row.parent, row.dimension, row.n_rows) == ("classic_particles+scattering", 4, 12)

    # the projection is one set with + in its name, not a join of classic_particles and scattering.inv4
    further = reduce_feature_set(sessions, store, "classic_particles+scattering.inv4", "pca", 2, tmp_path)
    assert further["feature_set"] == "classic_particles+scattering.inv4.pca2"
    assert store.read(further["feature_set"])[1].shape == (12, 2)
    with pytest.raises(StudyError, match="must join different feature sets"):
        joined_rows(sessions, store, "classic+classic", None)
    with pytest.raises(StudyError, match="must join different feature sets"):
        reduce_feature_set(sessions, store, "+classic", "pca", 2, tmp_path)
    with pytest.raises(StudyError, match="no feature set 'nosuch'"):
        joined_rows(sessions, store, "classic+nosuch", None)
    url = str(sessions.kw["bind"].url.render_as_string(hide_password=False))
    cli = CliRunner().invoke(
        app,
        [
            *("reduce", "classic_blobs+scattering", "--method", "invariant", "--code-size", "3"),
            *(
                "--variant-images",
                "6",
                "--store",
                str(root / "store"),
                "--feature-store",
                str(tmp_path / "features.h5"),
            ),
            *("--db", url, "--out", str(tmp_path / "reduce")),
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert store.read("classic_blobs+scattering.inv3")[1].shape == (12, 3)
