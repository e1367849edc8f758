"""The acquisition-invariant projection: against scikit-learn's LDA, on data of known nuisance, and as a reduction."""

import re

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, ward
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.metrics import normalized_mutual_info_score

from semcurate.db.models import FeatureSet
from semcurate.demo import demo_projections
from semcurate.features.analysis import StudyError, reduce_feature_set
from semcurate.features.extract import ExtractionError, set_extractor, variant_rows
from semcurate.features.invariance import NuisanceProjection, acquisition_variant
from semcurate.features.methods import VARIANT_IMAGES
from semcurate.features.store import FeatureStore


def pairs(rng, count=200, features=6):
    """Rows of ``count`` images with correlated columns, and one variant of each moved mostly along 2 columns."""
    mixing = rng.normal(size=(features, features))
    originals = rng.normal(size=(count, features)) @ mixing
    nuisance = np.zeros(features)
    nuisance[:2] = 3.0
    variants = originals + rng.normal(size=(count, features)) * (0.3 + nuisance)
    return originals, variants


def test_the_projection_equals_linear_discriminant_analysis_with_each_image_and_its_variant_as_a_class():
    rng = np.random.default_rng(0)
    originals, variants = pairs(rng)
    rows = np.vstack([originals, variants])
    classes = np.tile(np.arange(len(originals)), 2)
    ours = NuisanceProjection(n_components=4, regularisation=0.0).fit(rows, originals=originals, variants=variants)
    lda = LinearDiscriminantAnalysis(solver="eigen", n_components=4).fit(rows, classes)
    for ours_column, lda_column in zip(ours.transform(rows).T, lda.transform(rows).T, strict=True):
        assert abs(np.corrcoef(ours_column, lda_column)[0, 1]) == pytest.approx(1.0, abs=1e-8)


def test_projected_differences_between_an_image_and_its_variant_have_unit_mean_square():
    rng = np.random.default_rng(1)
    originals, variants = pairs(rng)
    projection = NuisanceProjection(n_components=6, regularisation=0.0).fit(
        originals, originals=originals, variants=variants
    )
    differences = projection.transform(originals) - projection.transform(variants)
    np.testing.assert_allclose((differences**2).mean(axis=0), 1.0, rtol=1e-9)
    # and each direction's variance over the images is its ratio (population variance, as fitted)
    np.testing.assert_allclose(projection.transform(originals).var(axis=0), projection.variance_ratios_, rtol=1e-9)


def test_clusters_hidden_under_a_larger_acquisition_nuisance_come_back():
    """Three groups differ along 2 columns; acquisition moves 16 others three times as far. Standardised Ward follows
    the nuisance; on the projection it finds the groups."""
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(3), 60)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    signal = centres[groups] + rng.normal(scale=0.5, size=(180, 2))
    acquisition = rng.normal(scale=6.0, size=(180, 16))
    rows = np.hstack([signal, acquisition])
    variants = np.hstack([signal, rng.normal(scale=6.0, size=(180, 16))])
    standardised = (rows - rows.mean(0)) / rows.std(0)
    before = normalized_mutual_info_score(groups, fcluster(ward(standardised), 3, "maxclust"))
    projection = NuisanceProjection().fit(rows, originals=rows, variants=variants)
    after = normalized_mutual_info_score(groups, fcluster(ward(projection.transform(rows)), 3, "maxclust"))
    assert before < 0.3
    assert after > 0.9
    # "auto" keeps the two directions in which the groups differ, none of the acquisition's
    assert projection.n_components_ == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "needs originals= and variants="),
        ({"originals": np.zeros((5, 3)), "variants": np.zeros((4, 3))}, "must both be"),
        ({"originals": np.zeros((1, 4)), "variants": np.zeros((1, 4))}, "at least 2 pairs"),
    ],
)
def test_fit_refuses_pairs_it_cannot_use(arguments, message):
    with pytest.raises(ValueError, match=message):
        NuisanceProjection().fit(np.random.default_rng(0).normal(size=(10, 4)), **arguments)


def test_a_code_size_outside_the_columns_is_refused():
    rows = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match="between 1 and 4"):
        NuisanceProjection(n_components=5).fit(rows, originals=rows, variants=rows[::-1])


