"""Timelines: one reducer fitted on a chosen step of a group and applied to every step.

Positions are then comparable across steps (fit on the final epoch, apply to all). Rows
whose vector is byte-identical to a row of the fitted data get exactly that row's
coordinates, so an unchanged point never moves, whatever the method.

``fit_on="each"`` fits every step on its own instead, optionally aligned onto the previous
step (``align="procrustes"``: rotated, reflected, scaled and shifted by
:func:`tracker_sdk.analysis.dynamics.align_steps`; ``align="aligned_umap"``: umap-learn's
AlignedUMAP fits all steps together). Each record's quality then holds ``stability``: the mean
distance a point moved from the previous (aligned) step, in layout units (None at the first).
"""

from __future__ import annotations

import math
import time
import uuid
import warnings

import msgspec
import numpy as np

from ..errors import InvalidArgumentError
from ..runformat.records import FittedOn
from .jobs import label_values, store_reduction

#: how ``fit_on="each"`` fits are aligned onto the previous step (None: not at all)
ALIGNS = ("procrustes", "aligned_umap")


def check_fit_on(fit_on):
    if fit_on in ("last", "all", "each"):
        return fit_on
    if isinstance(fit_on, (int, np.integer)) and not isinstance(fit_on, bool) and fit_on >= 0:
        return int(fit_on)
    if isinstance(fit_on, str) and fit_on.isdigit():
        return int(fit_on)
    raise InvalidArgumentError(f"fit_on must be 'last', 'all', 'each' or a step (non-negative int); got {fit_on!r}")


def check_align(align, fit_on, reducer, items: list[dict]):
    """``align`` if it fits the other settings; raised before any job starts. Items with ``ids``
    (see :func:`timeline_items`) are aligned on their shared ids, others row by row."""
    if align is None:
        if any("ids" in it for it in items):
            raise InvalidArgumentError("id_column joins the steps of aligned fits; it needs align='procrustes' or "
                                       "'aligned_umap' (with fit_on='each')")
        return None
    if align not in ALIGNS:
        raise InvalidArgumentError(f"align must be one of {ALIGNS} or None; got {align!r}")
    if fit_on != "each":
        raise InvalidArgumentError(f"align={align!r} aligns separate fits, so it needs fit_on='each'; got fit_on={fit_on!r}")
    if align == "aligned_umap" and reducer.method != "umap":
        raise InvalidArgumentError(f"align='aligned_umap' needs method 'umap'; got {reducer.method!r}")
    sizes = {it["n"] for it in items}
    if len(sizes) > 1 and any("ids" not in it for it in items):
        raise InvalidArgumentError(f"align={align!r} matches rows by position, so every step must hold the same rows; "
                                   f"the steps hold {sorted(sizes)} rows (or join them on an id column: id_column=)")
    if all("ids" in it for it in items):
        from ..analysis.dynamics import align_rows
        for before, after in zip(items, items[1:]):
            align_rows(before["ids"], after["ids"])  # unique ids, at least one shared: checked now
    return align


def group_embeddings(run, group: str, title: str | None = None) -> list:
    """The reader's embeddings of ``group`` (and ``title``; ``group=None`` means ungrouped ones), ordered by
    step, then logging order: Comet-style steps (``title="epoch-3"``, no step) follow the order they were logged."""
    found = [e for e in run.embeddings if e.group == group and (title is None or e.title == title)]
    if not found:
        groups = sorted({str(e.group) for e in run.embeddings if e.group is not None})
        if group is None:
            titles = sorted({e.title for e in run.embeddings if e.group is None})
            raise InvalidArgumentError(f"run {run.run_id} has no ungrouped embeddings titled {title!r}; ungrouped "
                                       f"titles: {titles or 'none'}; groups: {groups or 'none'}")
        what = f"group {group!r}" + (f" with title {title!r}" if title is not None else "")
        raise InvalidArgumentError(f"run {run.run_id} has no embeddings in {what}; its groups: {groups or 'none'}")
    dims = {e.dim for e in found}
    if len(dims) > 1:
        titles = sorted({e.title for e in found})
        raise InvalidArgumentError(f"embeddings of group {group!r} have different dimensions {sorted(dims)}; "
                                   f"pick one title (one of {titles})")
    order = {id(e): i for i, e in enumerate(found)}
    return sorted(found, key=lambda e: (e.step is None, e.step if e.step is not None else 0, order[id(e)]))


def timeline_items(run, group: str, title: str | None = None, id_column: str | None = None) -> list[dict]:
    """What a timeline job needs per embedding: id, step, vectors blob, label values (and sample
    ids from ``id_column``, which aligned fits join consecutive steps on)."""
    items = []
    for e in group_embeddings(run, group, title):
        item = {"id": e.id, "step": e.step, "vectors_sha": e.record.vectors.sha256, "n": e.record.n,
                "labels": label_values(e.metadata["columns"])}
        if id_column is not None:
            columns = e.columns
            if id_column not in columns:
                raise InvalidArgumentError(f"id_column {id_column!r} is not a metadata column of embedding {e.id} "
                                           f"(step {e.step}); its columns are {list(columns)}")
            item["ids"] = columns[id_column]
        items.append(item)
    return items


