"""Per-point scores computed from a k-nearest-neighbour graph: outliers, label disagreement, split shift.

Every function takes the graph ``(indices, distances)`` of shape (n_samples, k) that
:func:`tracker_sdk.analysis.neighbors.knn_graph` returns, so one graph serves all scores.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError

OUTLIER_METHODS = ("knn", "lof")


def _check_graph(indices, distances=None) -> tuple[np.ndarray, np.ndarray | None]:
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[1] < 1:
        raise InvalidArgumentError(f"indices must be 2D (n_samples, k) with k >= 1; got shape {indices.shape}")
    if distances is not None:
        distances = np.asarray(distances, dtype=np.float64)
        if distances.shape != indices.shape:
            raise InvalidArgumentError(f"distances has shape {distances.shape} but indices has {indices.shape}")
    return indices, distances


def _check_column(values, n: int, argument: str) -> list:
    values = list(values)
    if len(values) != n:
        raise InvalidArgumentError(f"{argument} has {len(values)} rows but the neighbour graph has {n}")
    return values


def outlier_score(indices, distances, *, method: str = "knn") -> np.ndarray:
    """How far each point lies from its neighbours, shape (n_samples,); higher is more isolated.

    ``knn``: the mean distance to the k nearest neighbours (in the units of the vectors).
    ``lof``: the local outlier factor, that distance relative to the neighbours' own density, so a
    point of a sparse cluster is not flagged only for being in a sparse cluster (about 1 inside
    a cluster, clearly above 1 for an outlier).
    """
    indices, distances = _check_graph(indices, distances)
    if method not in OUTLIER_METHODS:
        raise InvalidArgumentError(f"method must be one of {OUTLIER_METHODS}; got {method!r}")
    if method == "knn":
        return distances.mean(axis=1)
    k_distance = distances[:, -1]
    reach = np.maximum(distances, k_distance[indices])
    lrd = 1.0 / np.maximum(reach.mean(axis=1), 1e-12)
    return lrd[indices].mean(axis=1) / lrd


def label_disagreement(indices, labels) -> np.ndarray:
    """Share of each point's k neighbours whose label differs from its own, shape (n_samples,).

    High values mark mislabelled samples and hard ones between clusters. Neighbours without a
    label (None) are left out of the share; a point without a label, or whose neighbours all
    lack one, gets NaN.
    """
    indices, _ = _check_graph(indices)
    labels = _check_column(labels, indices.shape[0], "labels")
    codes, present = _codes(labels)
    own = codes[:, None]
    neigh = codes[indices]
    valid = present[indices]
    counted = valid.sum(axis=1)
    differ = ((neigh != own) & valid).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = differ / counted
    score[(~present) | (counted == 0)] = np.nan
    return score


def _codes(values: list) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the distinct values (None gets -1) and a mask of the present ones."""
    table: dict = {}
    codes = np.array([-1 if v is None else table.setdefault(_hashable(v), len(table)) for v in values], dtype=np.int64)
    return codes, codes >= 0


def _code_names(values: list, codes: np.ndarray) -> dict:
    """``{code: the first value that got it}`` for the present values, in code order."""
    names: dict = {}
    for value, code in zip(values, codes):
        if code >= 0:
            names.setdefault(int(code), value)
    return names


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


class SplitComparison:
    """Result of :func:`split_shift`.

    Attributes
    ----------
    scores : ndarray, shape (n_samples,)
        Per point: 0 when its neighbourhood mixes the splits as chance would, 1 when every
        neighbour comes from its own split (a region the other split does not cover), below 0
        when the other split is over-represented. NaN for points outside the compared splits.
    pairs : dict
        ``(a, b) -> summary`` for every pair of split values: the mean per-point score over the
        points of a and b, counting only neighbours in a or b. About 0 for two samples of one
        distribution, about 1 for splits that do not overlap.
    """

    def __init__(self, scores: np.ndarray, pairs: dict, counts: dict):
        self.scores = scores
        self.pairs = pairs
        self.counts = counts

    def summary(self, a=None, b=None) -> float:
        """The summary number of one pair (the only pair when there are two split values)."""
        if a is None and b is None:
            if len(self.pairs) != 1:
                raise InvalidArgumentError(f"there are {len(self.pairs)} pairs of splits; name two of {sorted(self.counts, key=str)}")
            return next(iter(self.pairs.values()))
        key = (a, b) if (a, b) in self.pairs else (b, a)
        if key not in self.pairs:
            raise InvalidArgumentError(f"no split pair ({a!r}, {b!r}); the splits are {sorted(self.counts, key=str)}")
        return self.pairs[key]

    def __repr__(self):
        pairs = ", ".join(f"{a}/{b}: {v:.3f}" for (a, b), v in self.pairs.items())
        return f"SplitComparison({pairs})"


def split_shift(indices, splits) -> SplitComparison:
    """Compare the splits named by a metadata column (such as train/test) through the neighbour graph.

    Parameters
    ----------
    indices : ndarray, shape (n_samples, k)
        Neighbour indices from ``knn_graph``.
    splits : list, length n_samples
        Each point's split; points with None are left out.

    Returns
    -------
    SplitComparison
        Per-point scores and one summary number per pair of splits.
    """
    indices, _ = _check_graph(indices)
    splits = _check_column(splits, indices.shape[0], "splits")
    codes, present = _codes(splits)
    names = _code_names(splits, codes)
    n_codes = len(names)
    if n_codes < 2:
        raise InvalidArgumentError(f"splits must hold at least two distinct values to compare; got {list(names.values())}")
    counts = np.bincount(codes[present], minlength=n_codes)
    neigh = codes[indices]
    scores = _shift(codes, neigh, present[indices], counts, present)
    pairs = {}
    for a in range(n_codes):
        for b in range(a + 1, n_codes):
            members = (codes == a) | (codes == b)
            in_pair = (neigh == a) | (neigh == b)
            pair_counts = np.zeros_like(counts)
            pair_counts[[a, b]] = counts[[a, b]]
            pair_scores = _shift(codes, neigh, in_pair, pair_counts, members)
            pairs[(names[a], names[b])] = float(np.nanmean(pair_scores[members]))
    return SplitComparison(scores, pairs, {names[c]: int(counts[c]) for c in range(n_codes)})


def _shift(codes, neigh, counted_mask, counts, members) -> np.ndarray:
    """(same-split share - chance share) / (1 - chance share) per member; NaN elsewhere."""
    counted = counted_mask.sum(axis=1).astype(np.float64)
    same = ((neigh == codes[:, None]) & counted_mask).sum(axis=1)
    total = counts.sum()
    own_count = counts[np.maximum(codes, 0)]
    # Chance: the share of the point's own split among all other points that could be neighbours.
    chance = (own_count - 1) / np.maximum(total - 1, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = same / counted
        score = (share - chance) / np.maximum(1.0 - chance, 1e-12)
    score[(~members) | (counted == 0)] = np.nan
    return score
