"""The reductions of one live Experiment: what ``log_embedding(reduce=...)``,
``reduce_group`` and ``end()`` call into.

Small PCA runs inline; larger PCA by name runs on a background thread of this process
(numpy releases the GIL, and starting a process costs more than the PCA itself); everything
else goes to the background worker process. Results are appended to the journal by this
process, the one holding the run's writer. See the README for the measurements.
"""

from __future__ import annotations

import logging
import pickle
import weakref
from pathlib import Path

from ..errors import InvalidArgumentError
from .base import Reducer
from .jobs import describe, label_values
from .registry import available_reducers, get_reducer

log = logging.getLogger("tracker_sdk")

#: default PCA runs inline up to this many vector elements (n_samples * n_features)
INLINE_LIMIT = 250_000
DEFAULT = "pca"
#: the default projection is skipped below this many rows (a handful of points needs none)
DEFAULT_MIN_ROWS = 3


class Planned:
    """One reducer to apply to the next embedding."""

    def __init__(self, reducer: Reducer, token: str | None, is_default: bool):
        self.reducer, self.token, self.is_default = reducer, token, is_default


def _check_background(value, argument="reduce_background"):
    if value is not None and not isinstance(value, bool):
        raise InvalidArgumentError(f"{argument} must be True, False or None (automatic); got {value!r}")
    return value


