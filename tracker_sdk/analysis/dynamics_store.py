"""Compute a group's dynamics from a stored run and store them: the link between
:mod:`tracker_sdk.analysis.dynamics` (pure functions on arrays) and the run format.

``analyze_dynamics(run, group)`` stores, in this order and only after everything was computed:

- per stored projection of every step, a ``columns`` record with ``reduction_id`` set holding
  ``trust_point`` and ``continuity_point``, its global trustworthiness and continuity in ``analysis``;
- per step after the first, a ``columns`` record of that step's embedding holding
  ``knn_jaccard_prev`` (each point's k-NN overlap with the previous step; None for rows not in it);
- one ``dynamics`` record (CKA matrix, Jaccard summaries, per-class separation and silhouette).

:func:`summary` turns a stored dynamics record back into the text ``tracker dynamics`` prints.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from .._progress import Progress
from ..errors import InvalidArgumentError
from ..runformat import RunWriter, encode_metadata, make_column, open_run
from ..runformat.reader import Embedding as StoredEmbedding
from ..runformat.reader import Run
from ..runformat.records import ColumnsRecord, DynamicsRecord, PairChange, metadata_ref
from . import dynamics
from .store import DEFAULT_LABEL_COLUMN

TRUST_COLUMN = "trust_point"
CONTINUITY_COLUMN = "continuity_point"
JACCARD_COLUMN = "knn_jaccard_prev"
#: points listed per pair of steps in the record and the summary
CHANGED_TOP = 10


@dataclass
class DynamicsResult:
    """What :func:`analyze_dynamics` computed and stored.

    Attributes
    ----------
    record : DynamicsRecord
        The stored record (CKA matrix, Jaccard summaries, separation per step and class).
    dynamics : dynamics.StepDynamics
        The arrays behind it (``jaccard`` is (n_steps - 1, n_shared)).
    embeddings : list
        The group's embeddings, one per step, in step order.
    trust : dict
        ``{reduction id: TrustScores}`` for every stored projection of those embeddings.
    seconds : float
    """

    record: DynamicsRecord
    dynamics: dynamics.StepDynamics
    embeddings: list
    trust: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def cka(self) -> np.ndarray:
        """Step x step linear CKA, shape (n_steps, n_steps)."""
        return self.dynamics.cka

    def changed_most(self, s: int, top: int = CHANGED_TOP) -> np.ndarray:
        """Rows of step s + 1's embedding whose neighbourhoods changed most since step s, most changed first."""
        return self.dynamics.rows[s + 1][self.dynamics.changed_most(s, top)]


def group_embeddings(run: Run, group: str, title: str | None = None) -> list[StoredEmbedding]:
    """The embeddings of ``group`` (and ``title``), one per step in step order (the last logged of a step wins)."""
    if not isinstance(group, str) or not group:
        raise InvalidArgumentError(f"group must be a group name; got {group!r}")
    found = [e for e in run.embeddings if e.group == group]
    if not found:
        groups = sorted({e.group for e in run.embeddings if e.group is not None})
        raise InvalidArgumentError(f"group {group!r} has no embeddings in run {run.run_id}; its groups are {groups}")
    titles = list(dict.fromkeys(e.title for e in found))
    if title is None and len(titles) > 1:
        raise InvalidArgumentError(f"group {group!r} holds several titles {titles}; pass title= (--title) to pick one")
    if title is not None:
        if title not in titles:
            raise InvalidArgumentError(f"group {group!r} has no title {title!r}; its titles are {titles}")
        found = [e for e in found if e.title == title]
    by_step: dict = {}
    for emb in found:
        by_step[emb.step] = emb
    if None in by_step and len(by_step) > 1:
        raise InvalidArgumentError(f"group {group!r} mixes embeddings with and without a step; log each with step=")
    return [by_step[s] for s in sorted(by_step, key=lambda s: -1 if s is None else s)]


