"""``GET /api/v1/compare``: how alike two runs see the same inputs, point by point.

The viewer's side-by-side comparison (``compare.js``) colours both runs' projections by the
per-point neighbourhood agreement this answers and links hover and selection through the rows
it joined. Computed by :func:`tracker_sdk.analysis.dynamics.compare` in the original vector
spaces (never on the 2-D layouts), joined on a metadata column of sample ids when ``id`` is
given, else row by row; the last few answers are kept, keyed by both embeddings (and their
vectors' hashes), ``k``, the id and label columns and the metric.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .errors import BadRequest, Unprocessable
from .security import check_hex_id, json_bytes

MAX_ROWS = 100_000  # exact neighbour graphs answer within seconds; beyond, `tracker compare` is the tool
MAX_K = 100
MAX_CLASSES = 100  # classes listed in the answer, most different first
CACHE_SIZE = 8
METRICS = ("euclidean", "cosine")


class ComparisonCache:
    """The encoded answers of the last few comparisons (an LRU shared by the app's threads)."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._lock = threading.Lock()
        self._answers: OrderedDict = OrderedDict()

    def get(self, key) -> bytes | None:
        with self._lock:
            body = self._answers.get(key)
            if body is not None:
                self._answers.move_to_end(key)
            return body

    def put(self, key, body: bytes) -> None:
        with self._lock:
            self._answers[key] = body
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)


def _text(query, name: str, default: str | None = None, limit: int = 200) -> str | None:
    value = query.get(name)
    if value is None or value == "":
        return default
    if len(value) > limit:
        raise BadRequest(f"query parameter {name!r} must be at most {limit} characters; got {len(value)}")
    return value


def _required(query, name: str) -> str:
    value = query.get(name)
    if not value:
        raise BadRequest(f"query parameter {name!r} is required (compare?run_a=..&emb_a=..&run_b=..&emb_b=..)")
    return value


def _k(query) -> int:
    value = query.get("k") or "10"
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_K:
        raise BadRequest(f"query parameter 'k' must be an integer from 1 to {MAX_K}; got {value[:40]!r}")
    return int(value)


def _column(emb, name: str, argument: str, side: str) -> list:
    try:
        columns = emb.columns
    except (OSError, ValueError) as exc:
        raise Unprocessable(f"the metadata of embedding {emb.id} is not readable: {type(exc).__name__}") from None
    if name not in columns:
        raise BadRequest(f"{argument} {name!r} is not a metadata column of {side} (embedding {emb.id}); "
                         f"its columns are {list(columns)[:20]}")
    return columns[name]


def _vectors(store, emb, side: str) -> np.ndarray:
    if emb.n > MAX_ROWS:
        raise BadRequest(f"{side} has {emb.n} rows; the viewer compares at most {MAX_ROWS} "
                         "(use `tracker compare RUN_A RUN_B --title T` for more)")
    return np.asarray(store._vectors(emb), dtype=np.float32)


def _compare(store, cache: ComparisonCache, ids: tuple, k: int, id_column, label_column, metric: str) -> bytes:
    from tracker_sdk.analysis.dynamics import compare
    run_a, emb_a_id, run_b, emb_b_id = ids
    emb_a, emb_b = store.embedding(run_a, emb_a_id), store.embedding(run_b, emb_b_id)
    key = (run_a, emb_a_id, emb_a.record.vectors.sha256, run_b, emb_b_id, emb_b.record.vectors.sha256, k,
           id_column, label_column, metric)
    body = cache.get(key)
    if body is not None:
        return body
    if id_column is None and emb_a.n != emb_b.n:
        raise BadRequest(f"without 'id' the runs are compared row by row, so both need the same rows: run_a's "
                         f"embedding has {emb_a.n}, run_b's has {emb_b.n}; pass id=COLUMN to join on sample ids")
    ids_a = ids_b = None
    if id_column is not None:
        ids_a = _column(emb_a, id_column, "id", "run_a")
        ids_b = _column(emb_b, id_column, "id", "run_b")
    labels, labels_from = None, None
    try:
        if label_column != "label" or "label" in emb_a.columns:
            labels, labels_from = _column(emb_a, label_column, "label", "run_a"), label_column
    except (OSError, ValueError) as exc:
        raise Unprocessable(f"the metadata of embedding {emb_a.id} is not readable: {type(exc).__name__}") from None
    result = compare(_vectors(store, emb_a, "run_a"), _vectors(store, emb_b, "run_b"), k, labels,
                     ids_a=ids_a, ids_b=ids_b, metric=metric)
    agreement = result.agreement
    body = json_bytes({
        "run_a": run_a, "emb_a": emb_a_id, "run_b": run_b, "emb_b": emb_b_id, "k": k, "metric": metric,
        "join": id_column, "labels_from": labels_from, "shared": int(agreement.size),
        "linear_cka": float(result.cka), "mean_agreement": float(agreement.mean()),
        "median_agreement": float(np.median(agreement)),
        "rows_a": result.rows_a.tolist(), "rows_b": result.rows_b.tolist(),
        "agreement": np.round(agreement.astype(np.float64), 6).tolist(),
        "differing": [{"label": label, "mean": round(mean, 6), "count": count}
                      for label, mean, count in result.clusters[:MAX_CLASSES]],
    })
    cache.put(key, body)
    return body


async def get_compare(request: Request) -> Response:
    """Per-point k-NN agreement of two embeddings (rows joined by ``id`` or by position), CKA, classes."""
    query = request.query_params
    ids = tuple(check_hex_id(_required(query, name), name) for name in ("run_a", "emb_a", "run_b", "emb_b"))
    k = _k(query)
    metric = _text(query, "metric", "euclidean")
    if metric not in METRICS:
        raise BadRequest(f"query parameter 'metric' must be one of {list(METRICS)}; got {metric[:40]!r}")
    id_column, label_column = _text(query, "id"), _text(query, "label", "label")
    state = request.app.state
    cache = getattr(state, "comparisons", None)
    if cache is None:
        cache = state.comparisons = ComparisonCache()
    body = await run_in_threadpool(_compare, state.store, cache, ids, k, id_column, label_column, metric)
    return Response(body, media_type="application/json")
