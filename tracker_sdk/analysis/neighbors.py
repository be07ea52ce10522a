"""Exact k nearest neighbours in the original vector space by blocked matrix products."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError

METRICS = ("euclidean", "cosine")


def _prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    if metric not in METRICS:
        raise InvalidArgumentError(f"metric must be one of {METRICS}; got {metric!r}")
    x = np.asarray(vectors, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)
    return x


def exact_knn(vectors, queries, k: int = 10, metric: str = "euclidean", *, exclude_self: bool = True,
              block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, distances), each (n_queries, k), of the k nearest rows of ``vectors``.

    ``queries`` are row indices into ``vectors``; with ``exclude_self`` a row is not its own neighbour.
    Distances are euclidean, or cosine distance (1 - cosine similarity).
    """
    x = _prepare(vectors, metric)
    queries = np.atleast_1d(np.asarray(queries, dtype=np.int64))
    n = x.shape[0]
    if queries.size and (queries.min() < 0 or queries.max() >= n):
        raise InvalidArgumentError(f"queries must be row indices in [0, {n}); got values from {queries.min()} to {queries.max()}")
    k_eff = min(k, n - 1 if exclude_self else n)
    if k_eff < 1:
        raise InvalidArgumentError(f"k must be at least 1 and below the number of rows ({n}); got {k}")
    sq = np.einsum("ij,ij->i", x, x)
    out_idx = np.empty((queries.size, k_eff), dtype=np.int64)
    out_dist = np.empty((queries.size, k_eff), dtype=np.float32)
    for start in range(0, queries.size, block):
        q = queries[start:start + block]
        gram = x[q] @ x.T
        if metric == "cosine":
            d = 1.0 - gram
        else:
            d = sq[q, None] - 2.0 * gram + sq[None, :]
            np.maximum(d, 0, out=d)
        if exclude_self:
            d[np.arange(q.size), q] = np.inf
        part = np.argpartition(d, k_eff - 1, axis=1)[:, :k_eff]
        pd = np.take_along_axis(d, part, axis=1)
        order = np.argsort(pd, axis=1, kind="stable")
        out_idx[start:start + q.size] = np.take_along_axis(part, order, axis=1)
        dist = np.take_along_axis(pd, order, axis=1)
        out_dist[start:start + q.size] = np.sqrt(dist) if metric == "euclidean" else dist
    return out_idx, out_dist
