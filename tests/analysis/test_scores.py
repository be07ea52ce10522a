"""Scores with known answers: flipped labels, injected outliers, alike and shifted splits."""

import numpy as np
import pytest

from tracker_sdk import InvalidArgumentError
from tracker_sdk.analysis import compute, knn_graph, label_disagreement, outlier_score, split_shift


def _clusters(seed, n=1500, d=24, n_clusters=6, spread=6.0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d)) * spread
    labels = rng.integers(0, n_clusters, n)
    return (centres[labels] + rng.standard_normal((n, d))).astype(np.float32), labels, rng


def test_flipped_labels_rank_at_the_top_of_label_disagreement():
    x, labels, rng = _clusters(1)
    noisy = labels.tolist()
    flipped = rng.choice(len(noisy), 25, replace=False)
    for i in flipped:
        noisy[i] = (noisy[i] + 1 + rng.integers(0, 5)) % 6
    result = compute(x, labels=[f"class {v}" for v in noisy], k=10)
    score = result.columns["label_disagreement"]
    top = np.argsort(-score, kind="stable")[:25]
    assert set(top) == set(flipped)
    assert np.all(score[flipped] >= 0.9)
    others = np.setdiff1d(np.arange(len(noisy)), flipped)
    assert np.mean(score[others]) < 0.03


def test_label_disagreement_skips_missing_labels():
    idx = np.array([[1, 2], [0, 2], [0, 1], [0, 1]])
    score = label_disagreement(idx, ["a", "a", None, "b"])
    assert score[0] == 0.0 and score[1] == 0.0  # the unlabelled neighbour is not counted
    assert np.isnan(score[2])
    assert score[3] == 1.0


@pytest.mark.parametrize("method", ["knn", "lof"])
def test_injected_outliers_score_highest(method):
    x, _, rng = _clusters(2)
    injected = rng.choice(len(x), 8, replace=False)
    x[injected] = rng.standard_normal((8, x.shape[1])).astype(np.float32) * 25
    score = compute(x, k=10, outlier=method).columns["outlier_score"]
    assert set(np.argsort(-score)[:8]) == set(injected)
    if method == "lof":
        assert np.median(score) == pytest.approx(1.0, abs=0.1)


def test_lof_does_not_flag_a_sparse_cluster():
    rng = np.random.default_rng(4)
    dense = rng.standard_normal((600, 8))
    sparse = rng.standard_normal((600, 8)) * 4 + 40
    lone = np.full((1, 8), 20.0)
    x = np.vstack([dense, sparse, lone]).astype(np.float32)
    idx, dist = knn_graph(x, 10)
    knn, lof = outlier_score(idx, dist, method="knn"), outlier_score(idx, dist, method="lof")
    assert np.argmax(lof) == 1200 and np.argmax(knn) == 1200
    # By distance alone the sparse cluster outranks the dense one; by LOF both look ordinary.
    assert np.median(knn[600:1200]) > 3 * np.median(knn[:600])
    assert abs(np.median(lof[600:1200]) - np.median(lof[:600])) < 0.1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_samples_of_one_distribution_compare_as_alike(seed):
    x, _, rng = _clusters(10 + seed, n=2000)
    splits = np.where(rng.random(2000) < 0.7, "train", "test").tolist()
    result = compute(x, splits=splits, k=10)
    assert abs(result.split.summary()) < 0.08
    assert abs(result.split.summary("test", "train")) < 0.08
    assert result.split.counts["train"] + result.split.counts["test"] == 2000


def test_shifted_samples_compare_as_different():
    x, _, rng = _clusters(20, n=2000)
    splits = np.where(rng.random(2000) < 0.5, "train", "test")
    x[splits == "test"] += 1.0  # a shift of one noise sd along every axis
    result = compute(x, splits=splits.tolist(), k=10)
    assert result.split.summary() > 0.5
    scores = result.columns["split_shift"]
    assert scores.shape == (2000,) and np.nanmax(scores) == 1.0


def test_split_pairs_with_three_values_and_missing_ones():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((400, 6))
    b = rng.standard_normal((400, 6))
    c = rng.standard_normal((400, 6)) + 6
    x = np.vstack([a, b, c]).astype(np.float32)
    splits = ["a"] * 400 + ["b"] * 399 + [None] + ["c"] * 400
    result = split_shift(knn_graph(x, 10)[0], splits)
    assert abs(result.summary("a", "b")) < 0.1
    assert result.summary("a", "c") > 0.9 and result.summary("c", "b") > 0.9
    assert np.isnan(result.scores[799])
    with pytest.raises(InvalidArgumentError, match="there are 3 pairs of splits"):
        result.summary()
    with pytest.raises(InvalidArgumentError, match="no split pair"):
        result.summary("a", "z")


def test_split_needs_two_values():
    idx = np.array([[1], [0]])
    with pytest.raises(InvalidArgumentError, match="at least two distinct values"):
        split_shift(idx, ["train", "train"])
    with pytest.raises(InvalidArgumentError, match="splits has 3 rows but the neighbour graph has 2"):
        split_shift(idx, ["a", "b", "c"])


def test_unknown_outlier_method_is_refused():
    with pytest.raises(InvalidArgumentError, match="outlier must be one of"):
        compute(np.zeros((4, 2)), outlier="iforest")
