"""One reduction job: fit or transform, score, store the coordinates blob, build the record.

The same functions run inline (in the training process) and in the background worker; they
write only content-addressed blobs (safe from any process) and return the record payload,
which the process holding the run's writer appends.
"""

from __future__ import annotations

import time
import uuid

import numpy as np

from .._convert import plain_value
from ..runformat import files, npy_chunks
from ..runformat.records import ArrayRef, FittedOn, ReductionRecord
from .quality import projection_quality

LABEL_TYPES = ("str", "int", "bool")


def label_values(columns: list[dict]) -> list | None:
    """The column used for label agreement: ``label`` if present, else the first categorical
    column whose values repeat (so ids and free text are not mistaken for classes)."""
    ordered = sorted(columns, key=lambda c: c["name"] != "label")
    for column in ordered:
        values = column["values"]
        if column["type"] in LABEL_TYPES and values and 2 <= len(set(map(str, values))) < len(values):
            return values
    return None


def store_reduction(run_dir, embedding_id: str, reducer, vectors, coords, labels, *,
                    fitted_on: FittedOn | None = None, timeline=None, seconds: float = 0.0) -> ReductionRecord:
    """Write the coordinates blob and return the ``reduction`` record (seq and t set on append)."""
    coords = np.ascontiguousarray(coords, dtype=np.float32)
    sha, _ = files.write_blob(run_dir, npy_chunks(coords))
    quality = projection_quality(vectors, coords, labels, metric=getattr(reducer, "metric", "euclidean"))
    quality.update(reducer.summary())
    quality["seconds"] = round(float(seconds), 3)
    return ReductionRecord(id=uuid.uuid4().hex, embedding_id=embedding_id, method=reducer.method,
                           n_components=int(coords.shape[1]), params=plain_value(reducer.get_params()),
                           fitted_on=fitted_on, timeline=timeline,
                           coords=ArrayRef(sha256=sha, dtype="float32", shape=[int(s) for s in coords.shape]),
                           quality=quality)


def reduce_embedding(run_dir, embedding_id: str, step: int | None, vectors, labels, reducer, *,
                     timeline=None) -> tuple[ReductionRecord, bool]:
    """Reduce one embedding; a fitted reducer transforms, an unfitted one is fitted here.

    Returns (the reduction record, whether the reducer was fitted by this call).
    """
    start = time.perf_counter()
    if reducer.is_fitted:
        coords = reducer.transform(vectors)
        fitted_on = getattr(reducer, "fitted_on_", None) or FittedOn()
        fitted_now = False
    else:
        coords = reducer.fit_transform(vectors)
        reducer.fitted_on_ = FittedOn(embedding_id=embedding_id, step=step, embedding_ids=[embedding_id])
        fitted_on, fitted_now = None, True
    payload = store_reduction(run_dir, embedding_id, reducer, vectors, coords, labels, fitted_on=fitted_on,
                              timeline=timeline, seconds=time.perf_counter() - start)
    return payload, fitted_now


def describe(record: ReductionRecord, title: str | None = None, step=None, titles: dict | None = None) -> str:
    """One summary line for a stored reduction; ``titles`` (embedding id -> title) names a fitted-on
    embedding that has no step (Comet-style groups label their steps by title)."""
    q = record.quality
    head = f"{record.method} {record.n_components}d"
    if title is not None:
        head += f" of {title!r}" + (f" step {step}" if step is not None else "")
    fitted = record.fitted_on
    if fitted is not None:
        if fitted.step == "all":
            head += " (fitted on every step)"
        elif fitted.step is not None:
            head += f" (fitted on step {fitted.step})"
        elif fitted.embedding_id is not None and (titles or {}).get(fitted.embedding_id) is not None:
            head += f" (fitted on {titles[fitted.embedding_id]!r})"
    parts = [head]
    parts.append(f"{q.get('seconds', 0):.2f} s")
    if "trustworthiness" in q:
        parts.append(f"trustworthiness {q['trustworthiness']:.3f}")
    if "knn_label_agreement" in q:
        parts.append(f"10-NN label agreement {q['knn_label_agreement']:.3f}")
    if "explained_variance_ratio" in q:
        parts.append(f"explained variance {sum(q['explained_variance_ratio']):.3f}")
    return ", ".join(parts)
