"""The reductions of one live Experiment: what ``log_embedding(reduce=...)``, ``reduce_group``,
``log_activations`` and ``end()`` call into.

It builds typed jobs (``tasks.py``) and hands them to one of three executors
(``executor.py``): small PCA inline, larger PCA on a background thread, everything else in
a worker process. Results come back as futures; their records are appended by this process,
the one holding the run's writer. A reducer the worker fitted for a caller's instance
reaches that instance through ``Reducer.adopt_fitted``, called on the caller's thread at
its next ``log_embedding``, ``reduce_group`` or at ``end()``, never from a worker thread.

``finish`` is ``end()``'s wait: it waits while the running jobs make progress (their CPU
time grows), shows what it waits for, stops at ``end_timeout``, and on Ctrl-C or timeout
abandons the rest and says which ``tracker reduce`` commands compute it later.
"""

from __future__ import annotations

import copy
import logging
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidArgumentError
from .base import Reducer
from .jobs import describe, label_values
from .registry import available_reducers, get_reducer
from .tasks import EmbeddingJob, TimelineJob, resume_command

log = logging.getLogger("tracker_sdk")

#: default PCA runs inline up to this many vector elements (n_samples * n_features)
INLINE_LIMIT = 250_000
DEFAULT = "pca"
#: the default projection is skipped below this many rows (a handful of points needs none)
DEFAULT_MIN_ROWS = 3
#: end() stops waiting for a running reduction that used no CPU for this many seconds
STALL_SECONDS = 120.0


class Planned:
    """One reducer to apply to the next embedding."""

    def __init__(self, reducer: Reducer, token: str | None, is_default: bool):
        self.reducer, self.token, self.is_default = reducer, token, is_default


@dataclass
class Submitted:
    """A job handed to an executor; ``stored`` is set once its records (or its failure) are kept."""

    job: object
    executor: object
    future: object = None
    stored: threading.Event = field(default_factory=threading.Event)


def _check_background(value, argument="reduce_background"):
    if value is not None and not isinstance(value, bool):
        raise InvalidArgumentError(f"{argument} must be True, False or None (automatic); got {value!r}")
    return value


