"""Placing unlabelled rows in labelled categories (clustering/placement.py), judged on generated data whose
categories are known: labels are hidden on 85 % of the rows (the thesis' repository has them on 14 %), and the
placements are scored against the hidden truth and against scikit-learn's own cross-validation and metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, confusion_matrix, log_loss, recall_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from semcurate.clustering.placement import (
    CLASSIFIERS,
    SUPERVISED,
    CategoryPlacer,
    place_unlabelled,
    placement_report,
)

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = np.array(["Fibres", "Particles", "Powder", "Tips"])


def hidden_labels(n_rows: int, seed: int) -> np.ndarray:
    """True for the 85 % of rows whose label the placement does not see."""
    return np.random.default_rng(seed).random(n_rows) < 0.85


def overlapping_categories(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 4 categories that overlap enough for the probabilities to spread over [0.3, 1]."""
    values, truth = make_classification(
        n_rows,
        8,
        n_informative=6,
        n_redundant=0,
        n_classes=4,
        n_clusters_per_class=1,
        class_sep=1.0,
        random_state=seed,
    )
    return values, NAMES[truth]


def test_hidden_rows_are_placed_as_well_as_the_cross_validation_promised():
    values, truth = overlapping_categories(4000, seed=2)
    hidden = hidden_labels(len(truth), seed=2)
    placement = place_unlabelled(values[~hidden], list(truth[~hidden]), values[hidden])
    right = np.array(placement.categories) == truth[hidden]
    # An independent peer: scikit-learn's logistic regression fitted on the same labelled rows.
    peer = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(values[~hidden], truth[~hidden])
    peer_accuracy = np.mean(peer.predict(values[hidden]) == truth[hidden])
    assert right.mean() > 0.85 and right.mean() >= peer_accuracy, (right.mean(), peer_accuracy)
    # The held-out estimate, made on the labelled rows only, predicts the accuracy on the hidden ones.
    assert placement.report["heldout_accuracy"] == pytest.approx(right.mean(), abs=0.03)
    for name in NAMES:
        of_category = truth[hidden] == name
        estimate = placement.report["per_category"][name]["accuracy"]
        assert estimate == pytest.approx(right[of_category].mean(), abs=0.08), name
    assert placement.report["placed"] == hidden.sum() == len(placement.probabilities)


def test_well_separated_categories_are_placed_without_error_or_doubt():
    values, truth = make_blobs(600, centers=[[0, 0, 0], [9, 0, 0], [0, 9, 0], [0, 0, 9]], random_state=4)
    hidden = hidden_labels(len(truth), seed=4)
    placement = place_unlabelled(values[~hidden], list(NAMES[truth[~hidden]]), values[hidden])
    assert placement.categories == list(NAMES[truth[hidden]])
    assert placement.probabilities.min() > 0.9 and not placement.doubtful.any()


def test_placement_probabilities_come_true_as_often_as_they_say():
    """Reliability: among placements with probability in [p, p + 0.1), the share placed right is close to p."""
    values, truth = overlapping_categories(12000, seed=0)
    hidden = hidden_labels(len(truth), seed=0)
    placement = place_unlabelled(values[~hidden], list(truth[~hidden]), values[hidden])
    right = np.array(placement.categories) == truth[hidden]
    probabilities = placement.probabilities
    assert np.all((probabilities >= 0.25) & (probabilities <= 1))  # 4 categories: the top one has at least 1/4
    checked = 0
    for low in np.arange(0.0, 1.0, 0.1):
        in_bin = (probabilities >= low) & (probabilities < low + 0.1 if low < 0.85 else probabilities <= 1)
        if in_bin.sum() < 300:
            continue
        stated, observed = probabilities[in_bin].mean(), right[in_bin].mean()
        standard_error = np.sqrt(stated * (1 - stated) / in_bin.sum())
        assert abs(observed - stated) <= 0.04 + 2 * standard_error, (low, in_bin.sum(), stated, observed)
        checked += 1
    assert checked >= 4, "the probabilities should spread over several well-filled bins"


