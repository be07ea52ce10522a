"""Timelines: one reducer fitted on a chosen step of a group and applied to every step.

Positions are then comparable across steps (fit on the final epoch, apply to all). Rows
whose vector is byte-identical to a row of the fitted data get exactly that row's
coordinates, so an unchanged point never moves, whatever the method.
"""

from __future__ import annotations

import time
import uuid

import numpy as np

from ..errors import InvalidArgumentError
from .jobs import label_values, store_reduction


def check_fit_on(fit_on):
    if fit_on in ("last", "all"):
        return fit_on
    if isinstance(fit_on, (int, np.integer)) and not isinstance(fit_on, bool) and fit_on >= 0:
        return int(fit_on)
    if isinstance(fit_on, str) and fit_on.isdigit():
        return int(fit_on)
    raise InvalidArgumentError(f"fit_on must be 'last', 'all' or a step (non-negative int); got {fit_on!r}")


def group_embeddings(run, group: str, title: str | None = None) -> list:
    """The reader's embeddings of ``group`` (and ``title``), ordered by step then logging order."""
    found = [e for e in run.embeddings if e.group == group and (title is None or e.title == title)]
    if not found:
        groups = sorted({str(e.group) for e in run.embeddings if e.group is not None})
        what = f"group {group!r}" + (f" with title {title!r}" if title is not None else "")
        raise InvalidArgumentError(f"run {run.run_id} has no embeddings in {what}; its groups: {groups or 'none'}")
    dims = {e.dim for e in found}
    if len(dims) > 1:
        titles = sorted({e.title for e in found})
        raise InvalidArgumentError(f"embeddings of group {group!r} have different dimensions {sorted(dims)}; "
                                   f"pick one title (one of {titles})")
    order = {id(e): i for i, e in enumerate(found)}
    return sorted(found, key=lambda e: (e.step is None, e.step if e.step is not None else 0, order[id(e)]))


def timeline_items(run, group: str, title: str | None = None) -> list[dict]:
    """What a timeline job needs per embedding: id, step, vectors blob, label values."""
    return [{"id": e.id, "step": e.step, "vectors_sha": e.record["vectors"]["sha256"],
             "labels": label_values(e.metadata["columns"])} for e in group_embeddings(run, group, title)]


def choose_fit_items(items: list[dict], fit_on) -> list[int]:
    steps = [it["step"] for it in items]
    if fit_on == "all":
        return list(range(len(items)))
    if fit_on == "last":
        known = [s for s in steps if s is not None]
        target = max(known) if known else None
        chosen = [i for i, s in enumerate(steps) if s == target]
        return chosen if target is not None else [len(items) - 1]
    chosen = [i for i, s in enumerate(steps) if s == fit_on]
    if not chosen:
        raise InvalidArgumentError(f"fit_on step {fit_on} is not a step of this group; its steps: "
                                   f"{sorted({s for s in steps if s is not None})}")
    return chosen


def _snap_identical(X: np.ndarray, coords: np.ndarray, fit_X: np.ndarray, fit_coords: np.ndarray) -> int:
    """Give rows equal to a fitted row that row's coordinates; returns how many were snapped."""
    probe = np.random.default_rng(0).normal(size=X.shape[1])
    keys = {}
    for i, key in enumerate(fit_X.astype(np.float64) @ probe):
        keys.setdefault(float(key), i)
    snapped = 0
    for i, key in enumerate(X.astype(np.float64) @ probe):
        j = keys.get(float(key))
        if j is not None and np.array_equal(X[i], fit_X[j]):
            coords[i] = fit_coords[j]
            snapped += 1
    return snapped


def reduce_timeline(run_dir, items: list[dict], load_vectors, reducer, fit_on="last", *,
                    timeline: str | None = None) -> list[dict]:
    """Fit ``reducer`` on the chosen items and place every item with it.

    ``items`` come from :func:`timeline_items`; ``load_vectors(item)`` returns its (n, d) array.
    Returns one reduction payload per item, all sharing one timeline id.
    """
    fit_on = check_fit_on(fit_on)
    timeline = timeline or uuid.uuid4().hex
    fit_idx = choose_fit_items(items, fit_on)
    start = time.perf_counter()
    fit_parts = [np.asarray(load_vectors(items[i]), dtype=np.float32) for i in fit_idx]
    fit_X = np.concatenate(fit_parts) if len(fit_parts) > 1 else fit_parts[0]
    fit_coords = reducer.fit_transform(fit_X)
    fit_seconds = time.perf_counter() - start
    bounds = np.cumsum([0] + [len(p) for p in fit_parts])
    fitted_on = {"embedding_id": items[fit_idx[0]]["id"] if len(fit_idx) == 1 else None,
                 "step": "all" if fit_on == "all" else items[fit_idx[0]]["step"],
                 "embedding_ids": [items[i]["id"] for i in fit_idx]}
    payloads = []
    for i, item in enumerate(items):
        t0 = time.perf_counter()
        if i in fit_idx:
            k = fit_idx.index(i)
            X, coords = fit_parts[k], fit_coords[bounds[k]:bounds[k + 1]].copy()
            seconds = fit_seconds * len(X) / len(fit_X)
        else:
            X = np.asarray(load_vectors(item), dtype=np.float32)
            coords = reducer.transform(X)
            _snap_identical(X, coords, fit_X, fit_coords)
            seconds = time.perf_counter() - t0
        payloads.append(store_reduction(run_dir, item["id"], reducer, X, coords, item.get("labels"),
                                        fitted_on=fitted_on, timeline=timeline, seconds=seconds))
    return payloads