def choose_fit_items(items: list[dict], fit_on) -> list[int]:
    steps = [it["step"] for it in items]
    if fit_on in ("all", "each"):
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
                    timeline: str | None = None, align: str | None = None) -> list[dict]:
    """Fit ``reducer`` on the chosen items and place every item with it.

    ``items`` come from :func:`timeline_items`; ``load_vectors(item)`` returns its (n, d) array.
    Returns one reduction payload per item, all sharing one timeline id. With
    ``fit_on="each"`` every item gets its own fit (see :func:`reduce_each`).
    """
    fit_on = check_fit_on(fit_on)
    timeline = timeline or uuid.uuid4().hex
    if fit_on == "each":
        return reduce_each(run_dir, items, load_vectors, reducer, timeline=timeline, align=align)
    fit_idx = choose_fit_items(items, fit_on)
    start = time.perf_counter()
    fit_parts = [np.asarray(load_vectors(items[i]), dtype=np.float32) for i in fit_idx]
    fit_X = np.concatenate(fit_parts) if len(fit_parts) > 1 else fit_parts[0]
    fit_coords = reducer.fit_transform(fit_X)
    fit_seconds = time.perf_counter() - start
    bounds = np.cumsum([0] + [len(p) for p in fit_parts])
    fitted_on = FittedOn(embedding_id=items[fit_idx[0]]["id"] if len(fit_idx) == 1 else None,
                         step="all" if fit_on == "all" else items[fit_idx[0]]["step"],
                         embedding_ids=[items[i]["id"] for i in fit_idx])
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


def reduce_each(run_dir, items: list[dict], load_vectors, reducer, *, timeline: str, align: str | None = None) -> list:
    """Fit every item on its own (a fresh copy of ``reducer`` each), aligned onto the previous
    step when ``align`` says how; every record's quality gets ``stability`` and ``align``."""
    from ..analysis.dynamics import align_rows, align_steps, stability

    align = check_align(align, "each", reducer, items)
    ids = [item["ids"] for item in items] if all("ids" in item for item in items) else None
    pairs = [None if ids is None else align_rows(ids[s - 1], ids[s]) for s in range(1, len(items))]
    vectors = [np.asarray(load_vectors(item), dtype=np.float32) for item in items]
    seconds = []
    if align == "aligned_umap":
        start = time.perf_counter()
        layouts = _aligned_umap(reducer, vectors, pairs)
        seconds = [(time.perf_counter() - start) / len(items)] * len(items)
        fitted = [reducer] * len(items)  # AlignedUMAP is the model: nothing of a per-step reducer to summarise
    else:
        layouts, fitted = [], []
        for X in vectors:
            start = time.perf_counter()
            fitted.append(type(reducer)(**reducer.get_params()))
            layouts.append(fitted[-1].fit_transform(X))
            seconds.append(time.perf_counter() - start)
    if align == "procrustes":
        layouts = align_steps(layouts, ids=ids).layouts
    moved = [None]
    for s in range(1, len(layouts)):
        same_rows = pairs[s - 1] is not None or layouts[s].shape == layouts[s - 1].shape
        moved.append(stability(layouts[s - 1], layouts[s], rows=pairs[s - 1]) if same_rows else None)
    payloads = []
    for item, own, X, coords, took, step_moved in zip(items, fitted, vectors, layouts, seconds, moved):
        record = store_reduction(run_dir, item["id"], own, X, coords, item.get("labels"),
                                 fitted_on=FittedOn(embedding_id=item["id"], step=item["step"],
                                                    embedding_ids=[item["id"]]),
                                 timeline=timeline, seconds=took)
        quality = dict(record.quality, align=align,
                       stability=None if step_moved is None or not math.isfinite(step_moved) else step_moved)
        payloads.append(msgspec.structs.replace(record, quality=quality))
    return payloads


def _aligned_umap(reducer, vectors: list, pairs: list) -> list:
    """umap-learn's AlignedUMAP on all steps at once, consecutive steps related row by row or by
    ``pairs`` (per consecutive pair, the rows of the shared ids: ``align_rows``)."""
    from .base import import_optional

    umap = import_optional("umap", "umap-learn", "align='aligned_umap'")
    params = reducer.get_params()
    n = min(x.shape[0] for x in vectors)
    relations = [{i: i for i in range(vectors[s].shape[0])} if pair is None else
                 dict(zip(pair[0].tolist(), pair[1].tolist())) for s, pair in enumerate(pairs)]
    model = umap.AlignedUMAP(n_components=params.get("n_components", 2),
                             n_neighbors=max(2, min(int(params.get("n_neighbors", 15)), n - 1)),
                             min_dist=params.get("min_dist", 0.1), metric=params.get("metric", "euclidean"),
                             n_epochs=params.get("n_epochs") or 200, random_state=params.get("random_state"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        model.fit(vectors, relations=relations)
    return [np.asarray(layout, dtype=np.float32) for layout in model.embeddings_]