class ReductionSession:
    def __init__(self, writer, run_dir, *, quiet: bool | None = None):
        from .executor import InlineExecutor

        self.quiet = quiet
        self.writer = writer
        self.run_dir = Path(run_dir).absolute()  # the shared worker runs in another directory
        self.inline = InlineExecutor()
        self.thread = None
        self.process = None
        self.submitted: list[Submitted] = []
        self.summaries: list[str] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._tokens: dict[int, tuple[Reducer, str]] = {}  # id(user reducer) -> (reducer, token)
        self._token_executor: dict[str, object] = {}
        self._fitted: "queue.SimpleQueue[tuple[Reducer, Reducer]]" = queue.SimpleQueue()

    # -- executors ------------------------------------------------------------------------
    def _thread_executor(self):
        if self.thread is None:
            from .executor import ThreadExecutor

            self.thread = ThreadExecutor()
        return self.thread

    def _process_executor(self):
        if self.process is None:
            from .executor import ProcessExecutor

            self.process = ProcessExecutor()  # a bad TRACKER_REDUCE_KEEP_WARM is reported here, before writing
        return self.process

    # -- log_embedding --------------------------------------------------------------------
    def prepare(self, reduce, background=None) -> list[Planned]:
        """Validate ``reduce=`` before anything is written."""
        self.adopt_fitted()
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
                known = self._tokens.get(id(item))
                if known is None or known[0] is not item:
                    known = self._tokens[id(item)] = (item, uuid.uuid4().hex)
                planned.append(Planned(item, known[1], False))
            else:
                raise InvalidArgumentError(
                    f"reduce must be a reducer name ({', '.join(available_reducers())}), a Reducer, a list of "
                    f"them, or None for no reduction; got {type(item).__name__} {item!r}")
        if planned and background is not False and any(not self._small_pca(p, None) for p in planned):
            # the worker starts and imports the libraries while the vectors are written
            self._process_executor().start(warm=[p.reducer.method for p in planned])
        return planned

    @staticmethod
    def _small_pca(plan: Planned, size) -> bool:
        if type(plan.reducer).__module__ == "__main__":
            return True  # the worker cannot import a class defined in the user's script
        return plan.reducer.method == "pca" and (size is None or size <= INLINE_LIMIT)

    def _executor_for(self, plan: Planned, size: int, background, stored: bool):
        if plan.token is not None and plan.token in self._token_executor:
            return self._token_executor[plan.token]  # one instance stays where it was fitted
        if background is False or not stored or (background is None and self._small_pca(plan, size)):
            executor = self.inline
        elif background is None and self._small_pca(plan, None):
            executor = self._thread_executor()
        else:
            executor = self._process_executor()
        if plan.token is not None:
            self._token_executor[plan.token] = executor
        return executor

    def schedule(self, handle, planned: list[Planned], array, columns, vectors_sha: str | None,
                 background=None) -> None:
        if not planned:
            return
        n, dim = array.shape
        labels = label_values(columns)
        for plan in planned:
            reducer = plan.reducer
            if plan.is_default:
                k = min(3, n - 1, dim)
                if k < 2 or n < DEFAULT_MIN_ROWS:
                    continue  # too few rows or features for a useful picture
                if k != reducer.n_components:
                    reducer.set_params(n_components=k)
            label = f"{reducer.method} of {handle.title!r}" + (f" step {handle.step}" if handle.step is not None else "")
            executor = self._executor_for(plan, n * dim, background, vectors_sha is not None)
            user_reducer = None
            if executor is not self.inline and plan.token is not None:
                # the job gets its own copy: the caller's instance is only touched on the caller's thread
                if reducer.is_fitted:
                    reducer = copy.deepcopy(reducer)
                else:
                    user_reducer, reducer = reducer, type(reducer)(**reducer.get_params())
            job = EmbeddingJob(run_dir=str(self.run_dir), embedding_id=handle.id, step=handle.step,
                               vectors_sha=vectors_sha, labels=labels, reducer=reducer, label=label,
                               token=plan.token, return_fitted=user_reducer is not None,
                               vectors=array if executor is self.inline else None)
            self._submit(executor, job, handle, user_reducer)

    def _submit(self, executor, job, handle, user_reducer) -> None:
        item = Submitted(job, executor)
        with self._lock:
            self.submitted.append(item)
        item.future = executor.submit(job)
        item.future.add_done_callback(lambda future: self._store(item, future, handle, user_reducer))

    def _store(self, item: Submitted, future, handle, user_reducer) -> None:
        """Runs in the executor's thread: append the records, or keep the failure; never raises."""
        try:
            error = future.exception()
            if error is not None:
                message = f"reduction {item.job.label} failed: {error}; the raw embedding is stored and usable"
                self.failures.append(message)
                log.warning("tracker_sdk: %s", message)
                return
            result = future.result()
            for payload in result.payloads:
                self.writer.append(payload, durable=True)
                title = getattr(handle, "title", None)
                step = getattr(handle, "step", None) if handle is not None else None
                self.summaries.append(describe(payload, title, step))
            if user_reducer is not None and result.fitted is not None:
                self._fitted.put((user_reducer, result.fitted))
        except Exception as exc:  # e.g. the run was closed after an abandoned wait
            message = f"reduction {item.job.label} could not be stored: {type(exc).__name__}: {exc}"
            self.failures.append(message)
            log.warning("tracker_sdk: %s", message)
        finally:
            item.stored.set()

    def adopt_fitted(self) -> int:
        """On the caller's thread: give each caller's Reducer the state the worker fitted for it."""
        adopted = 0
        while True:
            try:
                user_reducer, fitted = self._fitted.get_nowait()
            except queue.Empty:
                return adopted
            if not user_reducer.is_fitted:  # the caller may have fitted it meanwhile: theirs wins
                user_reducer.adopt_fitted(fitted)
                adopted += 1

    # -- reduce_group ---------------------------------------------------------------------
    def reduce_group(self, group, title=None, method="umap", fit_on="last", background=None, *, align=None,
                     id_column=None, **params) -> str:
        from ..runformat import open_run
        from .timeline import check_align, check_fit_on, choose_fit_items, timeline_items

        self.adopt_fitted()
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
        items = timeline_items(open_run(self.run_dir), group, title, id_column)
        choose_fit_items(items, fit_on)  # a missing step is reported now, not in the worker
        align = check_align(align, fit_on, reducer, items)
        job = TimelineJob(run_dir=str(self.run_dir), items=items, reducer=reducer, fit_on=fit_on,
                          timeline=uuid.uuid4().hex, label=f"{reducer.method} timeline of group {group!r}",
                          group=group, title=title, align=align, id_column=id_column)
        if background is False or type(reducer).__module__ == "__main__":
            executor = self.inline
        elif background is None and reducer.method == "pca":
            executor = self._thread_executor()
        else:
            executor = self._process_executor()
        self._submit(executor, job, None, None)
        return job.timeline

    # -- end ------------------------------------------------------------------------------
    def pending(self) -> list[Submitted]:
        with self._lock:
            return [s for s in self.submitted if not s.stored.is_set()]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait, without display or abandoning, until every job so far is stored, then adopt fitted
        reducers on this (the caller's) thread; True when nothing is pending (benchmarks, tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for item in self.pending():
            if not item.stored.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
                return False
        self.adopt_fitted()
        return True

    def finish(self, timeout=None, at_exit: bool = False) -> None:
        """Wait for running reductions while they progress, then one summary line per reduction.

        Raises KeyboardInterrupt (after abandoning the rest and printing the commands that
        compute it later) when the user presses Ctrl-C during the wait. ``at_exit``: the
        script has finished, so fitted reducers are not loaded back into its objects.
        """
        if at_exit and self.process is not None:
            self.process.keep_fitted = False
        try:
            completed = self._wait(timeout)
        except KeyboardInterrupt:
            self._abandon("the run ended (Ctrl-C) before this reduction finished")
            self._close_executors()
            self._report()
            raise
        if not completed:
            self._abandon(f"the run ended: end_timeout={timeout} s passed before this reduction finished")
        self._close_executors()
        self.adopt_fitted()
        self._report()

    def _wait(self, timeout) -> bool:
        """True when every job is stored; False at the timeout. Stuck jobs are failed as they are found."""
        pending = self.pending()
        if not pending:
            return True
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        display = _WaitDisplay(len(self.submitted), self.run_dir, self.quiet)
        watch: dict[int, tuple[float, float]] = {}  # id(executor) -> (cpu seconds, when it last grew)
        try:
            while pending:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return False
                for executor in {id(s.executor): s.executor for s in pending}.values():
                    self._check_stall(executor, watch, now)
                display.update(len(self.submitted) - len(pending), self._running_label(pending), now - start)
                pending[0].stored.wait(0.1)
                pending = self.pending()
        finally:
            display.close(len(self.submitted) - len(pending))
        return True

    def _check_stall(self, executor, watch, now) -> None:
        running = executor.running()
        if running is None or running.cpu_seconds is None:
            watch.pop(id(executor), None)
            return
        last = watch.get(id(executor))
        if last is None or running.cpu_seconds > last[0]:
            watch[id(executor)] = (running.cpu_seconds, now)
        elif now - last[1] > STALL_SECONDS:
            watch.pop(id(executor), None)
            executor.abandon(f"{running.label} made no progress (no CPU time used) for {STALL_SECONDS:g} s; "
                             "its worker was stopped")

    @staticmethod
    def _running_label(pending) -> str:
        for item in pending:
            running = item.executor.running()
            if running is not None:
                return running.label
        return pending[0].job.label

    def _abandon(self, reason: str) -> None:
        left = self.pending()
        for executor in {id(s.executor): s.executor for s in left}.values():
            executor.abandon(reason)
        for item in left:
            item.stored.wait(5)
        if left:
            commands = list(dict.fromkeys(resume_command(s.job) for s in left))
            text = "\n".join(f"  {c}" for c in commands)
            log.info("tracker_sdk: %d reduction(s) were not computed; the raw embeddings are stored. Compute "
                     "them later with:\n%s", len(left), text)  # printed below too: logging may be unconfigured
            print(f"tracker_sdk: {len(left)} reduction(s) were not computed; the raw embeddings are stored. "
                  f"Compute them later with:\n{text}", file=sys.stderr, flush=True)

    def _close_executors(self) -> None:
        for executor in (self.thread, self.process):
            if executor is not None:
                executor.shutdown()

    def _report(self) -> None:
        for line in self.summaries:
            log.info("tracker_sdk: reduction %s", line)
        if self.failures:
            log.warning("tracker_sdk: %d reduction(s) failed: %s", len(self.failures), "; ".join(self.failures))


class _WaitDisplay:
    """What end() shows while it waits (``tracker_sdk._progress``): a bar with the running job on a
    terminal, else one plain line saying what it waits for (then a count now and then)."""

    def __init__(self, total: int, run_dir: Path, quiet: bool | None = None):
        self.total, self.run_dir, self.quiet = total, run_dir, quiet
        self.progress = None

    def update(self, done: int, label: str, waited: float) -> None:
        if waited < 0.5:
            return  # nothing to show for a wait this short
        from .._progress import Progress, on_terminal, say

        if self.progress is None:
            if not on_terminal():
                say(f"tracker_sdk: waiting for {self.total - done} reduction(s) of run {self.run_dir.name} "
                    f"(now: {label}); Ctrl-C stops waiting and keeps everything logged", quiet=self.quiet)
            self.progress = Progress(self.total, "tracker_sdk reductions", unit="job", quiet=self.quiet)
        if done > self.progress.n:
            self.progress.update(done - self.progress.n, status=label)
        else:
            self.progress.set_status(label)

    def close(self, done: int) -> None:
        if self.progress is not None:
            self.progress.close()
