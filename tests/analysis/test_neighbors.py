"""knn_graph: the blocked exact search against a brute-force answer, and the approximate path."""

import numpy as np
import pytest

from tracker_sdk import InvalidArgumentError
from tracker_sdk.analysis import exact_knn, knn_graph


def _brute(x, k, metric):
    x = x.astype(np.float64)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        d = 1.0 - x @ x.T
    else:
        d = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0))
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("n, block", [(301, 64), (257, 300), (700, 128)])
def test_exact_graph_matches_brute_force(metric, n, block):
    # Blocks smaller than n (with a ragged last one) exercise the block boundaries of the distance rows.
    x = np.random.default_rng(n).standard_normal((n, 12)).astype(np.float32)
    idx, dist = knn_graph(x, 7, metric, block=block)
    ref_idx, ref_dist = _brute(x, 7, metric)
    assert idx.shape == dist.shape == (n, 7)
    np.testing.assert_allclose(dist, ref_dist, atol=2e-5)
    assert (idx == ref_idx).mean() > 0.999  # only float ties may swap places
    assert not (idx == np.arange(n)[:, None]).any()
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_exact_graph_agrees_with_query_search():
    x = np.random.default_rng(3).standard_normal((500, 20)).astype(np.float32)
    idx, dist = knn_graph(x, 5, block=100)
    qidx, qdist = exact_knn(x, np.arange(500), 5)
    np.testing.assert_allclose(dist, qdist, atol=1e-4)
    assert (idx == qidx).mean() > 0.999


def test_k_is_capped_at_the_other_rows():
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    idx, dist = knn_graph(x, 10)
    assert idx.shape == (4, 3)
    assert idx[0].tolist() == [1, 2, 3]
    np.testing.assert_allclose(dist[0], [np.sqrt(8), np.sqrt(32), np.sqrt(72)], rtol=1e-6)


def test_bad_arguments_are_refused():
    x = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
        knn_graph(x, 0)
    with pytest.raises(InvalidArgumentError, match="method must be one of"):
        knn_graph(x, 2, method="fast")
    with pytest.raises(InvalidArgumentError, match="at least 2 rows"):
        knn_graph(x[:1], 2)
    x[3, 1] = np.nan
    with pytest.raises(InvalidArgumentError, match="row 3 and 0 other rows hold NaN"):
        knn_graph(x, 2)


def test_approximate_graph_finds_most_true_neighbours():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 16)) * 5
    x = (centres[rng.integers(0, 10, 1500)] + rng.standard_normal((1500, 16))).astype(np.float32)
    exact_idx, exact_dist = knn_graph(x, 10, method="exact")
    idx, dist = knn_graph(x, 10, method="approximate")
    assert idx.shape == (1500, 10) and not (idx == np.arange(1500)[:, None]).any()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, exact_idx)])
    assert recall > 0.9
    found = dist[:, 0] <= exact_dist[:, 0] + 1e-4  # distances are true euclidean ones, not squares
    assert found.mean() > 0.95


def test_exact_graph_is_accurate_far_from_the_origin():
    # Norms of about 1e4 and neighbour distances of about 1: float32 |x|^2 - 2xy + |y|^2 alone
    # would lose the distances; the graph centres the rows and recomputes the final distances.
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((400, 8)) + 1e4).astype(np.float32)
    idx, dist = knn_graph(x, 5, block=128)
    ref_idx, ref_dist = _brute(x, 5, "euclidean")
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-3)
    assert (idx == ref_idx).mean() > 0.99


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_prepared_exact_knn_answers_queries_like_brute_force(metric):
    # ExactKnn (the server's cached index) answers later queries from the vectors it prepared once.
    from tracker_sdk.analysis.neighbors import ExactKnn

    x = np.random.default_rng(11).standard_normal((300, 9)).astype(np.float32)
    knn = ExactKnn(x, metric)
    ref_idx, ref_dist = _brute(x, 6, metric)
    for rows in ([5], [0, 299, 17], np.arange(300)):
        idx, dist = knn.query(rows, 6, block=64)
        assert idx.shape == dist.shape == (len(rows), 6)
        assert (idx == ref_idx[rows]).mean() > 0.99  # only float ties may swap places
        np.testing.assert_allclose(dist, ref_dist[rows], atol=2e-5)
    with pytest.raises(InvalidArgumentError, match=r"queries must be row indices in \[0, 300\)"):
        knn.query([300], 6)
    with pytest.raises(InvalidArgumentError, match="k must be at least 1"):
        knn.query([0], 0)
    with pytest.raises(InvalidArgumentError, match="vectors must be 2D"):
        ExactKnn(np.zeros(5, dtype=np.float32), metric)


@pytest.mark.parametrize("metric, d", [("euclidean", 2), ("euclidean", 3), ("cosine", 3)])
def test_few_dimensions_take_the_kd_tree_and_equal_a_float64_brute_force(metric, d):
    x = np.random.default_rng(d).normal(size=(1500, d)).astype(np.float32)
    idx, dist = knn_graph(x, 7, metric)
    y = x.astype(np.float64)
    if metric == "cosine":
        y = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float64)
    full = np.sqrt(((y[:, None, :] - y[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(full, np.inf)
    ref_idx = np.argsort(full, axis=1, kind="stable")[:, :7]
    ref_dist = np.take_along_axis(full, ref_idx, axis=1)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist ** 2 / 2 if metric == "cosine" else ref_dist, rtol=1e-5, atol=1e-6)
    assert idx.dtype == np.int64 and dist.dtype == np.float32 and idx.shape == (1500, 7)


def test_kd_tree_graph_never_lists_a_row_as_its_own_neighbour_among_duplicates():
    x = np.zeros((6, 2), dtype=np.float32)  # all rows equal: any other row is a nearest one
    idx, dist = knn_graph(x, 3)
    assert not (idx == np.arange(6)[:, None]).any() and (dist == 0).all()