class ReductionSession:
    def __init__(self, writer, run_dir):
        self.writer = writer
        self.run_dir = Path(run_dir).absolute()  # the shared worker runs in another directory
        self.scheduler = None
        self.threads = None
        self.summaries: list[str] = []
        self.failures: list[str] = []
        self._tokens: "weakref.WeakKeyDictionary[Reducer, str]" = weakref.WeakKeyDictionary()
        self._inline_cache: dict = {}

    # -- log_embedding --------------------------------------------------------------------
    def prepare(self, reduce, background=None) -> list[Planned]:
        """Validate ``reduce=`` before anything is written."""
        _check_background(background)
        if reduce is None or reduce is False:
            return []
        items = list(reduce) if isinstance(reduce, (list, tuple)) else [reduce]
        planned = []
        for item in items:
            if isinstance(item, str):
                planned.append(Planned(get_reducer(item), None, item == DEFAULT and reduce == DEFAULT))
            elif isinstance(item, Reducer):
                item.check_params()
                token = self._tokens.get(item)
                if token is None:
                    from .worker import new_token

                    token = self._tokens[item] = new_token()
                planned.append(Planned(item, token, False))
            else:
                raise InvalidArgumentError(
                    f"reduce must be a reducer name ({', '.join(available_reducers())}), a Reducer, a list of "
                    f"them, or None for no reduction; got {type(item).__name__} {item!r}")
        if planned and background is not False and any(not self._runs_inline(p, None) for p in planned):
            # the worker starts and imports the libraries while the vectors are written
            self._scheduler().start(warm=[p.reducer.method for p in planned])
        return planned

    def _runs_inline(self, plan: Planned, size) -> bool:
        if type(plan.reducer).__module__ == "__main__":
            return True  # the worker cannot import a class defined in the user's script
        return plan.reducer.method == "pca" and (size is None or size <= INLINE_LIMIT)

    def _scheduler(self):
        if self.scheduler is None:
            from .worker import Scheduler

            self.scheduler = Scheduler()
        return self.scheduler

    def schedule(self, handle, planned: list[Planned], array, columns, vectors_sha: str | None,
                 background=None) -> None:
        if not planned:
            return
        n, dim = array.shape
        labels = label_values(columns)
        embedding = {"id": handle.id, "step": handle.step, "vectors_sha": vectors_sha}
        for plan in planned:
            reducer = plan.reducer
            if plan.is_default:
                k = min(3, n - 1, dim)
                if k < 2 or n < DEFAULT_MIN_ROWS:
                    continue  # too few rows or features for a useful picture
                if k != reducer.n_components:
                    reducer.set_params(n_components=k)
            label = f"{reducer.method} of {handle.title!r}" + (f" step {handle.step}" if handle.step is not None else "")
            job = {"kind": "embedding", "run_dir": str(self.run_dir), "embedding": embedding, "labels": labels,
                   "reducer": reducer, "token": plan.token, "timeline": plan.token,
                   "return_state": plan.token is not None and not reducer.is_fitted}
            inline = background is False or vectors_sha is None or (
                background is None and self._runs_inline(plan, n * dim))
            if inline:
                self._run_inline(job, array, label, handle)
            elif background is None and plan.token is None and self._runs_inline(plan, None):
                self._thread_pool().submit(self._run_on_thread, job, vectors_sha, label, handle)
            else:
                self._scheduler().submit(job, label, self._on_done(job, label, handle, reducer))

    def _thread_pool(self):
        if self.threads is None:
            from concurrent.futures import ThreadPoolExecutor

            self.threads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-reduce")
        return self.threads

    def _run_on_thread(self, job, vectors_sha, label, handle) -> None:
        """Reduce the stored vectors (memory-mapped): the caller may change its array meanwhile."""
        from ..runformat import blob_path, load_npy

        self._run_inline(job, load_npy(blob_path(self.run_dir, vectors_sha)), label, handle, cache={})

    def _run_inline(self, job, array, label, handle, cache=None) -> None:
        from .worker import run_job

        try:
            result = {"ok": True, **run_job(job, self._inline_cache if cache is None else cache, vectors=array)}
        except Exception as exc:  # a failed reduction never takes the training loop down
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self._store(result, label, handle, None)

    def _on_done(self, job, label, handle, user_reducer):
        def done(result):
            self._store(result, label, handle, user_reducer if job.get("return_state") else None)
        return done

    def _store(self, result, label, handle, user_reducer) -> None:
        if not result.get("ok"):
            message = f"reduction {label} failed: {result.get('error')}; the raw embedding is stored and usable"
            self.failures.append(message)
            log.warning("tracker_sdk: %s", message)
            return
        for payload in result["payloads"]:
            self.writer.append("reduction", payload, durable=True)
            title = getattr(handle, "title", None)
            step = getattr(handle, "step", None) if handle is not None else None
            self.summaries.append(describe(payload, title, step))
        state = result.get("state")
        if user_reducer is not None and state is not None and not user_reducer.is_fitted:
            try:
                state = pickle.loads(state) if isinstance(state, bytes) else state  # bytes from the worker
            except Exception as exc:
                log.warning("tracker_sdk: the reducer fitted for %s could not be loaded here (%s: %s); it stays "
                            "unfitted in this process", label, type(exc).__name__, exc)
                return
            user_reducer.__dict__.update(state)  # the caller's instance is now the fitted one

    # -- reduce_group ---------------------------------------------------------------------
    def reduce_group(self, group, title=None, method="umap", fit_on="last", background=None, **params) -> str:
        from ..runformat import open_run
        from .timeline import check_fit_on, choose_fit_items, timeline_items
        from .worker import new_token

        _check_background(background, "background")
        fit_on = check_fit_on(fit_on)
        if isinstance(method, Reducer):
            if params:
                raise InvalidArgumentError(f"pass parameters either in the Reducer or as keywords, not both; got {sorted(params)}")
            reducer = type(method)(**method.get_params())  # a fresh copy: the timeline fits its own
            reducer.check_params()
        else:
            reducer = get_reducer(method, **params)
        self.writer.sync()
        items = timeline_items(open_run(self.run_dir), group, title)
        choose_fit_items(items, fit_on)  # a missing step is reported now, not in the worker
        timeline = new_token()
        job = {"kind": "timeline", "run_dir": str(self.run_dir), "items": items, "reducer": reducer,
               "fit_on": fit_on, "timeline": timeline}
        label = f"{reducer.method} timeline of group {group!r}"
        if background is False or type(reducer).__module__ == "__main__":
            from .worker import run_job

            try:
                result = {"ok": True, **run_job(job, {})}
            except Exception as exc:
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self._store(result, label, None, None)
        else:
            self._scheduler().submit(job, label, lambda result: self._store(result, label, None, None))
        return timeline

    # -- end ------------------------------------------------------------------------------
    def finish(self, timeout=None) -> None:
        """Wait for the reduction thread and the worker (progress bar), then one summary line per reduction."""
        if self.threads is not None:
            self.threads.shutdown(wait=True)
        if self.scheduler is not None:
            if not self.scheduler.close(timeout):
                log.warning("tracker_sdk: %d reductions did not finish within %s s and were abandoned; the raw "
                            "embeddings are stored, run `tracker reduce` to compute them", self.scheduler.pending, timeout)
        for line in self.summaries:
            log.info("tracker_sdk: reduction %s", line)
        if self.failures:
            log.warning("tracker_sdk: %d reduction(s) failed: %s", len(self.failures), "; ".join(self.failures))
