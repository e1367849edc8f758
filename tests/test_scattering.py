"""The wavelet scattering extractor: kymatio's own numbers, the wavelets' known scales, rotation invariance."""

from __future__ import annotations

import numpy as np
import pytest
from kymatio.scattering2d.frontend.numpy_frontend import ScatteringNumPy2D

from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import FeatureSet, open_database
from semcurate.features.extract import (
    WORKER_EXTRACTORS,
    create_extractor,
    extract,
    feature_set_name,
    image_tasks,
    load_specimen,
)
from semcurate.features.methods import EXTRACTORS
from semcurate.features.scattering import ScatteringExtractor
from semcurate.features.store import FeatureStore
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.scale_database import read_scales


def _grating(period_px: float, side: int = 128, angle: float = 0.3) -> np.ndarray:
    """A sinusoidal grating, grey 28..228, crests ``period_px`` apart across direction ``angle`` (radians)."""
    rows, cols = np.mgrid[0:side, 0:side]
    phase = 2 * np.pi * (cols * np.cos(angle) + rows * np.sin(angle)) / period_px
    return np.rint(128 + 100 * np.sin(phase)).astype(np.uint8)


def test_rows_are_kymatios_scattering_logged_and_normalised_by_the_parent():
    image = np.random.default_rng(0).integers(0, 256, (32, 32)).astype(np.uint8)
    rows = ScatteringExtractor(size=32, j=2, orientations=4, rotation_invariant=False).transform([image])["scattering"]
    standardised = (image - image.mean()) / image.std()
    paths = ScatteringNumPy2D(J=2, shape=(32, 32), L=4, out_type="list")(standardised.astype(np.float32))
    logged = {(p["j"], p["theta"]): np.log(p["coef"].mean(dtype=np.float64) + 1e-4) for p in paths[1:]}
    expected = [value - logged[(j[:1], theta[:1])] if len(j) == 2 else value for (j, theta), value in logged.items()]
    assert rows.shape == (1, 2 * 4 + 4 * 4 * 1) and rows.dtype == np.float32
    np.testing.assert_allclose(rows[0], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_a_grating_peaks_at_the_wavelet_scale_of_its_period(scale):
    # kymatio's Morlet wavelet at scale j is centred on 3 pi / 4 / 2**j radians per pixel: a period of 8 / 3 * 2**j px
    extractor = ScatteringExtractor(size=64, j=4, orientations=8, rotation_invariant=False)
    rows = extractor.transform([_grating(8 / 3 * 2**scale, side=64)])["scattering"][0]
    strongest_direction = rows[: 4 * 8].reshape(4, 8).max(axis=1)
    assert int(np.argmax(strongest_direction)) == scale


def test_a_quarter_turn_leaves_the_invariant_rows_and_moves_the_others():
    image = _grating(12.0, 64, 0.4) // 2 + np.random.default_rng(1).integers(0, 100, (64, 64)).astype(np.uint8)
    turned = np.rot90(image)
    invariant = ScatteringExtractor(size=64).transform([image, turned])["scattering"]
    directional = ScatteringExtractor(size=64, rotation_invariant=False).transform([image, turned])["scattering"]
    assert np.abs(invariant[0] - invariant[1]).max() < 0.1  # 64 px windows: their borders differ a little
    assert np.abs(directional[0] - directional[1]).max() > 1.0


def test_one_direction_shows_in_the_direction_harmonics():
    extractor = ScatteringExtractor(size=64)
    noise = np.random.default_rng(2).integers(0, 256, (64, 64)).astype(np.uint8)
    grating, isotropic = extractor.transform([_grating(2**2 * 8 / 3, side=64), noise])["scattering"]
    first = extractor.feature_names.index("s1_j2_h1")
    assert grating[first] > 10 * isotropic[first]


def test_a_wide_image_is_the_mean_of_its_windows():
    # a 64 x 128 image is covered by two 64 px squares: its coefficients average theirs, before the logarithm
    rng = np.random.default_rng(4)
    left, right = rng.integers(0, 256, (2, 64, 64)).astype(np.uint8)
    wide = np.concatenate([left, right], axis=1)
    extractor = ScatteringExtractor(size=64, j=2, orientations=4, rotation_invariant=False)
    assert [windows.shape for windows in extractor.prepare([wide, left])] == [(2, 64, 64), (1, 64, 64)]
    rows = extractor.transform([wide])["scattering"][0]
    prepared = extractor.prepare([wide])[0]
    separate = np.exp(extractor.predict([prepared[:1], prepared[1:]])["scattering"][:, :8].astype(np.float64)) - 1e-4
    np.testing.assert_allclose(rows[:8], np.log(separate.mean(axis=0) + 1e-4), rtol=1e-4)


def test_the_centre_extractor_sees_only_the_centre_square():
    # a 64 x 96 image: its centre 64 px square is columns 16-79; the ends may be anything
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (64, 96)).astype(np.uint8)
    other_ends = image.copy()
    other_ends[:, :16], other_ends[:, 80:] = 0, 255
    other_centre = image.copy()
    other_centre[:, 16:80] = _grating(8.0, side=64)
    centre = ScatteringExtractor(size=64, j=2, orientations=4, windowing="centre")
    assert centre.name == "scattering_centre" and [w.shape for w in centre.prepare([image])] == [(1, 64, 64)]
    rows = centre.transform([image, other_ends, other_centre, image[:, 16:80]])["scattering_centre"]
    np.testing.assert_array_equal(rows[0], rows[1])  # standardised by itself: the ends do not enter
    np.testing.assert_array_equal(rows[0], rows[3])  # the row of the square cut out by hand
    assert np.abs(rows[0] - rows[2]).max() > 1.0  # a grating in the centre instead of noise
    covered = ScatteringExtractor(size=64, j=2, orientations=4).transform([image, image[:, 16:80]])["scattering"]
    np.testing.assert_array_equal(covered[1], rows[3])  # a square image: one window either way
    assert np.abs(covered[0] - rows[0]).max() > 0.01  # the covering windows see the ends too