def test_doubtful_marks_exactly_the_placements_below_the_threshold():
    values, truth = overlapping_categories(3000, seed=5)
    hidden = hidden_labels(len(truth), seed=5)
    placement = place_unlabelled(values[~hidden], list(truth[~hidden]), values[hidden], doubtful_below=0.7)
    below = placement.probabilities < 0.7
    assert 0 < below.sum() < len(below)
    np.testing.assert_array_equal(placement.doubtful, below)
    assert placement.report["doubtful"] == below.sum() and placement.report["doubtful_below"] == 0.7
    per_category = placement.report["per_category"]
    placed = np.array(placement.categories)
    for name in NAMES:
        assert per_category[name]["placed"] == np.sum(placed == name)
        assert per_category[name]["doubtful"] == np.sum(below & (placed == name))
    right = placed == truth[hidden]
    assert right[~below].mean() > right[below].mean() + 0.2  # the doubtful ones are the likely mistakes


def test_report_tables_equal_scikit_learns_metrics_of_the_heldout_predictions():
    values, truth = overlapping_categories(1500, seed=1)
    placer = CategoryPlacer().fit(values, truth)
    report = placement_report(placer, list(truth), np.array([]), np.array([], dtype=bool), 0.5)
    assert report["classifier"] == placer.classifier_ and report["folds"] == 5 and report["cv_rows"] == 1500
    heldout_truth, heldout_predicted = placer.heldout_categories_, placer.heldout_predictions_
    np.testing.assert_array_equal(heldout_truth, truth[placer.heldout_rows_])
    expected_matrix = confusion_matrix(heldout_truth, heldout_predicted, labels=NAMES)
    assert report["confusion"] == {"categories": list(NAMES), "matrix": expected_matrix.tolist()}
    recalls = recall_score(heldout_truth, heldout_predicted, labels=NAMES, average=None)
    for name, recall in zip(NAMES, recalls, strict=True):
        assert report["per_category"][name]["accuracy"] == pytest.approx(recall, abs=5e-5)
        assert report["per_category"][name]["heldout"] == np.sum(truth == name)
    assert report["heldout_accuracy"] == pytest.approx(np.mean(heldout_truth == heldout_predicted), abs=5e-5)
    kept = placer.heldout_probabilities_
    assert report["log_loss"] == pytest.approx(log_loss(heldout_truth, kept, labels=NAMES), abs=5e-5)
    one_hot = heldout_truth[:, None] == np.asarray(NAMES)[None, :]  # the multi-class Brier score, written out
    assert report["brier"] == pytest.approx(np.mean(np.sum((kept - one_hot) ** 2, axis=1)), abs=5e-5)
    assert report["calibration_scores"][placer.calibration_]["log_loss"] == report["log_loss"]
    scores = report["calibration_scores"]
    assert (scores["matrix-scaling"]["log_loss"] < scores["none"]["log_loss"]) == (placer.calibration_ != "none")
    bins = {row["from"]: row for row in report["reliability"]}
    top = kept.max(axis=1)
    nine = top >= 0.9
    assert bins[0.9]["count"] == nine.sum()
    assert bins[0.9]["accuracy"] == pytest.approx(np.mean(heldout_truth[nine] == heldout_predicted[nine]), abs=5e-5)


def test_the_cross_validation_table_is_scikit_learns_cross_validation():
    """Logistic regression's row equals what scikit-learn's cross_val_predict gives on the same stratified folds."""
    values, truth = overlapping_categories(1000, seed=3)
    placer = CategoryPlacer(random_state=7).fit(values, truth)
    supervised = [row for row in placer.cv_results_ if row["classifier"] in SUPERVISED]
    partner = max(supervised, key=lambda result: (result["balanced_accuracy"], -result["log_loss"]))["classifier"]
    names = [row["classifier"] for row in placer.cv_results_]
    assert names == [*CLASSIFIERS, f"{partner}+label-spreading"]
    folds = StratifiedKFold(5, shuffle=True, random_state=7)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probabilities = cross_val_predict(model, values, truth, cv=folds, method="predict_proba")
    predicted = NAMES[probabilities.argmax(axis=1)]
    row = placer.cv_results_[0]
    assert row["accuracy"] == pytest.approx(np.mean(predicted == truth), abs=1e-9)
    assert row["log_loss"] == pytest.approx(log_loss(truth, probabilities, labels=NAMES), abs=1e-6)
    best = max(placer.cv_results_, key=lambda result: result["balanced_accuracy"])
    assert placer.classifier_ == best["classifier"]


