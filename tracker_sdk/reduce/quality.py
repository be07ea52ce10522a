"""How faithful a projection is: trustworthiness and k-NN label agreement on a sample.

Both are computed on at most ``max_samples`` rows (2,000 by default) drawn with a fixed
seed, so the score of any projection costs a fraction of a second, is reproducible, and
the record states the sample size (``quality["sample"]``). Only the sampled rows of a
memory-mapped vectors blob are read (``_blocks.take_rows``).
"""

from __future__ import annotations

import numpy as np

from ..analysis.neighbors import exact_knn, knn_graph
from ..errors import InvalidArgumentError
from ._blocks import take_rows

MAX_SAMPLES = 2000
K = 10
#: up to this many points the projected neighbours come from blocked products (numpy only: no
#: KD-tree library is imported, which would cost more memory than the whole score)
_SMALL = 4096


def sample_rows(n: int, max_samples: int = MAX_SAMPLES, seed: int = 0) -> np.ndarray:
    if n <= max_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))


def projected_knn(coords: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of each point's k nearest neighbours in a 2-D/3-D projection (self excluded)."""
    if len(coords) <= _SMALL:
        return exact_knn(coords, np.arange(len(coords)), k, block=512)[0]
    return knn_graph(coords, k)[0]


def _sq_distances(x: np.ndarray, rows: np.ndarray, metric: str) -> np.ndarray:
    q = x[rows]
    if metric == "cosine":
        return 1.0 - q @ x.T
    d = np.einsum("ij,ij->i", q, q)[:, None] - 2.0 * (q @ x.T) + np.einsum("ij,ij->i", x, x)[None, :]
    return np.maximum(d, 0, out=d)


def trustworthiness(vectors, coords, k: int = K, metric: str = "euclidean", *, block: int = 512,
                    neighbours: np.ndarray | None = None) -> float:
    """Trustworthiness (Venna & Kaski) of ``coords`` (n, c) as a picture of ``vectors`` (n, d).

    1.0 means every k nearest neighbour in the projection is also among the k nearest in the
    original space; points are ranked by distance in the original space (1-based, self excluded).
    ``neighbours``: ``projected_knn(coords, k)`` when the caller already has it.
    """
    x = np.asarray(vectors, dtype=np.float32)
    y = np.asarray(coords, dtype=np.float32)
    n = x.shape[0]
    if y.shape[0] != n:
        raise InvalidArgumentError(f"coords has {y.shape[0]} rows but vectors has {n}")
    if not 1 <= k < n / 2:
        raise InvalidArgumentError(f"k must be at least 1 and below n_samples / 2 = {n / 2}; got {k}")
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    nbrs = projected_knn(y, k) if neighbours is None else neighbours
    penalty = 0.0
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        d = _sq_distances(x, rows, metric)
        nd = np.take_along_axis(d, nbrs[rows], axis=1)
        # rank in the original space = number of points strictly closer (self, at -1, is the +1
        # of a 1-based rank): k comparisons per distance, cheaper than sorting each row
        d[np.arange(rows.size), rows] = -1.0
        ranks = np.zeros(nd.shape, dtype=np.int64)
        for j in range(nd.shape[1]):
            ranks[:, j] = np.count_nonzero(d < nd[:, j, None], axis=1)
        penalty += np.maximum(ranks - k, 0).sum()
    return float(1.0 - 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)) * penalty)


def knn_label_scores(coords, labels, k: int = K, *, neighbours: np.ndarray | None = None) -> dict:
    """``agreement``: mean share of each point's k projected neighbours with its label;
    ``accuracy``: how often the majority label of the k neighbours is the point's own."""
    y = np.asarray(coords, dtype=np.float32)
    codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)[1].reshape(-1)
    nbrs = projected_knn(y, k) if neighbours is None else neighbours
    same = codes[nbrs] == codes[:, None]
    votes = np.zeros((y.shape[0], codes.max() + 1), dtype=np.int32)
    np.add.at(votes, (np.repeat(np.arange(y.shape[0]), nbrs.shape[1]), codes[nbrs].reshape(-1)), 1)
    return {"agreement": float(same.mean()), "accuracy": float((votes.argmax(axis=1) == codes).mean())}


def projection_quality(vectors, coords, labels=None, *, metric: str = "euclidean", k: int = K,
                       max_samples: int = MAX_SAMPLES, seed: int = 0) -> dict:
    """The ``quality`` dict stored with a reduction record (scores rounded to 4 digits)."""
    n = len(coords)
    rows = sample_rows(n, max_samples, seed)
    quality: dict = {"k": k, "sample": int(rows.size)}
    if rows.size < 2 * k + 2:
        return quality  # too few points for a meaningful score
    x = np.asarray(take_rows(vectors, rows) if rows.size < n else vectors, dtype=np.float32)
    y = np.asarray(coords)[rows]
    nbrs = projected_knn(np.asarray(y, dtype=np.float32), k)  # one neighbour search for both scores
    quality["trustworthiness"] = round(trustworthiness(x, y, k=k, metric=metric, neighbours=nbrs), 4)
    if labels is not None:
        scores = knn_label_scores(y, [labels[i] for i in rows], k=k, neighbours=nbrs)
        quality["knn_label_agreement"] = round(scores["agreement"], 4)
        quality["knn_label_accuracy"] = round(scores["accuracy"], 4)
    return quality
