"""Projections the viewer asks for: background reduction jobs whose results are stored like any other.

``POST /runs/{run_id}/projections`` names an embedding, a method and its main parameters;
the job is built as the SDK builds its own (``tracker_sdk.reduce.tasks``: one embedding
fitted on itself, or every step of its group through one reducer, a timeline) and runs on
the SDK's executors (``tracker_sdk.reduce.executor``: PCA on a thread of the server,
t-SNE / UMAP / PaCMAP in a private worker process), one job at a time, on a thread of its
own, so no request ever waits for it. Its reduction records are appended through the
server's own writer of that run (``Store.append_own``), so the projection is in the run's
journal for every viewer and client afterwards. Job states (queued, running, done, failed
with the reducer's error) are kept in memory and polled by the page; a restart forgets
them, never the stored results. On scale-out storage
(:class:`~server_stub.shared_store.SharedProjectionJobs`) the same jobs run on a scratch run
directory of the replica that took them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from contextlib import contextmanager

from tracker_sdk.errors import InvalidArgumentError, ReductionFailedError

from .errors import BadRequest, NotFound
from .security import check_hex_id, check_run_id

log = logging.getLogger("server_stub.projections")

#: the parameters the page may set, per method, with their upper bounds (the rest keep the SDK's defaults)
PARAMS = {
    "pca": {"n_components": 3, "random_state": 2 ** 32 - 1},
    "tsne": {"n_components": 3, "perplexity": 500, "n_iter": 5000, "metric": None, "random_state": 2 ** 32 - 1},
    "umap": {"n_components": 3, "n_neighbors": 500, "min_dist": 1.0, "n_epochs": 5000, "metric": None,
             "random_state": 2 ** 32 - 1},
    "pacmap": {"n_components": 3, "n_neighbors": 500, "num_iters": 5000, "metric": None, "random_state": 2 ** 32 - 1},
}
SCOPES = ("embedding", "group")
MAX_JOBS_KEPT = 200


def check_request(body) -> dict:
    """The job request ``{embedding_id, method, params, scope}``, checked before anything runs."""
    from tracker_sdk.reduce import get_reducer

    if not isinstance(body, dict):
        raise BadRequest("body must be a map {\"embedding_id\": ..., \"method\": ..., \"params\": {...}}")
    embedding_id = check_hex_id(body.get("embedding_id"), "embedding_id")
    method = body.get("method")
    if method not in PARAMS:
        raise BadRequest(f"method must be one of {', '.join(PARAMS)}; got {str(method)[:40]!r}")
    scope = body.get("scope", "embedding")
    if scope not in SCOPES:
        raise BadRequest(f"scope must be 'embedding' or 'group'; got {str(scope)[:40]!r}")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise BadRequest(f"params must be a map of parameter names to values; got {type(params).__name__}")
    allowed = PARAMS[method]
    clean = {}
    for name, value in params.items():
        if name not in allowed:
            raise BadRequest(f"{method} parameter {str(name)[:40]!r} cannot be set from the viewer; "
                             f"settable: {', '.join(allowed)}")
        if value is None:
            continue
        if name == "metric":
            if value not in ("euclidean", "cosine"):
                raise BadRequest(f"metric must be 'euclidean' or 'cosine'; got {str(value)[:40]!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value > allowed[name]:
            raise BadRequest(f"{method} parameter {name!r} must be a number between 0 and {allowed[name]}; "
                             f"got {str(value)[:40]!r}")
        clean[name] = value
    try:
        get_reducer(method, **clean)  # the SDK's own checks: n_components 2 or 3, integer counts, ...
    except InvalidArgumentError as exc:
        raise BadRequest(str(exc)) from None
    return {"embedding_id": embedding_id, "method": method, "params": clean, "scope": scope}


class ProjectionJobs:
    """The server's queue of projection jobs, run one at a time on a daemon thread."""

    #: why a job id this server does not know may still have existed
    UNKNOWN_JOB = "jobs are forgotten when the server restarts"

    def __init__(self, store):
        self.store = store
        self._jobs: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._executor = None  # the executor of the running job (for its progress)
        self._closed = False

    # -- requests ------------------------------------------------------------------------
    def submit(self, run_id: str, body) -> dict:
        """Check the request and the run, build the job, queue it; returns its state (``queued``)."""
        check_run_id(run_id)
        spec = check_request(body)
        job = self._build(run_id, spec)  # reads the run: unknown embeddings and groups answer 4xx here
        entry = {"id": uuid.uuid4().hex, "run_id": run_id, "embedding_id": spec["embedding_id"],
                 "method": spec["method"], "params": spec["params"], "scope": spec["scope"], "label": job.label,
                 "state": "queued", "error": None, "created": time.time(), "started": None, "finished": None,
                 "reduction_ids": [], "_job": job}
        with self._lock:
            self._jobs[entry["id"]] = entry
            while len(self._jobs) > MAX_JOBS_KEPT:  # forget the oldest finished ones
                old = next((k for k, v in self._jobs.items() if v["state"] in ("done", "failed")), None)
                if old is None:
                    break
                del self._jobs[old]
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="tracker-server-projections")
                self._thread.start()
        self._queue.put(entry["id"])
        return self.public(entry)

    def get(self, run_id: str, job_id: str) -> dict:
        check_run_id(run_id)
        check_hex_id(job_id, "job_id")
        with self._lock:
            entry = self._jobs.get(job_id)
        if entry is None or entry["run_id"] != run_id:
            raise NotFound(f"run {run_id} has no projection job {job_id} ({self.UNKNOWN_JOB})")
        return self.public(entry)

    def list(self, run_id: str) -> list[dict]:
        check_run_id(run_id)
        self.store.run_dir(run_id)
        with self._lock:
            entries = [e for e in self._jobs.values() if e["run_id"] == run_id]
        return [self.public(e) for e in entries]

    def public(self, entry: dict) -> dict:
        out = {k: v for k, v in entry.items() if not k.startswith("_")}
        now = time.time()
        if entry["state"] == "running":
            out["elapsed"] = round(now - entry["started"], 1)
            executor = self._executor
            running = executor.running() if executor is not None else None
            if running is not None and running.cpu_seconds is not None:
                out["cpu_seconds"] = round(running.cpu_seconds, 1)
        elif entry["finished"] is not None and entry["started"] is not None:
            out["elapsed"] = round(entry["finished"] - entry["started"], 1)
        if entry["state"] == "queued":
            with self._lock:
                out["position"] = sum(1 for e in self._jobs.values()
                                      if e["state"] == "queued" and e["created"] < entry["created"])
        return out

    def close(self) -> None:
        """Stop after the running job; jobs still queued fail (the server is going away)."""
        self._closed = True
        executor = self._executor
        if executor is not None:
            executor.abandon("the server stopped")
        self._queue.put(None)

    # -- building and running ------------------------------------------------------------
    def _build(self, run_id: str, spec: dict):
        from tracker_sdk.reduce import get_reducer
        from tracker_sdk.reduce.jobs import label_values
        from tracker_sdk.reduce.tasks import EmbeddingJob, TimelineJob
        from tracker_sdk.reduce.timeline import timeline_items

        run = self.store.run(run_id)
        emb = self.store.embedding(run_id, spec["embedding_id"])
        reducer = get_reducer(spec["method"], **spec["params"])
        run_dir = str(run.path.absolute()) if run.path is not None else ""  # else set by _workspace
        if spec["scope"] == "group":
            if emb.group is None:
                raise BadRequest(f"embedding {emb.id} has no group: ask for scope 'embedding'")
            # every embedding of the group (Comet's titles "epoch-N" differ per step), unless
            # the group mixes dimensions: then those with this embedding's title
            title = None if len({e.dim for e in run.embeddings if e.group == emb.group}) == 1 else emb.title
            try:
                items = timeline_items(run, emb.group, title)
            except InvalidArgumentError as exc:
                raise BadRequest(str(exc)) from None
            return TimelineJob(run_dir=run_dir, items=items, reducer=reducer, fit_on="last",
                               timeline=uuid.uuid4().hex, label=f"{reducer.method} of group {emb.group!r}",
                               group=emb.group, title=title)
        what = f"step {emb.step}" if emb.step is not None else repr(emb.title)
        return EmbeddingJob(run_dir=run_dir, embedding_id=emb.id, step=emb.step, vectors_sha=emb.record.vectors.sha256,
                            labels=label_values(emb.metadata["columns"]), reducer=reducer,
                            label=f"{reducer.method} of {what}")

    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                entry = self._jobs.get(job_id)
            if entry is None:
                continue
            if self._closed:
                self._finish(entry, "failed", "the server stopped before the job ran")
                continue
            entry["started"] = time.time()
            entry["state"] = "running"
            try:
                entry["reduction_ids"] = self._run(entry)
            except ReductionFailedError as exc:
                self._finish(entry, "failed", str(exc))
            except Exception as exc:  # a failed job is reported on the job, never lost
                log.exception("projection job %s failed", job_id)
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                self._finish(entry, "failed", message)
            else:
                self._finish(entry, "done", None)

    def _finish(self, entry: dict, state: str, error: str | None) -> None:
        entry["error"] = error
        entry["finished"] = time.time()
        entry["state"] = state
        entry.pop("_job", None)

    def _run(self, entry: dict) -> list[str]:
        from tracker_sdk.reduce.executor import ProcessExecutor, ThreadExecutor

        job = entry["_job"]
        # PCA is cheaper than a process; the others run in a private worker (none outlives the server)
        executor = ThreadExecutor() if job.reducer.method == "pca" else ProcessExecutor(keep_warm=0, warm=[job.reducer.method])
        self._executor = executor
        try:
            with self._workspace(entry, job) as job:
                result = executor.submit(job).result()
                records = self._store(entry, job, result)
        finally:
            self._executor = None
            executor.shutdown()
        return [r.id for r in records]

    @contextmanager
    def _workspace(self, entry: dict, job):
        """The job as it runs: here on the run's own directory."""
        yield job

    def _store(self, entry: dict, job, result) -> list:
        """Append the job's reduction records (its blobs are in the run directory already)."""
        return self.store.append_own(entry["run_id"], result.payloads)
