"""The self-supervised CNN: its loss by hand, its inputs and views, and that training helps on unlabelled textures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from semcurate.datasets.textures import make_textures
from semcurate.features.contrastive import ContrastiveExtractor, augment, to_network_input


def test_network_input_is_square_resampled_and_standardised():
    wide = np.zeros((40, 100), np.uint8)
    wide[:, 50:] = 200  # the centre square (columns 30-69) is half black, half grey 200: standardised -1 and +1
    batch = to_network_input([wide, np.full((30, 30), 9, np.uint8)], size=20)
    assert batch.shape == (2, 20, 20, 1) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, :, :10, 0], -1.0, atol=1e-6)
    np.testing.assert_allclose(batch[0, :, 10:, 0], 1.0, atol=1e-6)
    assert not batch[1].any()  # a flat image has nothing to standardise: zeros


@pytest.mark.parametrize(("image", "message"), [(np.zeros((9, 9, 3)), "2-D grey"), (np.zeros((5, 40)), "too small")])
def test_network_input_refuses_colour_and_tiny_images(image, message):
    with pytest.raises(ValueError, match=message):
        to_network_input([image], size=16)


def test_views_are_crops_of_the_image_up_to_a_turn_contrast_and_noise():
    batch = to_network_input([np.random.default_rng(0).integers(0, 256, (24, 24)).astype(np.uint8)], size=24)
    views = augment(batch, 16, np.random.default_rng(1))
    again = augment(batch, 16, np.random.default_rng(1))
    assert views.shape == (1, 16, 16, 1) and np.array_equal(views, again)
    # the view is a linear function of one of the 8 turned/mirrored crops at one of the 81 places, plus noise
    best = 0.0
    for top in range(9):
        for left in range(9):
            crop = batch[0, top : top + 16, left : left + 16, 0]
            for turned in (np.rot90(crop, k) for k in range(4)):
                for candidate in (turned, turned[:, ::-1]):
                    best = max(best, np.corrcoef(candidate.ravel(), views[0, ..., 0].ravel())[0, 1])
    assert best > 0.9


@pytest.mark.slow
def test_nt_xent_matches_the_formula_by_hand():
    from semcurate.features.contrastive import nt_xent

    # two images whose two views coincide, orthogonal to each other: each row's positive has cosine 1, the two
    # negatives cosine 0, so at temperature 1 every row loses -log(e / (e + 1 + 1))
    projections = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    losses = np.asarray(nt_xent(projections, 1.0))
    np.testing.assert_allclose(losses, [math.log((math.e + 2) / math.e)] * 4, rtol=1e-5)
    # at temperature 0.5 the positive's logit is 2: -log(e^2 / (e^2 + 2))
    np.testing.assert_allclose(
        np.asarray(nt_xent(projections, 0.5)), [math.log((math.e**2 + 2) / math.e**2)] * 4, rtol=1e-5
    )


def test_transform_before_fit_and_too_few_images_are_refused():
    with pytest.raises(RuntimeError, match="not fitted"):
        ContrastiveExtractor().transform([np.zeros((32, 32), np.uint8)])
    with pytest.raises(ValueError, match="at least 2 images"):
        ContrastiveExtractor().fit([np.zeros((32, 32), np.uint8)])
    with pytest.raises(ValueError, match="crop"):
        ContrastiveExtractor(size=32, crop=48).fit([np.zeros((32, 32), np.uint8)] * 2)


@pytest.mark.slow
def test_training_separates_two_texture_kinds_better_than_the_random_network_and_repeats_exactly():
    images, _, subcategory = make_textures(24, rng=5, size=48)
    keep = np.isin(subcategory, ["phase/droplets", "phase/holes"])
    images, labels = list(images[keep]), subcategory[keep]

    def separation(epochs: int) -> tuple[float, np.ndarray]:
        model = ContrastiveExtractor(size=48, crop=32, epochs=epochs, batch_size=24, random_state=3).fit(images)
        rows = model.transform(images)["contrastive"]
        assert rows.shape == (48, 128) and rows.dtype == np.float32 and np.isfinite(rows).all()
        return silhouette_score(StandardScaler().fit_transform(rows), labels), rows

    untrained, _ = separation(0)
    trained, rows = separation(12)
    # measured: 0.04 untrained, 0.12 after 12 epochs (silhouette of the true two classes, -1 .. 1)
    assert trained > max(2 * untrained, untrained + 0.05), (untrained, trained)
    _, again = separation(12)
    np.testing.assert_allclose(again, rows, rtol=1e-4, atol=1e-5)
