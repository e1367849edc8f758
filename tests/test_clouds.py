"""The stopping rule's test clouds have the shapes they are named for (scipy's moments, not the generator's)."""

import numpy as np
import pytest
from scipy.stats import kurtosis, skew
from sklearn.metrics import silhouette_score

from semcurate.datasets import make_equidistant_groups, make_unimodal_cloud


def test_each_unimodal_shape_has_its_moments():
    log_normal = make_unimodal_cloud("log-normal", 4000, 4, random_state=0)
    assert log_normal.min() > 0 and skew(log_normal, axis=None) > 1.0  # exp(N(0, 0.5²)): skewness 1.75
    assert kurtosis(make_unimodal_cloud("student-t", 4000, 4, random_state=0), axis=None) > 3.0  # Gaussian: 0
    uniform = make_unimodal_cloud("uniform", 4000, 4, random_state=0)
    assert 0 <= uniform.min() and uniform.max() <= 1 and abs(kurtosis(uniform, axis=None) + 1.2) < 0.1
    spreads = make_unimodal_cloud("gaussian", 4000, 6, random_state=0).std(axis=0)
    assert spreads.min() > 0.25 and spreads.max() < 3.2 and spreads.max() / spreads.min() > 1.5
    correlations = np.corrcoef(make_unimodal_cloud("correlated", 4000, 6, random_state=0), rowvar=False)
    assert np.abs(correlations[np.triu_indices(6, 1)]).max() > 0.3


def test_an_unknown_shape_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown shape 'bimodal'"):
        make_unimodal_cloud("bimodal", 10, 2, random_state=0)


def test_the_four_groups_are_equidistant_and_as_far_apart_as_asked():
    values, groups = make_equidistant_groups(6.0, 500, random_state=1)
    centres = np.array([values[groups == group].mean(axis=0) for group in range(4)])
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(4, 1)]
    assert np.allclose(distances, 6.0, atol=0.25)
    assert np.allclose([values[groups == group].std(axis=0) for group in range(4)], 1.0, atol=0.1)
    assert silhouette_score(values, groups) > 0.5
