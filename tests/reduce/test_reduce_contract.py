"""The contract every reducer honours (one shared suite; a new reducer adds a FAST entry)."""

import numpy as np
import pytest

from reduce_helpers import FAST, clusters
from tracker_sdk import InvalidArgumentError, MissingDependencyError, NotFittedError
from tracker_sdk.reduce import Reducer, available_reducers, get_reducer


@pytest.fixture(params=sorted(FAST))
def name(request):
    return request.param


@pytest.fixture(scope="module")
def data():
    return clusters(n_per=30, k=4, d=60)


def make(name, **params):
    return get_reducer(name, **{**FAST[name], **params})


def test_every_registered_reducer_is_in_the_suite():
    assert sorted(FAST) == available_reducers()


def test_fit_returns_self_and_shapes(name, data):
    X, _ = data
    reducer = make(name, n_components=2)
    assert reducer.fit(X) is reducer
    assert isinstance(reducer, Reducer) and reducer.is_fitted
    assert reducer.embedding_.shape == (len(X), 2) and reducer.embedding_.dtype == np.float32
    new = reducer.transform(X[:7] + 0.05)
    assert new.shape == (7, 2) and np.isfinite(new).all()
    # the training array itself gets its fitted coordinates back, not a re-optimisation
    assert np.array_equal(reducer.transform(X), reducer.embedding_)


def test_three_components(name, data):
    X, _ = data
    assert make(name, n_components=3).fit_transform(X).shape == (len(X), 3)


def test_params_round_trip(name):
    reducer = make(name, n_components=3)
    params = reducer.get_params()
    assert params["n_components"] == 3 and "random_state" in params and "metric" in params
    assert get_reducer(name, **params).get_params() == params
    assert reducer.set_params(n_components=2) is reducer and reducer.get_params()["n_components"] == 2


def test_not_fitted_error_before_fit(name, data):
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        make(name).transform(data[0])


def test_1d_input_rejected(name):
    with pytest.raises(InvalidArgumentError, match=r"must be 2D \(n_samples, n_features\); got shape \(128,\)"):
        make(name).fit(np.zeros(128, dtype=np.float32))


def test_transform_checks_features(name, data):
    reducer = make(name).fit(data[0])
    with pytest.raises(InvalidArgumentError, match="has 5 features but this .* was fitted on 60"):
        reducer.transform(np.zeros((3, 5)))


def test_seeded_results_repeat(name, data):
    X, _ = data
    assert np.allclose(make(name, random_state=1).fit_transform(X), make(name, random_state=1).fit_transform(X))


def test_cosine_metric(name, data):
    X, labels = data
    coords = make(name, metric="cosine").fit_transform(X)
    assert coords.shape == (len(X), 2 if name != "pca" else 3) and np.isfinite(coords).all()


def test_bad_parameters_are_named(name):
    with pytest.raises(InvalidArgumentError, match="has no parameter.*'colour'.*valid parameters"):
        get_reducer(name, colour="red")
    with pytest.raises(InvalidArgumentError, match="metric must be one of .*got 'manhattan'"):
        get_reducer(name, metric="manhattan")


def test_unknown_name_lists_available():
    with pytest.raises(InvalidArgumentError, match="unknown reducer 'isomap'; available: pacmap, pca, tsne, umap"):
        get_reducer("isomap")


def test_nonlinear_n_components_is_2_or_3():
    with pytest.raises(InvalidArgumentError, match="umap n_components must be 2 or 3; got 5"):
        get_reducer("umap", n_components=5)


def test_missing_library_names_the_extra(monkeypatch, data):
    monkeypatch.setitem(__import__("sys").modules, "umap", None)  # as if umap-learn were not installed
    with pytest.raises(MissingDependencyError, match=r"umap-learn.*pip install 'tracker_sdk\[reduce\]'"):
        get_reducer("umap").fit(data[0])


def test_pre_pca_reduces_wide_vectors(data):
    X, _ = data
    reducer = make("pacmap", pca_components=10).fit(X)
    assert reducer.pre_pca_.components_.shape == (10, 60)
    assert make("pacmap", pca_components=None).fit(X).pre_pca_ is None