def test_a_large_labelled_set_is_cross_validated_on_a_stratified_sample_and_refit_on_all():
    values, truth = overlapping_categories(1200, seed=6)
    placer = CategoryPlacer(classifiers=("logistic-regression",), max_cv_rows=400).fit(values, truth)
    sampled = truth[placer.heldout_rows_]
    assert len(sampled) == pytest.approx(400, abs=4)
    for name in NAMES:
        assert np.mean(sampled == name) == pytest.approx(np.mean(truth == name), abs=0.01)
    peer = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(values, truth)
    if placer.calibration_ == "none":
        np.testing.assert_allclose(placer.predict_proba(values), peer.predict_proba(values), atol=1e-6)
    else:
        assert np.mean(placer.predict(values) == peer.predict(values)) > 0.95


def test_few_labels_are_a_recorded_reason_not_an_error():
    rng = np.random.default_rng(7)
    fibres, tips, dust = rng.normal(0, 1, (50, 4)), rng.normal(6, 1, (50, 4)), rng.normal(-6, 1, (3, 4))
    labelled = np.vstack([fibres, tips, [[12.0] * 4], dust])
    categories = ["Fibres"] * 50 + ["Tips"] * 50 + ["Powder"] + ["Dust"] * 3
    placement = place_unlabelled(labelled, categories, np.array([[0.2] * 4, [5.8] * 4, [-6.1] * 4]))
    assert placement.categories == ["Fibres", "Tips", "Dust"]
    report = placement.report
    assert report["untested"] == "category Powder with a single labelled image: always trained on, never held out"
    # Powder is in every training fold and no test fold; Dust, with 3 rows, is held out in 3 of the 5 folds.
    assert report["folds"] == 5 and report["cv_rows"] == 103
    assert report["per_category"]["Powder"] == {
        "labelled": 1,
        "heldout": 0,
        "accuracy": None,
        "placed": 0,
        "doubtful": 0,
    }
    assert report["per_category"]["Dust"]["heldout"] == 3
    assert report["calibration"] == "none" and list(report["calibration_scores"]) == ["none"]
    assert sum(map(sum, report["confusion"]["matrix"])) == 103

    two_singletons = place_unlabelled(labelled[49:52], ["Fibres", "Tips", "Powder"], np.array([[0.2] * 4]))
    assert two_singletons.report["untested"].startswith("fewer than two categories have two labelled images")
    assert two_singletons.report["cv"] == [] and two_singletons.report["classifier"] == "logistic-regression"
    assert "confusion" not in two_singletons.report and two_singletons.categories == ["Fibres"]

    one = place_unlabelled(fibres, ["Fibres"] * 50, tips[:3])
    assert one.categories == ["Fibres"] * 3 and one.probabilities.tolist() == [1.0] * 3
    assert one.report["classifier"] is None and "one labelled category" in one.report["untested"]
    nothing = place_unlabelled(labelled, categories, np.zeros((0, 4)))
    assert nothing.categories == [] and nothing.report["untested"] == "every image is labelled: nothing to place"


def test_bad_requests_are_one_clear_error():
    values, truth = overlapping_categories(100, seed=8)
    with pytest.raises(ValueError, match="doubtful_below is a probability"):
        place_unlabelled(values, list(truth), values, doubtful_below=1.5)
    with pytest.raises(ValueError, match="classifiers must be some of"):
        CategoryPlacer(classifiers=("svm",)).fit(values, truth)
    with pytest.raises(ValueError, match="at least two categories"):
        CategoryPlacer().fit(values, ["Tips"] * 100)
    with pytest.raises(ValueError, match="100 labelled rows with 99 categories"):
        place_unlabelled(values, list(truth[:99]), values)


