"""Embedding dynamics: how far to trust a 2-D picture, and how a representation changes.

Pure functions on arrays, independent of storage, in four groups:

- per-point trust of a projection: :func:`trust_scores` (per-point trustworthiness and
  continuity, and their means, which are the usual global scores), :func:`false_neighbors` and
  :func:`true_neighbors` for one point;
- change across steps in the original space: :func:`knn_jaccard`, :func:`linear_cka`,
  :func:`cka_matrix`, :func:`class_separation`, :func:`align_rows`, and :func:`step_dynamics`,
  which computes all of them for a group of steps reusing one neighbour graph per step;
- aligned fits: :func:`procrustes_align`, :func:`stability`, :func:`align_steps`;
- run-to-run comparison on the same inputs: :func:`compare`.

Every neighbour graph comes from :func:`tracker_sdk.analysis.neighbors.knn_graph` (exact up
to its limit, approximate beyond), single-point queries from ``exact_knn``; where exact ranks
are computed, the vectors' graph is selected from the same distance rows by the same rule
(``neighbors.smallest``), so it equals knn_graph's without a second pass.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np

from .._progress import Progress
from ..errors import InvalidArgumentError
from .neighbors import (
    METHODS,
    centred,
    distance_factors,
    exact_knn,
    knn_graph,
    neighbor_distances,
    smallest,
)
from .scores import _code_names, _codes

#: ranks are exact up to this many rows; beyond, they are estimated from a sample of reference rows
EXACT_ROWS = 100_000
#: reference rows sampled per point when ranks are estimated
APPROX_REFERENCE = 2048
#: beyond EXACT_ROWS rows the silhouette is computed on a seeded sample of this many rows
SILHOUETTE_BEYOND_EXACT = 10_000
#: features per stacked product in cka_matrix (its float32 product matrix stays under 64 MiB)
CKA_STACK_FEATURES = 4096
# float32 entries of one block of distances (16 MiB: blocks this size are reused by the allocator)
_BLOCK_ENTRIES = 1 << 22


# --------------------------------------------------------------------------- validation helpers

def _matrix(values, argument: str, *, dtype=np.float32) -> np.ndarray:
    x = np.asarray(values, dtype=dtype)
    if x.ndim != 2:
        raise InvalidArgumentError(f"{argument} must be 2D (n_samples, n_features); got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InvalidArgumentError(f"{argument} must be finite; {int((~np.isfinite(x)).any(axis=1).sum())} rows hold NaN or Inf")
    return x


def _same_rows(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise InvalidArgumentError(f"{name_b} has {b.shape[0]} rows but {name_a} has {a.shape[0]}; "
                                   f"join them on a sample id first (align_rows)")


def _check_k(k, n: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise InvalidArgumentError(f"k must be a positive integer; got {k!r}")
    if not k < n / 2:
        raise InvalidArgumentError(f"k must be below n_samples / 2 = {n / 2:g} for trustworthiness; got {k}")
    return int(k)


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS}; got {method!r}")
    return method


def _neighbors(z: np.ndarray, k: int, metric: str, method: str, given, argument: str) -> np.ndarray:
    """The first k neighbour indices per row: ``given`` (a knn_graph result or its indices) or a new graph."""
    if given is None:
        return knn_graph(z, k, metric, method=method)[0]
    idx = np.asarray(given[0] if isinstance(given, tuple) else given)
    if idx.ndim != 2 or idx.shape[0] != z.shape[0] or idx.shape[1] < k:
        raise InvalidArgumentError(f"{argument} must be neighbour indices of shape ({z.shape[0]}, >= {k}); "
                                   f"got shape {idx.shape}")
    return idx[:, :k]


def _membership(idx_a: np.ndarray, idx_b: np.ndarray, block: int = 65536) -> np.ndarray:
    """(n, k_a) bool: whether each of a's neighbours is also among b's (row by row)."""
    out = np.empty(idx_a.shape, dtype=bool)
    for start in range(0, idx_a.shape[0], block):
        sl = slice(start, start + block)
        out[sl] = (idx_a[sl, :, None] == idx_b[sl, None, :]).any(axis=2)
    return out


# --------------------------------------------------------------------------- per-point trust

@dataclass
class TrustScores:
    """Result of :func:`trust_scores`.

    Attributes
    ----------
    trust_point : ndarray, shape (n_samples,)
        Per-point trustworthiness in [0, 1]: 1 when none of the point's k neighbours on screen
        is a stranger in the original space; low where the picture glues far regions together.
    continuity_point : ndarray, shape (n_samples,)
        Per-point continuity in [0, 1]: 1 when all of the point's k original neighbours are
        also near it on screen; low where the picture tears a neighbourhood apart.
    trustworthiness, continuity : float
        The means, equal to the global scores of Venna & Kaski (``sklearn.manifold.trustworthiness``).
    k : int
    exact : bool
        False when ranks were estimated from a sample of reference rows (beyond ``EXACT_ROWS``).
    """

    trust_point: np.ndarray
    continuity_point: np.ndarray
    trustworthiness: float
    continuity: float
    k: int
    exact: bool


def trust_scores(vectors, coords, k: int = 10, *, metric: str = "euclidean", method: str = "auto",
                 vector_neighbors=None, coord_neighbors=None, random_state: int | None = 0,
                 n_jobs: int | None = None) -> TrustScores:
    """Per-point trustworthiness and continuity of a projection, and the global scores.

    With ``r(i, j)`` the rank of j among i's neighbours in one space (1 = nearest), point i's
    trustworthiness is ``1 - 2 / (k (2n - 3k - 1)) * sum(r_vectors(i, j) - k)`` over its k
    nearest on screen that are not among its k nearest in the original space; continuity swaps
    the spaces. The normaliser is the largest possible penalty of one point, so each score
    lies in [0, 1] and a projection that keeps every neighbourhood scores 1 everywhere.

    Parameters
    ----------
    vectors : array-like, shape (n_samples, n_features)
        The original vectors.
    coords : array-like, shape (n_samples, n_components)
        The projection (euclidean).
    k : int
        Neighbours per point; below ``n_samples / 2``.
    metric : {"euclidean", "cosine"}
        Distance in the original space.
    method : {"auto", "exact", "approximate"}
        ``auto``: exact ranks (and ``knn_graph``'s own choice of graph) up to ``EXACT_ROWS``
        rows; beyond, approximate graphs and ranks estimated from ``APPROX_REFERENCE`` sampled
        rows. ``exact`` / ``approximate`` force one way for both.
    vector_neighbors, coord_neighbors : tuple or ndarray, optional
        ``knn_graph`` results (or their indices, at least k columns) already computed, to reuse.
    random_state : int or None
        Seed of the approximate search and of the reference sample.
    n_jobs : int, optional
        Threads ranking blocks of rows; by default one per CPU.

    Returns
    -------
    TrustScores
    """
    x = _matrix(vectors, "vectors")
    y = _matrix(coords, "coords")
    _same_rows(x, y, "vectors", "coords")
    k = _check_k(k, x.shape[0])
    method = _check_method(method)
    return _trust(_for_ranks(x, metric), y, k, method, vector_neighbors, coord_neighbors, random_state,
                  (os.cpu_count() or 1) if n_jobs is None else max(1, int(n_jobs)))[0]


def _trust(x: np.ndarray, y: np.ndarray, k: int, method: str, vector_neighbors, coord_neighbors, random_state,
           n_jobs: int, one_hot: np.ndarray | None = None) -> tuple[TrustScores, np.ndarray, np.ndarray | None]:
    """:func:`trust_scores` on checked input, ``x`` already in ranking space; also returns the vectors' k-NN graph
    and, given ``one_hot`` classes, each row's summed distance to each class (None on the estimated path).

    Exact ranks need every row's distances to all rows anyway, so without ``vector_neighbors``
    the vectors' graph (and the silhouette's sums) come from the same rows instead of separate passes.
    """
    n = x.shape[0]
    exact = method == "exact" or (method == "auto" and n <= EXACT_ROWS)
    y = _for_ranks(y, "euclidean")
    # beyond EXACT_ROWS the graphs are approximate too: knn_graph's own limit (n^2 * d) would
    # search a 2-D layout exactly far past the point where that takes hours
    graph_method = "approximate" if method == "auto" and not exact else method
    iy = _neighbors(y, k, "euclidean", graph_method, coord_neighbors, "coord_neighbors")
    scale = 2.0 / (k * (2.0 * n - 3.0 * k - 1.0))
    if exact:
        ix = None if vector_neighbors is None else _neighbors(x, k, "euclidean", method, vector_neighbors,
                                                               "vector_neighbors")
        trust_penalty, found, sums = _exact_penalty(x, iy, k, ix, n_jobs, one_hot)
        if ix is None:
            ix = neighbor_distances(x, found, "euclidean")[0]
        cont_penalty = _exact_penalty(y, ix, k, iy, n_jobs)[0]
    else:
        sums = None
        ix = _neighbors(x, k, "euclidean", graph_method, vector_neighbors, "vector_neighbors")
        trust_penalty = _estimated_penalty(x, iy, ~_membership(iy, ix), k, random_state, n_jobs)
        cont_penalty = _estimated_penalty(y, ix, ~_membership(ix, iy), k, random_state, n_jobs)
    trust, cont = 1.0 - scale * trust_penalty, 1.0 - scale * cont_penalty
    if not exact:  # estimated ranks can overshoot the largest penalty
        np.clip(trust, 0.0, 1.0, out=trust)
        np.clip(cont, 0.0, 1.0, out=cont)
    return TrustScores(trust, cont, float(trust.mean()), float(cont.mean()), k, exact), ix, sums


def point_trustworthiness(vectors, coords, k: int = 10, **options) -> np.ndarray:
    """Per-point trustworthiness, shape (n_samples,); see :func:`trust_scores` (same options)."""
    return trust_scores(vectors, coords, k, **options).trust_point


def point_continuity(vectors, coords, k: int = 10, **options) -> np.ndarray:
    """Per-point continuity, shape (n_samples,); see :func:`trust_scores` (same options)."""
    return trust_scores(vectors, coords, k, **options).continuity_point


def _for_ranks(x: np.ndarray, metric: str) -> np.ndarray:
    """Vectors whose euclidean order is the metric's order (unit rows for cosine), centred against float32 cancellation."""
    if metric not in ("euclidean", "cosine"):
        raise InvalidArgumentError(f"metric must be one of ('euclidean', 'cosine'); got {metric!r}")
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return (x - x.mean(axis=0, dtype=np.float64)).astype(np.float32)


