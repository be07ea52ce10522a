"""How faithful a projection is: trustworthiness and k-NN label agreement on a sample.

Both are computed on at most ``max_samples`` rows (5,000 by default) drawn with a fixed
seed, so the score of a 70k-point projection costs well under a second and is reproducible.
"""

from __future__ import annotations

import numpy as np

from ..analysis.neighbors import knn_graph
from ..errors import InvalidArgumentError

MAX_SAMPLES = 5000
K = 10


def sample_rows(n: int, max_samples: int = MAX_SAMPLES, seed: int = 0) -> np.ndarray:
    if n <= max_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))


def projected_knn(coords: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of each point's k nearest neighbours in a 2-D/3-D projection (self excluded)."""
    return knn_graph(coords, k)[0]


def _sq_distances(x: np.ndarray, rows: np.ndarray, metric: str) -> np.ndarray:
    q = x[rows]
    if metric == "cosine":
        return 1.0 - q @ x.T
    d = np.einsum("ij,ij->i", q, q)[:, None] - 2.0 * (q @ x.T) + np.einsum("ij,ij->i", x, x)[None, :]
    return np.maximum(d, 0, out=d)


def trustworthiness(vectors, coords, k: int = K, metric: str = "euclidean", *, block: int = 512) -> float:
    """Trustworthiness (Venna & Kaski) of ``coords`` (n, c) as a picture of ``vectors`` (n, d).

    1.0 means every k nearest neighbour in the projection is also among the k nearest in the
    original space; points are ranked by distance in the original space (1-based, self excluded).
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
    nbrs = projected_knn(y, k)
    penalty = 0.0
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        d = _sq_distances(x, rows, metric)
        nd = np.take_along_axis(d, nbrs[rows], axis=1).astype(np.float64)
        # rank in the original space = number of points strictly closer (self, at -inf, is the
        # +1 of a 1-based rank). One sorted, row-offset array answers all rows in one searchsorted.
        d[np.arange(rows.size), rows] = -1.0
        sorted_d = np.sort(d, axis=1).astype(np.float64)
        offset = (float(sorted_d[:, -1].max()) + 2.0) * np.arange(rows.size)[:, None]
        ranks = np.searchsorted((sorted_d + offset).reshape(-1), (nd + offset).reshape(-1), side="left")
        ranks = ranks.reshape(nd.shape) - np.arange(rows.size)[:, None] * n
        penalty += np.maximum(ranks - k, 0).sum()
    return float(1.0 - 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)) * penalty)


def knn_label_scores(coords, labels, k: int = K) -> dict:
    """``agreement``: mean share of each point's k projected neighbours with its label;
    ``accuracy``: how often the majority label of the k neighbours is the point's own."""
    y = np.asarray(coords, dtype=np.float32)
    codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)[1].reshape(-1)
    nbrs = projected_knn(y, k)
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
    x = np.asarray(vectors[rows] if rows.size < n else vectors, dtype=np.float32)
    y = np.asarray(coords)[rows]
    quality["trustworthiness"] = round(trustworthiness(x, y, k=k, metric=metric), 4)
    if labels is not None:
        scores = knn_label_scores(y, [labels[i] for i in rows], k=k)
        quality["knn_label_agreement"] = round(scores["agreement"], 4)
        quality["knn_label_accuracy"] = round(scores["accuracy"], 4)
    return quality
