"""k nearest neighbours in the original vector space.

``exact_knn`` answers a few queries (``ExactKnn`` keeps the prepared vectors for later
queries: the server's path); ``knn_graph`` finds the k nearest neighbours of every row: exact
from a KD-tree for up to 3 features (layouts) at any size, exact by blocked matrix products
while ``n * n * d`` stays within about 100k x 100k x 1k, approximate with pynndescent beyond
(or when asked).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InvalidArgumentError, MissingDependencyError

log = logging.getLogger("tracker_sdk")

METRICS = ("euclidean", "cosine")
METHODS = ("auto", "exact", "approximate")
# n * n * d for 100k rows of 1k features: past this the exact graph takes too long on a CPU.
EXACT_LIMIT = 100_000 * 100_000 * 1_000
#: up to this many features the exact graph comes from a KD-tree (any n_samples): 2-D and 3-D layouts
TREE_MAX_DIM = 3


def _prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    if metric not in METRICS:
        raise InvalidArgumentError(f"metric must be one of {METRICS}; got {metric!r}")
    x = np.asarray(vectors, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)
    return x


class ExactKnn:
    """Vectors prepared once (normalised for cosine, squared norms kept) for many exact queries.

    The server keeps one per embedding and metric, so each query costs one matrix product.

    Parameters
    ----------
    vectors : array-like, shape (n_samples, n_features)
    metric : {"euclidean", "cosine"}
    """

    def __init__(self, vectors, metric: str = "euclidean"):
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2:
            raise InvalidArgumentError(f"vectors must be 2D (n_samples, n_features); got shape {x.shape}")
        x = _prepare(x, metric)
        self.metric = metric
        self.x = x
        self.sq = np.einsum("ij,ij->i", x, x)

    @property
    def n_samples(self) -> int:
        return self.x.shape[0]

    def query(self, queries, k: int = 10, *, exclude_self: bool = True,
              block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, distances), each (n_queries, k), of the k nearest rows to each query row.

        ``queries`` are row indices; with ``exclude_self`` a row is not its own neighbour.
        Distances are euclidean, or cosine distance (1 - cosine similarity).
        """
        x, sq, metric = self.x, self.sq, self.metric
        queries = np.atleast_1d(np.asarray(queries, dtype=np.int64))
        n = x.shape[0]
        if queries.size and (queries.min() < 0 or queries.max() >= n):
            raise InvalidArgumentError(f"queries must be row indices in [0, {n}); got values from {queries.min()} "
                                       f"to {queries.max()}")
        k_eff = min(k, n - 1 if exclude_self else n)
        if k_eff < 1:
            raise InvalidArgumentError(f"k must be at least 1 and below the number of rows ({n}); got {k}")
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


def exact_knn(vectors, queries, k: int = 10, metric: str = "euclidean", *, exclude_self: bool = True,
              block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, distances), each (n_queries, k), of the k nearest rows of ``vectors``.

    ``queries`` are row indices into ``vectors``; with ``exclude_self`` a row is not its own neighbour.
    Distances are euclidean, or cosine distance (1 - cosine similarity). Many queries over
    the same vectors at different times: keep an :class:`ExactKnn`.
    """
    return ExactKnn(vectors, metric).query(queries, k, exclude_self=exclude_self, block=block)


def knn_graph(vectors, k: int = 10, metric: str = "euclidean", *, method: str = "auto", block: int = 2048,
              random_state: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, distances), each (n_samples, k), of every row's k nearest other rows.

    Parameters
    ----------
    vectors : array-like, shape (n_samples, n_features)
    k : int
        Neighbours per row (capped at ``n_samples - 1``).
    metric : {"euclidean", "cosine"}
    method : {"auto", "exact", "approximate"}
        ``auto`` is exact while ``n_samples**2 * n_features`` is at most about 100k x 100k x 1k,
        and pynndescent beyond. Up to 3 features (a 2-D or 3-D layout) ``auto`` and ``exact``
        use an exact KD-tree at any size.
    random_state : int or None
        Seed of the approximate search.
    """
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS}; got {method!r}")
    x = _prepare(vectors, metric)
    if x.ndim != 2:
        raise InvalidArgumentError(f"vectors must be 2D (n_samples, n_features); got shape {x.shape}")
    n, d = x.shape
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise InvalidArgumentError(f"k must be a positive integer; got {k!r}")
    if n < 2:
        raise InvalidArgumentError(f"vectors needs at least 2 rows to have neighbours; got {n}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InvalidArgumentError(f"vectors must be finite to find neighbours; row {int(np.argmax(bad))} "
                                   f"and {int(bad.sum()) - 1} other rows hold NaN or Inf")
    k = min(int(k), n - 1)
    if d <= TREE_MAX_DIM and method != "approximate":  # 2-D/3-D layouts: exact and fast at any n
        graph = _tree_graph(x, k, metric)
        if graph is not None:
            return graph
    if method == "approximate" or (method == "auto" and n * n * d > EXACT_LIMIT):
        return _approximate_graph(x, k, metric, random_state)
    return _exact_graph(x, k, metric, block)


