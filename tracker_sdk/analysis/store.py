"""Compute the analysis scores of logged embeddings and store them as metadata columns.

The columns (``outlier_score``, ``label_disagreement``, ``split_shift``: floats, None where
undefined) go into a ``columns`` record, so every reader, the viewer included, sees them next
to the labels; the parameters and the split summaries go into the same record.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._progress import Progress
from ..errors import InvalidArgumentError
from ..runformat import RunWriter, encode_metadata, make_column, open_run
from ..runformat.reader import Embedding as StoredEmbedding
from ..runformat.reader import Run
from ..runformat.records import ColumnsRecord, metadata_ref
from .neighbors import EXACT_LIMIT, METHODS, METRICS, knn_graph
from .scores import OUTLIER_METHODS, SplitComparison, label_disagreement, outlier_score, split_shift

log = logging.getLogger("tracker_sdk")

OUTLIER_COLUMN = "outlier_score"
LABEL_COLUMN = "label_disagreement"
SPLIT_COLUMN = "split_shift"
ANALYSIS_COLUMNS = (OUTLIER_COLUMN, LABEL_COLUMN, SPLIT_COLUMN)
DEFAULT_LABEL_COLUMN = "label"


@dataclass
class AnalysisResult:
    """Scores of one embedding; ``columns`` maps a column name to (n_samples,) floats."""

    embedding_id: str | None
    columns: dict = field(default_factory=dict)
    split: SplitComparison | None = None
    params: dict = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"{name}: max {np.nanmax(v):.3g}" for name, v in self.columns.items() if np.isfinite(v).any()]
        if self.split is not None:
            parts += [f"split {a} vs {b}: {v:.3f}" for (a, b), v in self.split.pairs.items()]
        return "; ".join(parts)


def compute(vectors, *, labels=None, splits=None, k: int = 10, metric: str = "euclidean", outlier: str = "knn",
            method: str = "auto") -> AnalysisResult:
    """Score vectors (n_samples, n_features) without storing anything.

    Parameters
    ----------
    labels, splits : list, length n_samples, optional
        Give labels for ``label_disagreement``, splits (e.g. "train"/"test") for ``split_shift``.
    k : int
        Neighbours per point, in the original space.
    metric : {"euclidean", "cosine"}
    outlier : {"knn", "lof"}
        Mean distance to the k neighbours, or the local outlier factor.
    method : {"auto", "exact", "approximate"}
        How the neighbours are found (see ``knn_graph``).
    """
    if outlier not in OUTLIER_METHODS:
        raise InvalidArgumentError(f"outlier must be one of {OUTLIER_METHODS}; got {outlier!r}")
    if metric not in METRICS:
        raise InvalidArgumentError(f"metric must be one of {METRICS}; got {metric!r}")
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS}; got {method!r}")
    start = time.perf_counter()
    x = np.asarray(vectors, dtype=np.float32)
    indices, distances = knn_graph(x, k, metric, method=method)
    n, d = x.shape
    used = method if method != "auto" else ("exact" if n * n * d <= EXACT_LIMIT else "approximate")
    result = AnalysisResult(None, params={"k": int(indices.shape[1]), "metric": metric, "outlier": outlier,
                                          "method": used})
    result.columns[OUTLIER_COLUMN] = outlier_score(indices, distances, method=outlier)
    if labels is not None:
        result.columns[LABEL_COLUMN] = label_disagreement(indices, labels)
    if splits is not None:
        result.split = split_shift(indices, splits)
        result.columns[SPLIT_COLUMN] = result.split.scores
    result.seconds = time.perf_counter() - start
    return result


def analyze(target, *, embedding=None, k: int = 10, metric: str = "euclidean", label_column: str | None = DEFAULT_LABEL_COLUMN,
            split_column: str | None = None, outlier: str = "knn", method: str = "auto",
            writer: RunWriter | None = None, quiet: bool | None = None) -> list[AnalysisResult]:
    """Compute the scores of stored embeddings and store them as metadata columns.

    Parameters
    ----------
    target : path of a run directory, a Run from ``open_run``, or one of its embeddings
    embedding : str or list of str, optional
        Embedding ids (or unique id prefixes) to analyse; default every embedding of the run.
    label_column : str or None
        Metadata column compared for ``label_disagreement``. The default ``"label"`` is skipped
        for an embedding without that column; another name must exist. None skips the score.
    split_column : str, optional
        Metadata column (such as "split") compared for ``split_shift``.
    writer : RunWriter, optional
        The open writer of a live experiment; otherwise the run is opened for appending.
    quiet : bool, optional
        True hides the progress shown per embedding (None: ``TRACKER_QUIET`` decides).

    Returns
    -------
    list of AnalysisResult, one per embedding.
    """
    run, chosen = _resolve(target, embedding)
    own_writer = writer is None
    if own_writer:
        writer = RunWriter(run.path)
    results = []
    progress = Progress(len(chosen), "analysing embeddings", unit="embedding", quiet=quiet)
    try:
        for emb in chosen:
            progress.set_status(f"{emb.title!r} step {emb.step}" if emb.step is not None else repr(emb.title))
            columns = emb.columns
            labels_name = label_column
            if labels_name is not None and labels_name not in columns:
                if label_column != DEFAULT_LABEL_COLUMN:
                    raise InvalidArgumentError(f"label_column {labels_name!r} is not a metadata column of embedding "
                                               f"{emb.id}; its columns are {list(columns)}")
                labels_name = None
            if split_column is not None and split_column not in columns:
                raise InvalidArgumentError(f"split_column {split_column!r} is not a metadata column of embedding "
                                           f"{emb.id}; its columns are {list(columns)}")
            result = compute(emb.vectors, labels=columns[labels_name] if labels_name else None,
                             splits=columns[split_column] if split_column else None, k=k, metric=metric,
                             outlier=outlier, method=method)
            result.embedding_id = emb.id
            result.params.update(label_column=labels_name, split_column=split_column)
            _store(writer, emb, result)
            progress.step_done(f"tracker_sdk: analysed embedding {emb.id} {emb.title!r} ({emb.n} x {emb.dim}) in "
                               f"{result.seconds:.1f} s: {result.summary()}")
            progress.update()
            results.append(result)
    finally:
        progress.close()
        if own_writer:
            writer.close()
    return results


def _resolve(target, embedding) -> tuple[Run, list[StoredEmbedding]]:
    if isinstance(target, StoredEmbedding):
        if embedding is not None:
            raise InvalidArgumentError("embedding must be None when target is already an embedding")
        return target.run, [target]
    run = target if isinstance(target, Run) else open_run(Path(target))
    if embedding is None:
        if not run.embeddings:
            raise InvalidArgumentError(f"run {run.path} has no embeddings to analyse")
        return run, list(run.embeddings)
    wanted = [embedding] if isinstance(embedding, str) else list(embedding)
    return run, [find_embedding(run, ref) for ref in wanted]


def find_embedding(run: Run, ref: str) -> StoredEmbedding:
    """The embedding whose id is ``ref`` or starts with it (a unique prefix of 4+ characters)."""
    if not isinstance(ref, str) or not ref:
        raise InvalidArgumentError(f"embedding must be an embedding id; got {ref!r}")
    exact = [e for e in run.embeddings if e.id == ref]
    if exact:
        return exact[0]
    matches = [e for e in run.embeddings if len(ref) >= 4 and e.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(f"{e.id} ({e.title!r}, step {e.step})" for e in run.embeddings) or "none"
    what = "matches several embeddings" if matches else "is not an embedding of this run"
    raise InvalidArgumentError(f"embedding {ref!r} {what}; the run has: {known}")


def _store(writer: RunWriter, emb: StoredEmbedding, result: AnalysisResult) -> None:
    columns = [make_column(name, values.tolist()) for name, values in result.columns.items()]
    sha, _ = writer.write_blob([encode_metadata(columns, emb.n)])
    analysis = dict(result.params, seconds=round(result.seconds, 3))
    if result.split is not None:
        analysis["split_pairs"] = [[a, b, v] for (a, b), v in result.split.pairs.items()]
    writer.append(ColumnsRecord(embedding_id=emb.id, metadata=metadata_ref(sha, columns), analysis=analysis),
                  durable=True)