def test_the_multiclass_brier_score_equals_scikit_learns_where_it_has_one():
    import sklearn

    from semcurate.clustering.placement import multiclass_brier

    generator = np.random.default_rng(5)
    probabilities = generator.dirichlet(np.ones(4), size=300)
    truth = generator.integers(0, 4, size=300)
    labels = np.arange(4)
    ours = multiclass_brier(truth, probabilities, labels)
    # By hand on one row: p = (0.7, 0.2, 0.1, 0), truth class 1: 0.49 + 0.64 + 0.01 + 0 = 1.14.
    assert multiclass_brier(np.array([1]), np.array([[0.7, 0.2, 0.1, 0.0]]), labels) == pytest.approx(1.14)
    if tuple(int(part) for part in sklearn.__version__.split(".")[:2]) >= (1, 7):
        assert ours == pytest.approx(brier_score_loss(truth, probabilities, labels=labels), rel=1e-12)


def interleaved_moons(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two categories on interleaved half-moons: each is one chain of similar rows, but no straight line parts them."""
    from sklearn.datasets import make_moons

    values, truth = make_moons(n_rows, noise=0.06, random_state=seed)
    return values, NAMES[truth]


def test_label_spreading_follows_chains_of_unlabelled_rows_that_a_line_cannot():
    values, truth = interleaved_moons(1200, seed=0)
    hidden = hidden_labels(len(truth), seed=0)
    placement = place_unlabelled(values[~hidden], list(truth[~hidden]), values[hidden])
    right = np.array(placement.categories) == truth[hidden]
    # The peer: scikit-learn's logistic regression on the same labelled rows stops near 0.87 on moons.
    peer = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(values[~hidden], truth[~hidden])
    assert np.mean(peer.predict(values[hidden]) == truth[hidden]) < 0.9
    assert "label-spreading" in placement.report["classifier"] and right.mean() > 0.98
    # Its held-out estimate, from folds whose labels were hidden from the graph, promised what it delivered.
    assert placement.report["heldout_accuracy"] == pytest.approx(right.mean(), abs=0.03)


def test_the_spreading_row_of_the_table_is_scikit_learns_label_spreading_with_each_folds_labels_hidden():
    values, truth = interleaved_moons(600, seed=1)
    hidden = hidden_labels(len(truth), seed=1)
    placer = CategoryPlacer(classifiers=("label-spreading",), random_state=3)
    placer.fit(values[~hidden], truth[~hidden], unlabelled=values[hidden])
    assert placer.classifier_ == "label-spreading" and [row["classifier"] for row in placer.cv_results_] == [
        "label-spreading"
    ]
    # The same folds, written out with scikit-learn alone; a row no label reached goes to its nearest labelled row.
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.semi_supervised import LabelSpreading

    labelled, codes = values[~hidden], np.unique(truth[~hidden], return_inverse=True)[1]
    everything = np.vstack([labelled, values[hidden]])
    predicted = np.zeros(len(labelled), dtype=int)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=3).split(labelled, codes):
        targets = np.full(len(everything), -1)
        targets[train] = codes[train]
        model = LabelSpreading(kernel="knn", n_neighbors=7, max_iter=1000).fit(everything, targets)
        with np.errstate(invalid="ignore", divide="ignore"):  # rows no label reached are 0 / 0
            spread = model.predict_proba(labelled[test])
        predicted[test] = spread.argmax(axis=1)
        unreached = ~np.isfinite(spread).all(axis=1)
        if unreached.any():
            nearest = KNeighborsClassifier(n_neighbors=1).fit(labelled[train], codes[train])
            predicted[test[unreached]] = nearest.predict(labelled[test][unreached])
    assert placer.cv_results_[0]["accuracy"] == pytest.approx(np.mean(predicted == codes), abs=1e-12)


def test_label_spreading_can_build_its_graph_on_another_feature_set():
    """The supervised classifiers see rows that carry no category; the graph rows carry it."""
    values, truth = interleaved_moons(900, seed=2)
    noise = np.random.default_rng(2).normal(size=(len(truth), 3))
    hidden = hidden_labels(len(truth), seed=2)
    placement = place_unlabelled(
        noise[~hidden],
        list(truth[~hidden]),
        noise[hidden],
        graph_labelled=values[~hidden],
        graph_unlabelled=values[hidden],
    )
    assert placement.report["classifier"] == "label-spreading"
    assert np.mean(np.array(placement.categories) == truth[hidden]) > 0.98
    by_noise = {row["classifier"]: row["balanced_accuracy"] for row in placement.report["cv"]}
    assert max(by_noise[name] for name in SUPERVISED) < 0.65  # the supervised ones guess

    placer = CategoryPlacer(classifiers=("label-spreading",)).fit(
        noise[~hidden], truth[~hidden], unlabelled=noise[hidden], graph=values[~hidden], graph_unlabelled=values[hidden]
    )
    with pytest.raises(ValueError, match="give graph="):
        placer.predict_proba(noise[hidden])
    with pytest.raises(ValueError, match="graph rows for"):
        placer.predict_proba(noise[hidden], graph=values[hidden][:-1])
    with pytest.raises(ValueError, match="come together"):
        place_unlabelled(noise[~hidden], list(truth[~hidden]), noise[hidden], graph_labelled=values[~hidden])
    with pytest.raises(ValueError, match="same images"):
        CategoryPlacer().fit(noise[~hidden], truth[~hidden], graph=values[hidden])


def test_rows_that_no_label_reaches_take_their_nearest_labelled_rows_distribution():
    from sklearn.neighbors import KNeighborsClassifier

    from semcurate.clustering.placement import fit_spreading, spreading_probabilities

    generator = np.random.default_rng(4)
    labelled = np.vstack([generator.normal(0, 0.1, (20, 2)), generator.normal(50, 0.1, (20, 2))])
    codes = np.repeat([0, 1], 20)
    island = generator.normal(40, 0.1, (12, 2))  # 12 rows whose 7 nearest are all on the island, nearer code 1
    model = fit_spreading(labelled, codes, island)
    rows = np.vstack([labelled[:1], island])
    np.testing.assert_array_equal(model.reach(rows)[1], [False] + [True] * 12)
    probabilities, unreached = spreading_probabilities(model, rows, 3)
    np.testing.assert_array_equal(unreached, model.reach(rows)[1])
    nearest = KNeighborsClassifier(n_neighbors=1).fit(labelled, codes)
    np.testing.assert_array_equal(probabilities[1:].argmax(axis=1), nearest.predict(island))
    assert (probabilities[1:, 1] > 0.5).all() and (probabilities[:, 2] == 0).all()
    assert probabilities[0].argmax() == 0
    np.testing.assert_allclose(probabilities.sum(axis=1), 1)


def test_the_placement_reports_the_images_no_label_reaches():
    from semcurate.clustering import placement_summary

    generator = np.random.default_rng(5)
    labelled = np.vstack([generator.normal(0, 0.1, (20, 2)), generator.normal(50, 0.1, (20, 2))])
    names = ["Fibres"] * 20 + ["Tips"] * 20
    island = generator.normal(40, 0.1, (12, 2))
    placement = place_unlabelled(labelled, names, island, classifiers=("label-spreading",))
    assert placement.categories == ["Tips"] * 12
    assert placement.report["unreached"] == 12
    assert placement.report["unreached_placed_by"] == "their nearest labelled image"
    assert placement_summary(placement.report)["unreached"] == 12
    supervised = place_unlabelled(labelled, names, island, classifiers=("logistic-regression",))
    assert supervised.report["unreached"] == 0