def _tree_graph(x: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The exact graph from a KD-tree (scipy's cKDTree), for few dimensions; None without scipy.

    For cosine the rows are already unit length, where euclidean order is cosine order and
    ``1 - cos = |u - v|^2 / 2``.
    """
    try:
        from scipy.spatial import cKDTree
    except ImportError:  # scipy comes with the reduce extra; the blocked products need only numpy
        return None
    y = np.asarray(x, dtype=np.float64)
    dist, idx = cKDTree(y).query(y, k=k + 1)
    idx = np.asarray(idx, dtype=np.int64).reshape(y.shape[0], k + 1)
    dist = np.asarray(dist).reshape(y.shape[0], k + 1)
    own = idx == np.arange(y.shape[0])[:, None]
    # drop the row itself, or, where duplicates hid it beyond k + 1, the farthest candidate
    keep = ~own
    keep[~own.any(axis=1), -1] = False
    idx, dist = idx[keep].reshape(-1, k), dist[keep].reshape(-1, k)
    if metric == "cosine":
        dist = dist * dist / 2.0
    return idx, dist.astype(np.float32)


#: float32 entries of one block of distances (16 MiB, small enough for the allocator to reuse
#: rather than map fresh pages every block): the rows per block of the exact graph
BLOCK_ENTRIES = 1 << 22


def block_rows(n: int, block: int = 2048) -> int:
    """Rows per block of full distance rows: at most ``block``, within ``BLOCK_ENTRIES`` entries."""
    return max(1, min(int(block), BLOCK_ENTRIES // max(int(n), 1)))


def centred(x: np.ndarray) -> np.ndarray:
    """float32 rows minus their float64 mean: distances do not change, float32 cancellation shrinks."""
    return x - x.mean(axis=0, dtype=np.float64).astype(np.float32)


def distance_factors(x: np.ndarray, metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)`` with ``left[rows] @ right`` the rows' distances to every row, in one product.

    ``[x, |x|^2, 1] . [-2y, 1, |y|^2] = |x - y|^2`` (squared euclidean) and ``[x, 1] . [-y, 1] = 1 - cos``
    for unit rows; ``right`` is stored transposed and contiguous, the layout BLAS multiplies fastest.
    """
    n = x.shape[0]
    ones = np.ones((n, 1), dtype=np.float32)
    if metric == "cosine":
        return np.hstack([x, ones]), np.ascontiguousarray(np.hstack([-x, ones]).T)
    sq = np.einsum("ij,ij->i", x, x)[:, None]
    return np.hstack([x, sq, ones]), np.ascontiguousarray(np.hstack([-2.0 * x, ones, sq]).T)


def smallest(d: np.ndarray, k: int, kth: np.ndarray | None = None) -> np.ndarray:
    """Columns of each row's k smallest entries of ``d`` (ties to the lower column), in column order.

    ``kth`` is each row's k-th smallest value when already known (from sorted rows). One
    comparison and a flat scan find them: every row holds at least k entries up to its k-th
    smallest, exactly k unless values tie, and only tied rows need a sort.
    """
    rows, n = d.shape
    if kth is None:
        kth = np.partition(d, k - 1, axis=1)[:, k - 1]
    flat = np.flatnonzero(d <= kth[:, None])
    if flat.size == rows * k:
        return (flat % n).reshape(rows, k)
    r, c = np.divmod(flat, n)
    order = np.lexsort((c, d.ravel()[flat], r))
    r, c = r[order], c[order]
    rank = np.arange(r.size) - np.searchsorted(r, r)
    keep = rank < k
    return np.sort(c[keep].reshape(rows, k), axis=1)


def neighbor_distances(x: np.ndarray, idx: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``(idx, dist)`` with each row's neighbours ordered by distance (stable: ties keep their order).

    Euclidean distances are recomputed from differences, as the one-product form loses digits
    to cancellation; cosine distances are ``1 - u . v`` of the unit rows.
    """
    dist = np.empty(idx.shape, dtype=np.float32)
    block = max(1, (1 << 22) // max(idx.shape[1] * x.shape[1], 1))  # differences of 16 MiB at a time
    for start in range(0, x.shape[0], block):
        rows = slice(start, start + block)
        if metric == "cosine":
            dist[rows] = 1.0 - np.einsum("rd,rkd->rk", x[rows], x[idx[rows]])
        else:
            diff = x[rows, None, :] - x[idx[rows]]
            dist[rows] = np.sqrt(np.einsum("rkd,rkd->rk", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(dist, order, axis=1)


def _exact_graph(x: np.ndarray, k: int, metric: str, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Full distance rows, a block of rows at a time (one BLAS product each), and their k smallest.

    Euclidean rows are centred first (:func:`centred`). The product for a block costs about as much as selecting from it, so products are not
    halved by symmetry: merging the other half's candidates cost more than the product saved.
    """
    n = x.shape[0]
    if metric == "euclidean":
        x = centred(x)
    left, right = distance_factors(x, metric)
    best_i = np.empty((n, k), dtype=np.int64)
    step = block_rows(n, block)
    for start in range(0, n, step):
        stop = min(start + step, n)
        d = left[start:stop] @ right
        d[np.arange(stop - start), np.arange(start, stop)] = np.inf
        best_i[start:stop] = smallest(d, k)
    return neighbor_distances(x, best_i, metric)


def _approximate_graph(x: np.ndarray, k: int, metric: str, random_state) -> tuple[np.ndarray, np.ndarray]:
    try:
        from pynndescent import NNDescent
    except ImportError:
        raise MissingDependencyError("pynndescent", "reduce", "approximate nearest neighbours") from None
    log.info("tracker_sdk: approximate %d-NN graph of %d x %d vectors with pynndescent", k, *x.shape)
    # Ask for one more: the graph lists each row as its own nearest neighbour.
    index = NNDescent(x, metric=metric, n_neighbors=k + 1, random_state=random_state, low_memory=True)
    idx, dist = index.neighbor_graph
    idx = np.asarray(idx, dtype=np.int64)
    dist = np.asarray(dist, dtype=np.float32)
    # Move each row's own entry (wherever a tie put it) behind the others, keeping their order.
    is_self = idx == np.arange(x.shape[0])[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(dist, order, axis=1)