def analyze_dynamics(target, group: str, *, title: str | None = None, k: int = 10,
                     label_column: str | None = DEFAULT_LABEL_COLUMN, id_column: str | None = None,
                     metric: str = "euclidean", writer: RunWriter | None = None,
                     quiet: bool | None = None) -> DynamicsResult:
    """Compute and store the dynamics of a group's steps and the trust of their projections.

    Parameters
    ----------
    target : path of a run directory or a Run from ``open_run``
    group : str
        The group logged with ``log_embedding(..., group=, step=)``: at least two steps.
    title : str, optional
        Only embeddings with this title (needed when a group holds several).
    k : int
        Neighbours per point, below half the number of shared rows.
    label_column : str or None
        Metadata column of classes for separation and silhouette. The default ``"label"`` is
        skipped when absent; another name must exist. None skips them.
    id_column : str, optional
        Metadata column of sample ids joining the steps; without it every step holds the same
        rows in the same order.
    metric : {"euclidean", "cosine"}
    writer : RunWriter, optional
        The open writer of a live experiment; otherwise the run is opened for appending.
    quiet : bool, optional

    Returns
    -------
    DynamicsResult
    """
    start = time.perf_counter()
    run = target if isinstance(target, Run) else open_run(Path(target))
    embs = group_embeddings(run, group, title)
    if len(embs) < 2:
        raise InvalidArgumentError(f"group {group!r} has {len(embs)} step; dynamics compare at least two steps")
    first_columns = embs[0].columns
    if label_column is not None and label_column not in first_columns:
        if label_column != DEFAULT_LABEL_COLUMN:
            raise InvalidArgumentError(f"label_column {label_column!r} is not a metadata column of embedding "
                                       f"{embs[0].id}; its columns are {list(first_columns)}")
        label_column = None
    ids = None
    if id_column is not None:
        ids = []
        for emb in embs:
            columns = emb.columns
            if id_column not in columns:
                raise InvalidArgumentError(f"id_column {id_column!r} is not a metadata column of embedding {emb.id} "
                                           f"(step {emb.step}); its columns are {list(columns)}")
            ids.append(columns[id_column])
    labels = first_columns[label_column] if label_column is not None else None
    steps = [np.asarray(emb.vectors) for emb in embs]
    result = dynamics.step_dynamics(steps, k, labels=labels, ids=ids, metric=metric, quiet=quiet)
    trust = _trust(embs, steps, k, metric, quiet)
    layers, layer_cka = _layer_cka(run, group, embs)
    record = _record(result, embs, group, title, k, label_column, id_column, time.perf_counter() - start)
    if layers:
        record = msgspec.structs.replace(record, layers=layers, layer_cka=layer_cka)
    own_writer = writer is None
    if own_writer:
        writer = RunWriter(run.path)
    try:
        record = _store(writer, embs, result, trust, record)
    finally:
        if own_writer:
            writer.close()
    return DynamicsResult(record, result, embs, trust, record.duration_s)


def _layer_cka(run: Run, group: str, embs) -> tuple[list, list]:
    """When the group holds several titles (layers), their layer x layer linear CKA at each of the
    analysed steps (rows are the same samples: a layer whose row count differs is left out, None)."""
    found = [e for e in run.embeddings if e.group == group]
    layers = list(dict.fromkeys(e.title for e in found))
    if len(layers) < 2:
        return [], []
    at = {(e.step, e.title): e for e in found}  # the last logged of a step and title wins
    matrices = []
    for emb in embs:
        present = [(i, at[(emb.step, t)]) for i, t in enumerate(layers)
                   if (emb.step, t) in at and at[(emb.step, t)].n == emb.n]
        matrix = [[None] * len(layers) for _ in layers]
        if len(present) >= 2:
            values = dynamics.cka_matrix([np.asarray(e.vectors) for _, e in present])
            for a, (i, _) in enumerate(present):
                for b, (j, _) in enumerate(present):
                    matrix[i][j] = _finite([values[a, b]])[0]
        matrices.append(matrix)
    return layers, matrices


def _trust(embs, steps, k: int, metric: str, quiet) -> dict:
    """TrustScores of every stored projection, one vector graph per embedding."""
    total = sum(len(emb.reductions) for emb in embs)
    out = {}
    with Progress(total, "tracker_sdk trust of projections", unit="projection", quiet=quiet) as progress:
        for emb, x in zip(embs, steps):
            if not emb.reductions:
                continue
            z = dynamics._for_ranks(dynamics._matrix(x, "vectors"), metric)
            graph = None  # found with the first projection's exact ranks, reused by the others
            for reduction in emb.reductions:
                progress.set_status(f"{reduction.method} of step {emb.step}")
                coords = dynamics._matrix(reduction.coords, "coords")
                dynamics._same_rows(z, coords, "vectors", "coords")
                out[reduction.id], graph, _ = dynamics._trust(z, coords, dynamics._check_k(k, z.shape[0]), "auto",
                                                              graph, None, 0, os.cpu_count() or 1)
                progress.update()
    return out