def test_a_variant_is_the_same_image_within_the_drawn_settings():
    rng = np.random.default_rng(3)
    ramp = np.tile(np.linspace(40, 200, 120), (90, 1)).astype(np.uint8)
    first = acquisition_variant(ramp, np.random.default_rng(7))
    assert first.shape == ramp.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, acquisition_variant(ramp, np.random.default_rng(7)))
    for _ in range(20):
        variant = acquisition_variant(ramp, rng).astype(float)
        # contrast 0.7-1.3, brightness ±30, gamma e^±0.25, shading ≤ 25 and noise ≤ 8 grey levels keep the mean near
        assert abs(variant.mean() - ramp.mean()) < 60
        # a left-to-right ramp stays a ramp, in one direction or the other (mirror)
        profile = variant.mean(axis=0)
        assert abs(np.corrcoef(profile, np.arange(len(profile)))[0, 1]) > 0.95
    with pytest.raises(ValueError, match="2-D grey image"):
        acquisition_variant(np.zeros((4, 4, 3), np.uint8), rng)


def test_reduce_invariant_stores_a_projection_of_every_image(demo_repository, tmp_path):
    root, _, sessions, _ = demo_repository
    features = FeatureStore(root / "features.h5")
    result = reduce_feature_set(
        sessions, features, "classic", "invariant", "auto", tmp_path, image_store=root / "store", variant_images=80
    )
    name = result["feature_set"]
    assert name == f"classic.inv{result['code_size']}"
    assert 1 <= result["code_size"] < 160
    assert result["variant_images"] == 80
    assert result["variance_ratios"][result["code_size"] - 1] >= 5.0
    assert result["variance_ratios"][result["code_size"]] < 5.0
    assert sorted(features.md5s(name)) == sorted(features.md5s("classic"))
    # Two worker processes, other batches: each variant is seeded by its image alone, so the projection is the same.
    again = reduce_feature_set(
        sessions,
        features,
        "classic",
        "invariant",
        "auto",
        tmp_path,
        image_store=root / "store",
        variant_images=80,
        workers=2,
    )
    assert again["variance_ratios"] == result["variance_ratios"]
    # The demo's own projection asks for VARIANT_IMAGES images; one reduced by hand with 80 is not taken for it.
    assert demo_projections(sessions, "classic") == []
    own = reduce_feature_set(
        sessions, features, "classic", "invariant", "auto", tmp_path, image_store=root / "store", workers=2
    )
    assert own["variant_images"] == len(features.md5s("classic")) < VARIANT_IMAGES  # every one of the 360 drawn
    assert demo_projections(sessions, "classic") == [own["feature_set"]]
    assert demo_projections(sessions) == []  # the demo projects classic_blobs
    drawn = features.md5s("classic")[:7]
    used, rows, skipped = variant_rows(sessions, root / "store", "classic", drawn, batch_size=2, workers=2)
    used_alone, rows_alone, _ = variant_rows(sessions, root / "store", "classic", drawn)
    assert used == used_alone == drawn and not skipped
    np.testing.assert_array_equal(rows, rows_alone)
    given = reduce_feature_set(
        sessions, features, "classic", "invariant", "3", tmp_path, image_store=root / "store", variant_images=20
    )
    assert (given["feature_set"], given["code_size"], given["code_size_source"]) == ("classic.inv3", 3, "given")
    assert features.read("classic.inv3")[1].shape == (len(features.md5s("classic")), 3)
    with pytest.raises(StudyError, match="between 1 and 159, got 160"):
        reduce_feature_set(sessions, features, "classic", "invariant", 160, tmp_path, image_store=root / "store")
    with pytest.raises(StudyError, match="needs the image store"):
        reduce_feature_set(sessions, features, "classic", "invariant", "auto", tmp_path)
    with pytest.raises(StudyError, match="is derived from classic"):
        reduce_feature_set(sessions, features, name, "invariant", "auto", tmp_path, image_store=root / "store")


def test_a_set_whose_weights_are_gone_is_one_extraction_error_not_a_keras_exception(demo_repository, tmp_path):
    """The weights file an Inception-V3 set was extracted with has been deleted: computing a row for a file
    (``similar``) or for a variant (``reduce --method invariant``) says so in one line."""
    _, _, sessions, _ = demo_repository
    gone = tmp_path / "gone.weights.h5"
    with sessions.begin() as session:
        session.add(
            FeatureSet(
                name="inception_v3.wgone.pool",
                extractor="inception_v3",
                weights=str(gone),
                weights_digest="0" * 64,
                layer="pool",
                dimension=2048,
                n_rows=0,
                store_path=str(tmp_path / "features.h5"),
            )
        )
    with pytest.raises(ExtractionError, match=f"cannot be loaded: weights file {re.escape(str(gone))} does not exist"):
        set_extractor(sessions, "inception_v3.wgone.pool", "reduce {root} instead")