@pytest.mark.parametrize("k", [2, 4, 8, 16])
def test_the_periodisation_is_kymatios(k):
    from kymatio.scattering2d.backend.numpy_backend import NumpyBackend2D

    from semcurate.features.scattering import subsample_fourier

    rng = np.random.default_rng(k)
    spectra = (rng.standard_normal((3, 160, 160)) + 1j * rng.standard_normal((3, 160, 160))).astype(np.complex64)
    ours = subsample_fourier(spectra, k)
    assert ours.shape == (3, 160 // k, 160 // k) and ours.dtype == np.complex64
    np.testing.assert_allclose(ours, NumpyBackend2D.subsample_fourier(spectra, k), rtol=1e-5, atol=1e-6)


def test_shapes_dimensions_and_odd_sizes():
    extractor = ScatteringExtractor(size=64, j=3, orientations=6)
    assert extractor.outputs == {"scattering": 3 * (6 // 2 + 1) + 6 * 3} == {"scattering": len(extractor.feature_names)}
    assert ScatteringExtractor(j=4, orientations=8, rotation_invariant=False).outputs == {"scattering": 32 + 64 * 6}
    images = [np.full((40, 300), 7, np.uint8), np.random.default_rng(3).random((90, 70)) * 255, np.eye(64) * 255]
    rows = extractor.transform(images)["scattering"]
    assert rows.shape == (3, extractor.outputs["scattering"]) and rows.dtype == np.float32
    assert np.isfinite(rows).all()


@pytest.mark.parametrize(
    ("image", "message"), [(np.zeros((32, 32, 3), np.uint8), "2-D grey"), (np.zeros((4, 64), np.uint8), "too small")]
)
def test_refuses_colour_and_tiny_images(image, message):
    with pytest.raises(ValueError, match=message):
        ScatteringExtractor().transform([image])


def test_refuses_a_size_below_the_largest_wavelet():
    with pytest.raises(ValueError, match="2 \\*\\* J = 32"):
        ScatteringExtractor(size=16, j=5)


@pytest.mark.parametrize(("name", "windowing"), [("scattering", "cover"), ("scattering_centre", "centre")])
def test_registered_as_a_weight_free_extractor(name, windowing):
    assert name in EXTRACTORS and name in WORKER_EXTRACTORS
    extractor = create_extractor(name)
    assert isinstance(extractor, ScatteringExtractor) and extractor.windowing == windowing
    assert feature_set_name(extractor, name) == name and extractor.outputs == {name: 68}
    assert extractor.weights_digest == "none" and extractor.input_size == (128, 128)


def test_refuses_an_unknown_windowing():
    with pytest.raises(ValueError, match="windowing must be one of cover, centre, got 'left'"):
        ScatteringExtractor(windowing="left")


@pytest.mark.slow
def test_extract_stores_the_rows_of_the_cropped_specimens(tmp_path):
    make_sem_corpus(tmp_path / "corpus", 6, seed=4, workers=1, size_scale=0.5)
    sessions = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    ingest(tmp_path / "corpus" / "new_dati_SEM", tmp_path / "store", sessions, workers=1)
    read_scales(sessions, tmp_path / "store", workers=1)
    store = FeatureStore(tmp_path / "features.h5")
    result = extract(sessions, tmp_path / "store", store, create_extractor("scattering"), batch_size=4)
    assert result["feature_sets"] == {"scattering": 6} and result["skipped"] == {}
    md5s, values = store.read("scattering")
    tasks = {task.md5: task for task in image_tasks(sessions, tmp_path / "store", None)}
    expected = ScatteringExtractor().transform([load_specimen(tasks[md5]) for md5 in md5s])["scattering"]
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)
    with sessions() as session:
        row = session.get(FeatureSet, "scattering")
    assert (row.extractor, row.weights, row.n_rows, row.dimension) == ("scattering", "none", 6, 68)