def _finite(values) -> list:
    """Floats with NaN and Inf as None (JSON has neither)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).ravel()]


def _record(result: dynamics.StepDynamics, embs, group, title, k, label_column, id_column, seconds) -> DynamicsRecord:
    changes = []
    for s in range(result.jaccard.shape[0]):
        values = result.jaccard[s]
        rows = result.rows[s + 1][result.changed_most(s, CHANGED_TOP)]
        changes.append(PairChange(mean=float(values.mean()), median=float(np.median(values)),
                                  low=float(np.quantile(values, 0.1)), changed_most=[int(r) for r in rows]))
    classes, separation, silhouette = ([], [], []) if result.classes is None else (
        list(result.classes), [_finite(row) for row in result.separation], [_finite(row) for row in result.silhouette])
    return DynamicsRecord(
        group=group, title=title, embedding_ids=[e.id for e in embs], steps=[e.step for e in embs],
        k_neighbors=k, label_column=label_column, id_column=id_column, n_shared=int(result.rows[0].size),
        cka=[_finite(row) for row in result.cka], changes=changes, duration_s=round(seconds, 3),
        classes=classes, separation=separation, silhouette=silhouette,
        silhouette_rows=dynamics.silhouette_rows(int(result.rows[0].size)) if classes else None)


def _store(writer: RunWriter, embs, result: dynamics.StepDynamics, trust: dict,
           record: DynamicsRecord) -> DynamicsRecord:
    """Append the columns records, then the dynamics record; returns it as stamped."""
    for emb in embs:
        for reduction in emb.reductions:
            scores = trust[reduction.id]
            columns = [make_column(TRUST_COLUMN, scores.trust_point), make_column(CONTINUITY_COLUMN,
                                                                                  scores.continuity_point)]
            sha, _ = writer.write_blob([encode_metadata(columns, emb.n)])
            analysis = {"trustworthiness": scores.trustworthiness, "continuity": scores.continuity,
                        "k": scores.k, "exact": scores.exact}
            writer.append(ColumnsRecord(embedding_id=emb.id, reduction_id=reduction.id,
                                        metadata=metadata_ref(sha, columns), analysis=analysis))
    for s in range(1, len(embs)):
        emb, rows = embs[s], result.rows[s]
        if rows.size == emb.n:
            values = np.empty(emb.n)
            values[rows] = result.jaccard[s - 1]
            column = make_column(JACCARD_COLUMN, values)
        else:  # rows missing from another step have no overlap to report
            cells: list = [None] * emb.n
            for row, value in zip(rows.tolist(), result.jaccard[s - 1].tolist()):
                cells[row] = value
            column = make_column(JACCARD_COLUMN, cells)
        sha, _ = writer.write_blob([encode_metadata([column], emb.n)])
        writer.append(ColumnsRecord(embedding_id=emb.id, metadata=metadata_ref(sha, [column]),
                                    analysis={"k": record.k_neighbors, "previous": embs[s - 1].id}))
    return writer.append(record, durable=True)


# --------------------------------------------------------------------------- reading back

def summary(run: Run, record: DynamicsRecord, top: int = CHANGED_TOP) -> str:
    """The text ``tracker dynamics`` prints: CKA of consecutive steps, the points that changed
    most between each pair, and each class's separation trend, from the stored records."""
    steps = [str(s) for s in record.steps]
    what = f"group {record.group!r}" + (f" title {record.title!r}" if record.title else "")
    lines = [f"dynamics of {what}: {len(steps)} steps, {record.n_shared} shared points, k={record.k_neighbors}",
             "", "step pair    CKA    mean k-NN Jaccard  (10th pct)"]
    for s, change in enumerate(record.changes):
        cka = record.cka[s][s + 1]
        lines.append(f"{steps[s]:>4} -> {steps[s + 1]:<4} {_num(cka):>6}  {change.mean:>8.3f}  ({change.low:.3f})")
    by_id = {e.id: e for e in run.embeddings}
    trusted = []
    for step, embedding_id in zip(steps, record.embedding_ids):
        emb = by_id.get(embedding_id)
        scores = [f"{r.method} {r.n_components}d {_num(r.trust_scores.get('trustworthiness'))} / "
                  f"{_num(r.trust_scores.get('continuity'))}" for r in (emb.reductions if emb else [])
                  if r.trust_scores]
        if scores:
            trusted.append(f"  step {step}: " + ", ".join(scores))
    if trusted:
        lines += ["", "projections (trustworthiness / continuity; per point: trust_point, continuity_point):"] + trusted
    for s, change in enumerate(record.changes):
        emb = by_id.get(record.embedding_ids[s + 1])
        columns = emb.columns if emb is not None else {}
        jaccard, labels = columns.get(JACCARD_COLUMN), columns.get(record.label_column) if record.label_column else None
        items = []
        for row in change.changed_most[:top]:
            text = f"{row}"
            if labels is not None:
                text += f" ({labels[row]})"
            if jaccard is not None and jaccard[row] is not None:
                text += f" {jaccard[row]:.2f}"
            items.append(text)
        lines += ["", f"changed most from step {steps[s]} to {steps[s + 1]} (row (label) Jaccard):", "  " +
                  ", ".join(items)]
    if record.layers and record.layer_cka:
        last = record.layer_cka[-1]
        width = max(len(name) for name in record.layers)
        lines += ["", f"layer CKA at step {steps[-1]}:"]
        lines += [f"  {name:>{width}}: " + " ".join(_num(v, 2) for v in row) for name, row in zip(record.layers, last)]
    if record.classes:
        lines += ["", f"class separation per step (centroid gap in spread units, {record.label_column!r}):"]
        trend = []
        for c, name in enumerate(record.classes):
            values = [row[c] for row in record.separation]
            first, last = values[0], values[-1]
            delta = (last - first) if first is not None and last is not None else None
            trend.append((-(delta if delta is not None else -math.inf), name, values, delta))
        for _, name, values, delta in sorted(trend, key=lambda t: t[0]):
            change = f"{delta:+.2f}" if delta is not None else "n/a"
            lines.append(f"  {str(name):>10}: {' '.join(_num(v, 2) for v in values)}  ({change})")
    return "\n".join(lines)


def _num(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
