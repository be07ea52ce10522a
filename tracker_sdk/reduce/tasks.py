"""Typed reduction jobs and ``execute``, the one function that runs a job wherever it runs.

Every executor (inline, thread, process; see ``executor.py``) and every caller (the
Experiment, ``reduce_group``, ``log_activations`` through ``log_embedding``, ``tracker
reduce``) builds one of these dataclasses; nobody writes a job dict by hand. A job only
computes and writes content-addressed coordinate blobs; its result carries the reduction
record payloads, which the process holding the run's writer appends.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field, replace

import numpy as np

from .base import Reducer


@dataclass
class EmbeddingJob:
    """Reduce one logged embedding: fit ``reducer`` on it, or transform with it when fitted.

    ``token`` names a caller's Reducer instance across jobs: the executor that fitted it
    for the first job keeps it and reuses it for the next ones (one fit, many steps).
    """

    run_dir: str
    embedding_id: str
    step: int | None
    vectors_sha: str | None
    labels: list | None
    reducer: Reducer
    label: str
    token: str | None = None
    #: send the fitted reducer back (the caller's own instance was unfitted)
    return_fitted: bool = False
    #: the vectors in memory, for the inline executor only (never sent to a process)
    vectors: np.ndarray | None = field(default=None, repr=False)

    @property
    def timeline(self) -> str | None:
        return self.token

    def for_transport(self) -> "EmbeddingJob":
        """A copy without the in-memory vectors: a worker reads them from their blob."""
        return replace(self, vectors=None) if self.vectors is not None else self


@dataclass
class TimelineJob:
    """Fit one reducer on a chosen step of a group and place every step with it."""

    run_dir: str
    items: list[dict]
    reducer: Reducer
    fit_on: object
    timeline: str
    label: str
    group: str | None = None
    title: str | None = None
    #: with fit_on="each": None, "procrustes" or "aligned_umap"
    align: str | None = None
    #: metadata column of sample ids the aligned steps are joined on (its values are in the items)
    id_column: str | None = None

    def for_transport(self) -> "TimelineJob":
        return self


Job = EmbeddingJob | TimelineJob


@dataclass
class JobResult:
    """What a job produced: reduction payloads to append, and the fitted reducer when asked for.

    ``fitted`` is a Reducer, or its pickle while it travels back from a worker process
    (``load_fitted`` turns it back into a Reducer off the training thread).
    """

    payloads: list[dict]
    fitted: Reducer | bytes | None = None
    seconds: float = 0.0

    def pickled(self) -> "JobResult":
        """This result with ``fitted`` as bytes (what a worker process sends)."""
        if isinstance(self.fitted, Reducer):
            return replace(self, fitted=pickle.dumps(self.fitted, protocol=pickle.HIGHEST_PROTOCOL))
        return self

    def load_fitted(self) -> "JobResult":
        if isinstance(self.fitted, bytes):
            return replace(self, fitted=pickle.loads(self.fitted))
        return self


def resume_command(job: Job) -> str:
    """The `tracker reduce` command (``commands/reduce.py``) that computes ``job`` later, from its run on disk."""
    import json
    import shlex

    from .._convert import plain_value

    reducer = job.reducer
    try:
        defaults = type(reducer)().get_params()
    except Exception:  # a reducer without defaults for every parameter: spell them all out
        defaults = {}
    words = ["tracker", "reduce", str(job.run_dir)]
    if isinstance(job, TimelineJob):
        words += (["--group", str(job.group)] if job.group is not None else []) + (
            ["--title", job.title] if job.title is not None else [])
        words += ["--fit-on", str(job.fit_on)] if job.fit_on != "last" else []
        words += ["--align", job.align] if job.align is not None else []
        words += ["--id-column", job.id_column] if job.id_column is not None else []
    else:
        words += ["--embedding", job.embedding_id]
    words += ["--method", reducer.method, "--n-components", str(reducer.n_components)]
    for name, value in reducer.get_params().items():
        if name != "n_components" and value != defaults.get(name):
            words += ["--param", f"{name}={json.dumps(plain_value(value))}"]
    return " ".join(shlex.quote(w) for w in words)


def execute(job: Job, cache: dict) -> JobResult:
    """Run one job; ``cache`` maps tokens to reducers this executor fitted for earlier jobs."""
    from ..runformat import files, load_npy
    from .jobs import reduce_embedding
    from .timeline import reduce_timeline

    start = time.perf_counter()

    def load(sha):
        return load_npy(files.blob_path(job.run_dir, sha))

    if isinstance(job, EmbeddingJob):
        reducer = job.reducer
        if job.token is not None and not reducer.is_fitted and job.token in cache:
            reducer = cache[job.token]  # fitted by an earlier job here; the caller has not heard yet
        X = job.vectors if job.vectors is not None else load(job.vectors_sha)
        payload, fitted_now = reduce_embedding(job.run_dir, job.embedding_id, job.step, X,
                                               job.labels, reducer, timeline=job.timeline)
        if job.token is not None and fitted_now:
            cache[job.token] = reducer
        fitted = reducer if fitted_now and job.return_fitted else None
        return JobResult([payload], fitted, time.perf_counter() - start)
    if isinstance(job, TimelineJob):
        payloads = reduce_timeline(job.run_dir, job.items, lambda item: load(item["vectors_sha"]), job.reducer,
                                   job.fit_on, timeline=job.timeline, align=job.align)
        return JobResult(payloads, None, time.perf_counter() - start)
    raise TypeError(f"a reduction job must be an EmbeddingJob or a TimelineJob; got {type(job).__name__}")