def _in_threads(work, starts, n_jobs: int) -> None:
    """``work(start)`` for every start, on ``n_jobs`` threads (numpy's sorts and products release the GIL).

    With several threads BLAS runs one thread each: the products are small, and threads of
    threads only wait for each other on a shared machine.
    """
    starts = list(starts)
    if n_jobs <= 1 or len(starts) <= 1:
        for start in starts:
            work(start)
        return
    with one_blas_thread(), ThreadPoolExecutor(max_workers=n_jobs) as pool:
        list(pool.map(work, starts))


def one_blas_thread():
    """A context in which BLAS uses one thread (threadpoolctl, which scikit-learn brings); no-op without it."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _exact_penalty(z: np.ndarray, other: np.ndarray, k: int, own: np.ndarray | None, n_jobs: int,
                   one_hot: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Per row: the sum over its flagged neighbours j of (rank of j in z) - k, exactly; z's k-NN graph; class sums.

    ``other`` holds each row's k neighbours in the other space; j is flagged when it is not
    among the row's own k nearest in z (``own``; found here from the same rows when None and
    returned, unordered). A rank counts the rows strictly closer in z, plus one: every row's
    squared distances to all rows come from one product per block of rows, are sorted once,
    and the flagged neighbours' distances are searched in them. A flagged neighbour is by
    definition outside the k nearest, so its rank is at least k + 1 (float ties cannot make it
    cost less than 1). With ``own`` None and ``one_hot`` classes, each row's summed distance to
    each class comes from the same rows too (:func:`_add_distance_sums`).
    """
    n = z.shape[0]
    penalty = np.zeros(n, dtype=np.float64)
    find = own is None
    sums = np.empty((n, one_hot.shape[1])) if find and one_hot is not None else None
    if find:
        own = np.empty((n, k), dtype=np.int64)
    # every row, in the same blocks whether or not the graph is given: a product's last digits
    # can depend on the block, and with tied distances (integer pixels) that moves a rank
    left, right = distance_factors(centred(z))  # as knn_graph does: the graph found here is knn_graph's
    block = max(1, min(n, _BLOCK_ENTRIES // n))
    buffers = threading.local()  # per thread, reused: fresh large arrays cost page faults every block

    def one_block(start: int) -> None:
        rows = np.arange(start, min(start + block, n))
        if not hasattr(buffers, "d"):
            buffers.d, buffers.ordered = np.empty((2, block, n), dtype=np.float32)
        d, ordered = buffers.d[:rows.size], buffers.ordered[:rows.size]
        np.matmul(left[rows], right, out=d)
        if sums is not None:
            np.copyto(ordered, d)
            _add_distance_sums(ordered, rows, one_hot, sums)
        d[np.arange(rows.size), rows] = np.inf  # a row is not its own neighbour
        cols = other[rows]
        thresholds = np.take_along_axis(d, cols, axis=1)
        if find:  # the unsorted rows are needed to find the neighbours' columns
            np.copyto(ordered, d)
            ordered.sort(axis=1)
            own[rows] = smallest(d, k, ordered[:, k - 1])
        else:
            ordered = d
            ordered.sort(axis=1)
        false = ~_membership(cols, own[rows])
        counts = _count_below(ordered, thresholds).astype(np.float64)
        ranks = np.maximum(1.0 + counts, k + 1.0)
        penalty[rows] = ((ranks - k) * false).sum(axis=1)

    _in_threads(one_block, range(0, n, block), n_jobs)
    return penalty, own if find else None, sums


def _estimated_penalty(z: np.ndarray, other: np.ndarray, false: np.ndarray, k: int, random_state,
                       n_jobs: int) -> np.ndarray:
    """:func:`_exact_penalty` with ranks estimated from a seeded sample of reference rows, scaled to all rows."""
    n = z.shape[0]
    penalty = np.zeros(n, dtype=np.float64)
    rows_needed = np.flatnonzero(false.any(axis=1))
    if rows_needed.size == 0:
        return penalty
    ref = np.sort(np.random.default_rng(random_state).choice(n, size=min(n, APPROX_REFERENCE), replace=False))
    sq = np.einsum("ij,ij->i", z, z)
    ones = np.ones((n, 1), dtype=np.float32)
    left = np.hstack([z, sq[:, None], ones])
    right = np.hstack([-2.0 * z[ref], ones[ref], sq[ref, None]])
    ref_pos = np.full(n, -1, dtype=np.int64)
    ref_pos[ref] = np.arange(ref.size)
    block = max(16, min(rows_needed.size, _BLOCK_ENTRIES // ref.size))

    def one_block(start: int) -> None:
        rows = rows_needed[start:start + block]
        local = np.arange(rows.size)
        d = left[rows] @ right.T
        cols = other[rows]
        right_cols = np.concatenate([-2.0 * z[cols], ones[cols], sq[cols][..., None]], axis=2)
        thresholds = (left[rows][:, None, :] * right_cols).sum(axis=2)
        own = ref_pos[rows]
        inside = own >= 0
        d[local[inside], own[inside]] = np.inf  # a row is not its own neighbour
        d.sort(axis=1)
        counts = _count_below(d, thresholds).astype(np.float64)
        counts *= (n - 1) / (ref.size - inside.astype(np.float64))[:, None]
        ranks = np.maximum(1.0 + counts, k + 1.0)
        penalty[rows] = ((ranks - k) * false[rows]).sum(axis=1)

    _in_threads(one_block, range(0, rows_needed.size, block), n_jobs)
    return penalty


def _count_below(sorted_rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row r, how many of ``sorted_rows[r]`` lie strictly below each ``values[r, j]``.

    A binary search run on all rows at once (one gather per halving), as a Python loop of
    per-row ``searchsorted`` calls costs more than the search itself.
    """
    width = sorted_rows.shape[1]
    lo = np.zeros(values.shape, dtype=np.int64)
    hi = np.full(values.shape, width, dtype=np.int64)
    rows = np.arange(values.shape[0])[:, None]
    for _ in range(int(width).bit_length()):
        mid = (lo + hi) // 2
        below = sorted_rows[rows, np.minimum(mid, width - 1)] < values
        below &= mid < hi
        lo = np.where(below, mid + 1, lo)
        hi = np.where(below, hi, mid)
    return lo


def true_neighbors(vectors, i: int, k: int = 10, *, metric: str = "euclidean") -> np.ndarray:
    """Indices, shape (k,), of point ``i``'s k nearest rows in the original space, nearest first."""
    x = _matrix(vectors, "vectors")
    return exact_knn(x, [_check_row(i, x.shape[0])], k, metric)[0][0]


def false_neighbors(vectors, coords, i: int, k: int = 10, *, metric: str = "euclidean") -> np.ndarray:
    """Indices of point ``i``'s k nearest on screen that are not among its k nearest in the original space.

    These are the neighbours the picture invents (close on screen, far in the vectors), nearest
    on screen first; empty when the picture is faithful around ``i``.
    """
    x = _matrix(vectors, "vectors")
    y = _matrix(coords, "coords")
    _same_rows(x, y, "vectors", "coords")
    i = _check_row(i, x.shape[0])
    on_screen = exact_knn(y, [i], k)[0][0]
    return on_screen[~np.isin(on_screen, exact_knn(x, [i], k, metric)[0][0])]


def _check_row(i, n: int) -> int:
    if not isinstance(i, (int, np.integer)) or isinstance(i, bool) or not 0 <= i < n:
        raise InvalidArgumentError(f"i must be a row index in [0, {n}); got {i!r}")
    return int(i)


# --------------------------------------------------------------------------- change across steps

def graph_jaccard(indices_a, indices_b) -> np.ndarray:
    """Per row, |A & B| / |A | B| of two neighbour lists of shape (n_samples, k); shape (n_samples,)."""
    a, b = np.asarray(indices_a), np.asarray(indices_b)
    if a.ndim != 2 or a.shape != b.shape:
        raise InvalidArgumentError(f"indices_a and indices_b must be 2D and of one shape; got {a.shape} and {b.shape}")
    shared = _membership(a, b).sum(axis=1)
    return shared / (2.0 * a.shape[1] - shared)


def knn_jaccard(a, b, k: int = 10, *, metric: str = "euclidean", method: str = "auto") -> np.ndarray:
    """How much each point's k-NN set changed between two versions of the same rows.

    Parameters
    ----------
    a, b : array-like, shape (n_samples, n_features_a), (n_samples, n_features_b)
        The same samples (row i is one sample in both) at two steps, layers or runs.
    k : int
    metric : {"euclidean", "cosine"}
    method : {"auto", "exact", "approximate"}
        Passed to ``knn_graph``.

    Returns
    -------
    ndarray, shape (n_samples,)
        Jaccard overlap of the two neighbour sets: 1 unchanged, 0 all new.
    """
    a, b = _matrix(a, "a"), _matrix(b, "b")
    _same_rows(a, b, "a", "b")
    _check_method(method)
    return graph_jaccard(knn_graph(a, k, metric, method=method)[0], knn_graph(b, k, metric, method=method)[0])


def _hsic_terms(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Squared row norms and their sum: what the debiased estimator needs besides the cross product."""
    rows = np.einsum("ij,ij->i", x, x)
    return rows, float(rows.sum())


def _hsic(xty_sq: float, terms_x, terms_y, n: int, debiased: bool) -> float:
    """HSIC of two centred linear kernels from ||X^T Y||_F^2 (Kornblith et al. 2019; debiased: Song et al. 2012)."""
    if not debiased:
        return xty_sq
    (rx, sx), (ry, sy) = terms_x, terms_y
    return xty_sq - n / (n - 2.0) * float(rx @ ry) + sx * sy / ((n - 1.0) * (n - 2.0))


def linear_cka(a, b, *, debiased: bool = True) -> float:
    """Linear centred kernel alignment of two representations of the same rows.

    1 when one is a rotation, reflection or isotropic scaling of the other (whatever their
    widths), about 0 when unrelated. The default is the debiased estimator (Kornblith et al.
    2019 with the unbiased HSIC of Song et al. 2012), whose value for independent data is 0 on
    average at any ``n_samples`` and width; the standard estimator (``debiased=False``) sits
    near ``n_features / n_samples`` for unrelated data. Computed in feature space: memory
    is ``n_features_a * n_features_b``, not ``n_samples ** 2``.

    Parameters
    ----------
    a, b : array-like, shape (n_samples, n_features_a), (n_samples, n_features_b)
    debiased : bool

    Returns
    -------
    float
    """
    return float(cka_matrix([a, b], debiased=debiased, dtype=np.float64)[0, 1])


def cka_matrix(representations, *, debiased: bool = True, dtype=np.float32) -> np.ndarray:
    """Linear CKA between every pair of representations of the same rows, shape (n_steps, n_steps).

    The representations are centred and stacked side by side, so all cross products come
    from a few large matrix products (five times faster than one product per pair).

    Parameters
    ----------
    representations : list of array-like, each (n_samples, n_features_s)
        One per step (or per layer); widths may differ.
    debiased : bool
        See :func:`linear_cka`.
    dtype : numpy dtype
        Of the products: float32 by default (agrees with float64 to about 1e-6), which
        :func:`linear_cka` uses.
    """
    count = len(representations)
    if count == 0:
        raise InvalidArgumentError("representations must hold at least one array; got none")
    first = _matrix(representations[0], "representations[0]", dtype=dtype)
    n = first.shape[0]
    if debiased and n < 4:
        raise InvalidArgumentError(f"debiased CKA needs at least 4 rows; got {n}")
    groups: list[list[int]] = [[]]
    widths = []
    for s in range(count):
        x = first if s == 0 else _matrix(representations[s], f"representations[{s}]", dtype=dtype)
        _same_rows(first, x, "representations[0]", f"representations[{s}]")
        widths.append(x.shape[1])
        if groups[-1] and sum(widths[t] for t in groups[-1]) + x.shape[1] > CKA_STACK_FEATURES:
            groups.append([])
        groups[-1].append(s)
    terms, stacks = [None] * count, []
    for group in groups:
        stack = np.empty((n, sum(widths[s] for s in group)), dtype=dtype)
        column = 0
        for s in group:
            x = np.asarray(representations[s], dtype=np.float64)
            x = x - x.mean(axis=0)
            terms[s] = _hsic_terms(x)
            stack[:, column:column + widths[s]] = x
            column += widths[s]
        stacks.append(stack)
    hsic = np.empty((count, count))
    for g, group in enumerate(groups):
        for h in range(g, len(groups)):
            product = (stacks[g].T @ stacks[h]).astype(np.float64)
            rows = np.cumsum([0] + [widths[s] for s in group])
            cols = np.cumsum([0] + [widths[t] for t in groups[h]])
            for a, s in enumerate(group):
                for b, t in enumerate(groups[h]):
                    block = product[rows[a]:rows[a + 1], cols[b]:cols[b + 1]]
                    hsic[s, t] = hsic[t, s] = _hsic(float(np.einsum("ij,ij->", block, block)), terms[s], terms[t],
                                                    n, debiased)
    self_hsic = np.sqrt(np.maximum(np.diag(hsic), 0.0))
    scale = np.outer(self_hsic, self_hsic)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = hsic / scale
    out[scale == 0] = np.nan  # a constant representation has no alignment
    return out


@dataclass
class ClassSeparation:
    """Result of :func:`class_separation`.

    Attributes
    ----------
    classes : list
        The label values, in order of first appearance.
    counts : ndarray, shape (n_classes,)
    separation : ndarray, shape (n_classes,)
        Distance from the class centroid to the nearest other centroid, in units of the two
        classes' root-mean-square spread (scale-free, so steps compare).
    nearest : list
        The nearest other class of each class.
    silhouette : ndarray, shape (n_classes,)
        Mean silhouette of the class's points (every point's mean distance to every class; on a
        seeded sample beyond ``EXACT_ROWS`` rows or when ``max_samples`` asks).
    """

    classes: list
    counts: np.ndarray
    separation: np.ndarray
    nearest: list
    silhouette: np.ndarray


def class_separation(vectors, labels, *, metric: str = "euclidean", max_samples: int | None = None,
                     random_state: int | None = 0) -> ClassSeparation:
    """Per class: centroid separation and silhouette in the original space.

    Parameters
    ----------
    vectors : array-like, shape (n_samples, n_features)
    labels : sequence, length n_samples
        Class of each row; rows labelled None are left out.
    metric : {"euclidean", "cosine"}
        For cosine, both measures use the rows scaled to unit length (euclidean distance
        between unit vectors orders pairs as cosine distance does).
    max_samples : int, optional
        Compute the silhouette on a seeded sample of this many rows; by default on every row
        (exact, from blocks of rows: time n^2, memory one block) up to ``EXACT_ROWS`` rows, and on
        a sample of ``SILHOUETTE_BEYOND_EXACT`` beyond.
    random_state : int or None
        Seed of the sample.

    Returns
    -------
    ClassSeparation
    """
    x = _for_ranks(_matrix(vectors, "vectors"), metric).astype(np.float64)
    labels = list(labels)
    if len(labels) != x.shape[0]:
        raise InvalidArgumentError(f"labels has {len(labels)} rows but vectors has {x.shape[0]}")
    if max_samples is not None and (not isinstance(max_samples, (int, np.integer)) or isinstance(max_samples, bool)
                                    or max_samples < 2):
        raise InvalidArgumentError(f"max_samples must be an integer of at least 2 or None; got {max_samples!r}")
    return _separation(x, labels, max_samples=max_samples, random_state=random_state)


def _label_codes(labels: list) -> tuple[np.ndarray, np.ndarray, dict]:
    codes, present = _codes(labels)
    names = _code_names(labels, codes)
    if len(names) < 2:
        raise InvalidArgumentError(f"labels must hold at least two classes to separate; got {list(names.values())}")
    return codes, present, names


def _one_hot(codes: np.ndarray, classes: int, dtype=np.float32) -> np.ndarray:
    """(n, classes) indicator of each row's class; rows without a class (code -1) are all zero."""
    out = np.zeros((codes.size, classes), dtype=dtype)
    present = codes >= 0
    out[np.flatnonzero(present), codes[present]] = 1
    return out


def _class_distance_sums(x: np.ndarray, codes: np.ndarray, classes: int) -> np.ndarray:
    """(n, classes): each row's summed euclidean distance to the rows of each class, a block of rows at a time."""
    n = x.shape[0]
    left, right = distance_factors(x)
    one_hot = _one_hot(codes, classes, x.dtype)
    sums = np.empty((n, classes))
    block = max(1, _BLOCK_ENTRIES // n)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        d = left[rows] @ right
        _add_distance_sums(d, rows, one_hot, sums)
    return sums


def _add_distance_sums(squared: np.ndarray, rows: np.ndarray, one_hot: np.ndarray, sums: np.ndarray) -> None:
    """``sums[rows]`` from the rows' squared distances to all rows (overwritten with the distances)."""
    np.maximum(squared, 0.0, out=squared)
    squared[np.arange(rows.size), rows] = 0.0
    np.sqrt(squared, out=squared)
    sums[rows] = squared @ one_hot


def silhouette_rows(n: int, max_samples: int | None = None) -> int:
    """How many rows :func:`class_separation` computes the silhouette on for ``n`` rows."""
    if max_samples is None:
        max_samples = SILHOUETTE_BEYOND_EXACT if n > EXACT_ROWS else n
    return min(n, max_samples)


def _silhouette(sums: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per class, the mean silhouette of its rows, from their summed distances to every class (as scikit-learn:
    a row alone in its class scores 0)."""
    classes = counts.size
    rows = np.arange(codes.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = sums[rows, codes] / (counts[codes] - 1.0)
        means = sums / counts
        means[:, counts == 0] = np.inf  # a class missing from a sample
        means[rows, codes] = np.inf
        nearest = means.min(axis=1)
        s = (nearest - own) / np.maximum(own, nearest)
    s[(counts[codes] <= 1) | ~np.isfinite(s)] = 0.0
    seen = np.bincount(codes, minlength=classes)
    out = np.full(classes, np.nan)
    out[seen > 0] = np.bincount(codes, weights=s, minlength=classes)[seen > 0] / seen[seen > 0]
    return out


def _separation(x: np.ndarray, labels: list, *, sums: np.ndarray | None = None, max_samples: int | None = None,
                random_state=0) -> ClassSeparation:
    """:func:`class_separation` of rows in ranking space; ``sums`` (n, n_classes) of distances given, or computed."""
    codes, present, names = _label_codes(labels)
    c = len(names)
    if sums is not None:
        sums = sums[present]
    codes, x = codes[present], x[present]
    counts = np.bincount(codes, minlength=c)
    centroids = (_one_hot(codes, c, np.float64).T @ x) / counts[:, None]
    spread = np.bincount(codes, weights=np.einsum("ij,ij->i", x, x), minlength=c) / counts
    spread = np.maximum(spread - np.einsum("ij,ij->i", centroids, centroids), 0.0)
    norms = np.einsum("ij,ij->i", centroids, centroids)
    gap = np.sqrt(np.maximum(norms[:, None] + norms[None, :] - 2.0 * (centroids @ centroids.T), 0.0))
    np.fill_diagonal(gap, np.inf)
    units = np.sqrt((spread[:, None] + spread[None, :]) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(units > 0, gap / units, np.inf)
    nearest = gap.argmin(axis=1)
    separation = ratio[np.arange(c), nearest]
    if sums is None:
        keep = silhouette_rows(x.shape[0], max_samples)  # a sample only where ranks are estimated too
        if keep < x.shape[0]:
            rows = np.sort(np.random.default_rng(random_state).choice(x.shape[0], size=keep, replace=False))
            x, codes = x[rows], codes[rows]
        sums = _class_distance_sums(x, codes, c)
    silhouette = _silhouette(sums, codes, np.bincount(codes, minlength=c).astype(np.float64))
    return ClassSeparation([_plain(names[i]) for i in range(c)], counts, separation,
                           [_plain(names[int(j)]) for j in nearest], silhouette)


def _plain(value):
    """A numpy scalar label as the Python value, so results serialise as JSON."""
    return value.item() if isinstance(value, np.generic) else value


def align_rows(ids_a, ids_b) -> tuple[np.ndarray, np.ndarray]:
    """Row indices that join two steps on a sample id: ``ids_a[rows_a] == ids_b[rows_b]``.

    Shared ids come in the order of ``ids_a``; ids present on one side only are dropped.

    Parameters
    ----------
    ids_a, ids_b : sequence
        Sample ids of each row (hashable, unique within each side).

    Returns
    -------
    rows_a, rows_b : ndarray of int64, shape (n_shared,)
    """
    rows_a, rows_b = _shared_rows([ids_a, ids_b], ("ids_a", "ids_b"))
    return rows_a, rows_b


def _id_positions(ids, argument: str) -> dict:
    values = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
    position: dict = {}
    for row, value in enumerate(values):
        key = tuple(value) if isinstance(value, list) else value
        if position.setdefault(key, row) != row:
            raise InvalidArgumentError(f"{argument} must be unique to join on; {key!r} is at rows "
                                       f"{position[key]} and {row}")
    return position


def _shared_rows(ids: list, arguments) -> list[np.ndarray]:
    """Per side, the rows of the ids present on every side, in the first side's order."""
    positions = [_id_positions(values, name) for values, name in zip(ids, arguments)]
    keys = [key for key in positions[0] if all(key in p for p in positions[1:])]
    if not keys:
        firsts = ", ".join(f"{name} starts with {next(iter(p), None)!r}" for name, p in zip(arguments, positions))
        raise InvalidArgumentError(f"{' and '.join(arguments)} share no sample id ({firsts})")
    return [np.fromiter((p[key] for key in keys), dtype=np.int64, count=len(keys)) for p in positions]


@dataclass
class StepDynamics:
    """Result of :func:`step_dynamics`; step s is ``steps[s]``, rows are the shared rows.

    Attributes
    ----------
    rows : list of ndarray
        Per step, the rows used (all rows, or those whose id is present at every step), in one order.
    jaccard : ndarray, shape (n_steps - 1, n_shared)
        ``jaccard[s]``: each point's k-NN overlap between step s and s + 1.
    cka : ndarray, shape (n_steps, n_steps)
        Linear CKA (debiased) between every pair of steps.
    classes : list or None
        Label values; None without labels.
    separation, silhouette : ndarray, shape (n_steps, n_classes), or None
        Per step and class, see :class:`ClassSeparation`.
    trust : list of TrustScores or None
        Per step, when layouts were given.
    """

    rows: list
    jaccard: np.ndarray
    cka: np.ndarray
    classes: list | None = None
    separation: np.ndarray | None = None
    silhouette: np.ndarray | None = None
    trust: list | None = None

    def changed_most(self, s: int, top: int = 10) -> np.ndarray:
        """Positions (into the shared rows) of the ``top`` points whose neighbours changed most from step s to s + 1."""
        if not 0 <= s < self.jaccard.shape[0]:
            raise InvalidArgumentError(f"s must be a step pair in [0, {self.jaccard.shape[0]}); got {s!r}")
        return np.argsort(self.jaccard[s], kind="stable")[:top]


def step_dynamics(steps, k: int = 10, *, labels=None, ids=None, layouts=None, metric: str = "euclidean",
                  method: str = "auto", n_jobs: int | None = None, quiet: bool | None = None) -> StepDynamics:
    """Everything that changes across the steps of a group, computed with one neighbour graph per step.

    Parameters
    ----------
    steps : list of array-like, each (n_samples_s, n_features_s)
        The vectors of each step, in step order.
    k : int
    labels : sequence, length n_samples_0, optional
        Class of each row of the first step: adds separation and silhouette per step and class.
    ids : list of sequences, optional
        Per step, the sample id of each row; steps are joined on the ids present at every step.
        Without ids all steps must hold the same rows in the same order.
    layouts : list of array-like, each (n_samples_s, n_components), optional
        A projection of each step: adds per-point trust per step (reusing the step's graph).
    metric : {"euclidean", "cosine"}
    method : {"auto", "exact", "approximate"}
    n_jobs : int, optional
        Steps computed at once (threads); by default one per CPU.
    quiet : bool, optional
        No progress output.

    Returns
    -------
    StepDynamics
    """
    steps = [_matrix(s, f"steps[{i}]") for i, s in enumerate(steps)]
    if len(steps) < 2:
        raise InvalidArgumentError(f"steps must hold at least two steps to compare; got {len(steps)}")
    _check_method(method)
    if ids is not None:
        if len(ids) != len(steps):
            raise InvalidArgumentError(f"ids has {len(ids)} entries but steps has {len(steps)}")
        for s, (values, x) in enumerate(zip(ids, steps)):
            if len(values) != x.shape[0]:
                raise InvalidArgumentError(f"ids[{s}] has {len(values)} rows but steps[{s}] has {x.shape[0]}")
        rows = _shared_rows(list(ids), [f"ids[{s}]" for s in range(len(steps))])
    else:
        for s, x in enumerate(steps):
            _same_rows(steps[0], x, "steps[0]", f"steps[{s}]")
        rows = [np.arange(x.shape[0]) for x in steps]
    if layouts is not None and len(layouts) != len(steps):
        raise InvalidArgumentError(f"layouts has {len(layouts)} entries but steps has {len(steps)}")
    if labels is not None:
        labels = list(labels)
        if len(labels) != steps[0].shape[0]:
            raise InvalidArgumentError(f"labels has {len(labels)} rows but steps[0] has {steps[0].shape[0]}")
        labels = [labels[r] for r in rows[0]]
        codes, _, names = _label_codes(labels)
        one_hot = _one_hot(codes, len(names))
    else:
        one_hot = None
    sizes = [x.shape[0] for x in steps]
    if ids is not None:
        steps = [x[r] for x, r in zip(steps, rows)]
    n = steps[0].shape[0]
    k = _check_k(k, n)
    if layouts is not None:
        layouts = [_matrix(layout, f"layouts[{s}]") for s, layout in enumerate(layouts)]
        for s, layout in enumerate(layouts):
            if layout.shape[0] != sizes[s]:
                raise InvalidArgumentError(f"layouts[{s}] has {layout.shape[0]} rows but steps[{s}] has {sizes[s]}")
        if ids is not None:
            layouts = [layout[r] for layout, r in zip(layouts, rows)]

    def one_step(s: int) -> tuple:
        z = _for_ranks(steps[s], metric)
        trust = sums = None
        if layouts is None:
            graph = knn_graph(z, k, method=method)[0]
        else:  # the graph and the silhouette's sums come with the exact ranks; one thread per step already
            trust, graph, sums = _trust(z, layouts[s], k, method, None, None, 0, 1, one_hot)
        separation = None if labels is None else _separation(z.astype(np.float64), labels, sums=sums)
        return graph, trust, separation

    # Steps run side by side, BLAS on one thread each: much of each step (sorting distances,
    # selecting neighbours) is single-threaded numpy that releases the GIL.
    workers = min(len(steps), os.cpu_count() or 1) if n_jobs is None else max(1, int(n_jobs))
    done: dict = {}
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        with Progress(len(steps), "tracker_sdk dynamics", unit="step", quiet=quiet) as progress, \
                (one_blas_thread() if workers > 1 else contextlib.nullcontext()):
            cka_future = pool.submit(cka_matrix, steps)  # one product, beside the steps
            for future in as_completed([pool.submit(lambda s=s: (s, one_step(s))) for s in range(len(steps))]):
                s, out = future.result()
                done[s] = out
                progress.update()
            progress.set_status("CKA")
            cka = cka_future.result()
    finally:
        pool.shutdown(cancel_futures=True)  # after a failed step, do not start the others
    graphs, trust, separations = ([done[s][part] for s in range(len(steps))] for part in range(3))
    jaccard = np.stack([graph_jaccard(graphs[s], graphs[s + 1]) for s in range(len(steps) - 1)])
    result = StepDynamics(rows, jaccard, cka, trust=None if layouts is None else trust)
    if labels is not None:
        result.classes = separations[0].classes
        result.separation = np.stack([c.separation for c in separations])
        result.silhouette = np.stack([c.silhouette for c in separations])
    return result


# --------------------------------------------------------------------------- aligned fits

@dataclass(frozen=True)
class ProcrustesTransform:
    """``aligned = scale * coords @ rotation + translation`` (rotation may include a reflection)."""

    rotation: np.ndarray
    scale: float
    translation: np.ndarray

    def apply(self, coords) -> np.ndarray:
        """The transform of ``coords``, shape (n_samples, n_components)."""
        return self.scale * (np.asarray(coords, dtype=np.float64) @ self.rotation) + self.translation


def _shared(reference, layout, rows) -> tuple[np.ndarray, np.ndarray]:
    ref = _matrix(reference, "reference", dtype=np.float64)
    cur = _matrix(layout, "layout", dtype=np.float64)
    if ref.shape[1] != cur.shape[1]:
        raise InvalidArgumentError(f"layout has {cur.shape[1]} components but reference has {ref.shape[1]}")
    if rows is None:
        _same_rows(ref, cur, "reference", "layout")
        return ref, cur
    rows_ref, rows_cur = (np.asarray(r, dtype=np.int64) for r in rows)
    if rows_ref.shape != rows_cur.shape or rows_ref.ndim != 1:
        raise InvalidArgumentError(f"rows must be two 1-D index arrays of one length (from align_rows); "
                                   f"got shapes {rows_ref.shape} and {rows_cur.shape}")
    return ref[rows_ref], cur[rows_cur]


def procrustes_align(reference, layout, *, rows=None) -> tuple[np.ndarray, ProcrustesTransform]:
    """Rotate, reflect, scale and shift ``layout`` onto ``reference`` (orthogonal Procrustes).

    The transform minimises the squared distance between the shared rows; it is applied to
    every row of ``layout``, so points absent from the reference are placed too.

    Parameters
    ----------
    reference : array-like, shape (n_reference, n_components)
    layout : array-like, shape (n_samples, n_components)
    rows : tuple of two index arrays, optional
        ``(rows_reference, rows_layout)`` of the shared points (see :func:`align_rows`); by
        default both hold the same rows in the same order.

    Returns
    -------
    aligned : ndarray, shape (n_samples, n_components)
    transform : ProcrustesTransform
    """
    ref, cur = _shared(reference, layout, rows)
    if ref.shape[0] < 2:
        raise InvalidArgumentError(f"Procrustes needs at least 2 shared rows; got {ref.shape[0]}")
    mean_ref, mean_cur = ref.mean(axis=0), cur.mean(axis=0)
    a, b = ref - mean_ref, cur - mean_cur
    u, sigma, vt = np.linalg.svd(b.T @ a)
    rotation = u @ vt
    norm = float(np.einsum("ij,ij->", b, b))
    scale = float(sigma.sum() / norm) if norm > 0 else 1.0
    transform = ProcrustesTransform(rotation, scale, mean_ref - scale * (mean_cur @ rotation))
    return transform.apply(layout), transform


def stability(previous, current, *, rows=None) -> float:
    """Mean distance each shared point moved between two (aligned) layouts, in layout units; 0 when identical."""
    prev, cur = _shared(previous, current, rows)
    return float(np.sqrt(((cur - prev) ** 2).sum(axis=1)).mean())


@dataclass
class AlignedSteps:
    """Result of :func:`align_steps`: per step, the aligned layout, its transform and its stability (NaN at step 0)."""

    layouts: list
    transforms: list
    stability: np.ndarray


def align_steps(layouts, *, ids=None) -> AlignedSteps:
    """Align each step's own fit onto the previous aligned step, so an animation shows change, not spin.

    Parameters
    ----------
    layouts : list of array-like, each (n_samples_s, n_components)
    ids : list of sequences, optional
        Per step, the sample id of each row; consecutive steps are aligned on their shared ids.

    Returns
    -------
    AlignedSteps
    """
    if len(layouts) < 1:
        raise InvalidArgumentError("layouts must hold at least one step; got none")
    if ids is not None and len(ids) != len(layouts):
        raise InvalidArgumentError(f"ids has {len(ids)} entries but layouts has {len(layouts)}")
    first = _matrix(layouts[0], "layouts[0]", dtype=np.float64)
    aligned, transforms, moved = [first], [None], [np.nan]
    for s in range(1, len(layouts)):
        rows = None if ids is None else align_rows(ids[s - 1], ids[s])
        layout, transform = procrustes_align(aligned[-1], layouts[s], rows=rows)
        aligned.append(layout)
        transforms.append(transform)
        moved.append(stability(aligned[-2], layout, rows=rows))
    return AlignedSteps(aligned, transforms, np.array(moved))


# --------------------------------------------------------------------------- run-to-run comparison

@dataclass
class Comparison:
    """Result of :func:`compare`.

    Attributes
    ----------
    agreement : ndarray, shape (n_shared,)
        Per point, the k-NN Jaccard overlap between the two runs (1: same neighbours).
    cka : float
        Linear CKA (debiased) between the two runs' vectors.
    clusters : list of (label, mean agreement, count)
        Per label, most different neighbourhoods first; empty without labels.
    rows_a, rows_b : ndarray of int64, shape (n_shared,)
        The rows of each run that were compared (joined on ids, or all rows).
    """

    agreement: np.ndarray
    cka: float
    clusters: list = field(default_factory=list)
    rows_a: np.ndarray | None = None
    rows_b: np.ndarray | None = None


def compare(emb_a, emb_b, k: int = 10, labels=None, *, ids_a=None, ids_b=None, metric: str = "euclidean",
            method: str = "auto") -> Comparison:
    """Compare two runs' vectors of the same inputs: per-point neighbourhood agreement, CKA, clusters that differ.

    Parameters
    ----------
    emb_a, emb_b : array-like, shape (n_samples_a, n_features_a), (n_samples_b, n_features_b)
    k : int
    labels : sequence, length n_samples_a, optional
        Class of each row of ``emb_a``; clusters are ranked by mean agreement, lowest first.
    ids_a, ids_b : sequence, optional
        Sample ids to join the runs on; without them row i is the same input in both.
    metric : {"euclidean", "cosine"}
    method : {"auto", "exact", "approximate"}

    Returns
    -------
    Comparison
    """
    a, b = _matrix(emb_a, "emb_a"), _matrix(emb_b, "emb_b")
    if (ids_a is None) != (ids_b is None):
        raise InvalidArgumentError("ids_a and ids_b must be given together (or neither)")
    if ids_a is not None:
        for name, values, x in (("ids_a", ids_a, a), ("ids_b", ids_b, b)):
            if len(values) != x.shape[0]:
                raise InvalidArgumentError(f"{name} has {len(values)} rows but its embedding has {x.shape[0]}")
        rows_a, rows_b = align_rows(ids_a, ids_b)
    else:
        _same_rows(a, b, "emb_a", "emb_b")
        rows_a = rows_b = np.arange(a.shape[0])
    a, b = a[rows_a], b[rows_b]
    agreement = knn_jaccard(a, b, k, metric=metric, method=method)
    result = Comparison(agreement, linear_cka(a, b), [], rows_a, rows_b)
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(emb_a):
            raise InvalidArgumentError(f"labels has {len(labels)} rows but emb_a has {len(emb_a)}")
        codes, present = _codes([labels[r] for r in rows_a])
        names: dict = {}
        for r, code in zip(rows_a, codes):
            if code >= 0:
                names.setdefault(int(code), labels[r])
        counts = np.bincount(codes[present], minlength=len(names))
        means = np.bincount(codes[present], weights=agreement[present], minlength=len(names)) / np.maximum(counts, 1)
        order = np.argsort(means, kind="stable")
        result.clusters = [(_plain(names[int(c)]), float(means[c]), int(counts[c])) for c in order]
    return result
