"""PCA agrees with scikit-learn's full SVD; the quality scores agree with their definitions."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness as sk_trustworthiness

from reduce_helpers import clusters
from tracker_sdk import InvalidArgumentError
from tracker_sdk.reduce import PCAReducer, knn_label_scores, projection_quality, trustworthiness


@pytest.mark.parametrize("shape", [(400, 30), (20, 90)])  # covariance route and Gram route
def test_pca_matches_full_svd(shape):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=shape) @ rng.normal(size=(shape[1], shape[1]))).astype(np.float32)
    ours, theirs = PCAReducer(n_components=3).fit(X), PCA(n_components=3, svd_solver="full").fit(X)
    assert np.abs(ours.explained_variance_ratio_ - theirs.explained_variance_ratio_).max() < 1e-4
    assert np.allclose(ours.components_, theirs.components_, atol=1e-3)  # same signs too
    scale = np.abs(theirs.transform(X)).max()
    assert np.abs(ours.transform(X[:10] * 1.01) - theirs.transform(X[:10] * 1.01)).max() < 1e-4 * scale


def test_pca_rejects_more_components_than_rank():
    with pytest.raises(InvalidArgumentError, match=r"at most min\(n_samples, n_features\) = 4; got 5"):
        PCAReducer(n_components=5).fit(np.random.default_rng(0).normal(size=(10, 4)))


def test_trustworthiness_matches_scikit_learn():
    X, _ = clusters(n_per=60, d=12)
    Y = X[:, :2] + np.random.default_rng(1).normal(size=(len(X), 2)).astype(np.float32)
    for metric in ("euclidean", "cosine"):
        assert trustworthiness(X, Y, metric=metric) == pytest.approx(
            sk_trustworthiness(X, Y, n_neighbors=10, metric=metric), abs=1e-6)


def test_label_scores_and_sampling():
    X, labels = clusters(n_per=50)
    Y = PCAReducer(n_components=2).fit_transform(X)
    scores = knn_label_scores(Y, labels)
    assert scores["agreement"] > 0.99 and scores["accuracy"] == 1.0
    shuffled = list(np.random.default_rng(0).permutation(labels))
    assert knn_label_scores(Y, shuffled)["agreement"] < 0.5
    q = projection_quality(X, Y, labels, max_samples=120)
    assert q["sample"] == 120 and 0.9 < q["trustworthiness"] <= 1.0 and q["knn_label_accuracy"] > 0.95
    assert "knn_label_agreement" not in projection_quality(X, Y, None)


@pytest.mark.parametrize("offset", [0.0, 1000.0])  # centred data, and data far from zero
def test_pca_on_a_mapped_blob_matches_the_in_memory_fit(tmp_path, offset):
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(10_000, 40)) @ rng.normal(size=(40, 40)) + offset).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    blocked, whole = PCAReducer().fit(mapped), PCAReducer().fit(X)
    theirs = PCA(n_components=3, svd_solver="full").fit(X.astype(np.float64))
    assert np.abs(blocked.explained_variance_ratio_ - theirs.explained_variance_ratio_).max() < 1e-6
    assert np.abs(blocked.explained_variance_ratio_ - whole.explained_variance_ratio_).max() < 1e-6
    assert np.allclose(blocked.components_, whole.components_, atol=1e-4)
    scale = np.abs(whole.embedding_).max()
    assert np.abs(blocked.embedding_ - whole.embedding_).max() < 1e-4 * scale
    # transform of the training array projects it again (cheaper than fingerprinting it): the same coordinates
    assert np.abs(blocked.transform(mapped) - blocked.embedding_).max() < 1e-5 * scale
    assert np.array_equal(whole.transform(X), whole.embedding_)


def test_pca_on_a_mapped_blob_names_the_first_non_finite_value(tmp_path):
    X = np.random.default_rng(0).normal(size=(9000, 8)).astype(np.float32)
    X[8500, 5] = np.nan
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(InvalidArgumentError, match=r"vectors must be finite; got nan at row 8500, column 5"):
        PCAReducer().fit(np.load(tmp_path / "x.npy", mmap_mode="r"))


def test_quality_of_a_mapped_blob_is_scored_on_a_stated_sample(tmp_path):
    X, labels = clusters(n_per=1000, d=16)  # more rows than the sample
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    coords = PCAReducer().fit_transform(mapped)
    q = projection_quality(mapped, coords, labels)
    assert q["sample"] == 2000 < len(X)
    assert q == projection_quality(X, coords, labels)  # the same seeded rows, mapped or not
    assert 0.5 < q["trustworthiness"] <= 1.0 and q["knn_label_accuracy"] > 0.9
