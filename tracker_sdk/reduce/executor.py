"""One reduction executor: ``submit(job) -> concurrent.futures.Future`` run inline, on a thread, or in a process.

Every reduction of the SDK goes through one of these three (the Experiment's session and
``tracker reduce``). A future resolves to a ``tasks.JobResult`` or fails with
``ReductionFailedError`` whose message says what happened: the reducer's own error, a worker
that could not start, a worker that died (a crash, or killed for memory), or a run that ended
first. Nothing here waits without bound: a job whose worker dies fails at once, and
``running()`` reports the CPU time each running job has used so a caller can tell a job that
makes progress from one that is stuck.

- ``InlineExecutor`` runs the job in the caller's thread before ``submit`` returns.
- ``ThreadExecutor`` runs jobs one at a time on a daemon thread of this process (PCA: numpy
  releases the GIL, and a process costs more than the PCA itself).
- ``ProcessExecutor`` sends jobs one at a time to a worker process: the shared warm worker
  when it is on and free (``shared_worker.py``), else a private child (``worker.py``).

The threads are our own, not ``ThreadPoolExecutor``'s: concurrent.futures stops accepting
work at interpreter exit before ``atexit`` handlers run, and a script that never calls
``end()`` must still get its reductions.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from ..errors import ReductionFailedError
from .tasks import Job, JobResult, execute

log = logging.getLogger("tracker_sdk")


@dataclass
class Running:
    """The job an executor is running now: its label, when it started, CPU seconds used so far."""

    label: str
    started: float
    cpu_seconds: float | None


def cpu_seconds(pid: int | None = None, tid: int | None = None) -> float | None:
    """User+system CPU seconds of a process (``pid``) or of a thread of this one (``tid``); None if unknown."""
    path = f"/proc/self/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    try:
        with open(path, "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _failed(message: str) -> ReductionFailedError:
    return ReductionFailedError(message)


class ReductionExecutor:
    """The interface: ``submit(job) -> Future[JobResult]``, ``running()``, ``shutdown()``, ``abandon()``."""

    kind = ""

    def submit(self, job: Job) -> Future:  # pragma: no cover - interface
        raise NotImplementedError

    def running(self) -> Running | None:
        return None

    def shutdown(self) -> None:
        """Release what the executor holds, after every submitted job finished."""

    def abandon(self, reason: str) -> None:
        """Fail every job not finished yet with ``reason`` and stop at once."""


class InlineExecutor(ReductionExecutor):
    """Runs each job in the calling thread; the future is done when ``submit`` returns."""

    kind = "inline"

    def __init__(self):
        self.cache: dict = {}

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        future.set_running_or_notify_cancel()
        try:
            result = execute(job, self.cache)
        except Exception as exc:  # a failed reduction never takes the training loop down
            future.set_exception(_failed(f"{type(exc).__name__}: {exc}"))
        else:
            future.set_result(result)
        return future


class _QueueExecutor(ReductionExecutor):
    """Jobs run one at a time, in order, on one daemon thread of ours."""

    def __init__(self):
        self._queue: "queue.SimpleQueue[tuple | None]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._current: tuple | None = None  # (job, future, started)
        self._abandoned: str | None = None

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name=f"tracker-reduce-{self.kind}")
                self._thread.start()

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        if self._abandoned is not None:
            future.set_exception(_failed(self._abandoned))
            return future
        self._ensure_thread()
        self._queue.put((job, future))
        return future

    def _loop(self) -> None:
        self.native_id = threading.get_native_id()
        while True:
            item = self._queue.get()
            if item is None:
                break
            if item[0] == "start":
                self._prepare(item[1])
                continue
            job, future = item
            if not future.set_running_or_notify_cancel():
                continue
            if self._abandoned is not None:
                future.set_exception(_failed(self._abandoned))
                continue
            self._current = (job, future, time.monotonic())
            try:
                result = self._run(job)
            except ReductionFailedError as exc:
                outcome = exc
            except Exception as exc:  # e.g. a reducer that cannot be pickled
                outcome = _failed(f"{type(exc).__name__}: {exc}")
            else:
                outcome = result
            self._current = None
            if future.done():  # abandoned while it ran
                continue
            if isinstance(outcome, JobResult):
                future.set_result(outcome)
            else:
                future.set_exception(outcome)
        self._close()

    def _prepare(self, warm) -> None:
        """Get ready before the first job (the process executor starts its worker here)."""

    def _run(self, job: Job) -> JobResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def _cpu(self) -> float | None:
        return None

    def running(self) -> Running | None:
        current = self._current
        if current is None:
            return None
        job, _, started = current
        return Running(job.label, started, self._cpu())

    def shutdown(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(30)

    def abandon(self, reason: str) -> None:
        self._abandoned = reason
        current = self._current
        if current is not None and not current[1].done():
            current[1].set_exception(_failed(reason))
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and item[0] != "start" and item[1].set_running_or_notify_cancel():
                item[1].set_exception(_failed(reason))
        self._stop_now()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)

    def _stop_now(self) -> None:
        pass


class ThreadExecutor(_QueueExecutor):
    """Runs jobs on a background thread of this process; jobs must own their reducer (a copy)."""

    kind = "thread"

    def __init__(self):
        super().__init__()
        self.cache: dict = {}
        self.native_id: int | None = None

    def _run(self, job: Job) -> JobResult:
        return execute(job, self.cache)

    def _cpu(self) -> float | None:
        return cpu_seconds(tid=self.native_id) if self.native_id is not None else None


class ProcessExecutor(_QueueExecutor):
    """Runs jobs in a worker process: the shared warm one when it is on and free, else a private child.

    ``keep_warm`` is the shared worker's idle time (``TRACKER_REDUCE_KEEP_WARM``, checked by
    the caller before anything is written); 0 means private children only.
    """

    kind = "process"

    def __init__(self, keep_warm: float | None = None, warm=()):
        super().__init__()
        from .shared_worker import keep_warm_seconds

        self.keep_warm = keep_warm_seconds() if keep_warm is None else keep_warm
        self.warm = sorted(set(warm))
        self._worker = None  # a SharedWorker connection or a private WorkerProcess
        self.worker_pid: int | None = None  # of the latest worker (the shared worker's pid when it is used)
        self.uses_shared_worker = False  # whether that latest worker is the shared one
        #: False once the caller's script has finished (end() at interpreter exit): fitted reducers
        #: are then not loaded back, which would import their library while Python shuts down
        self.keep_fitted = True
        self.start_error: str | None = None

    def start(self, warm=()) -> None:
        """Start the worker now, so its imports overlap with the caller's work."""
        self.warm = sorted(set(self.warm) | set(warm))
        if self._thread is None and self._abandoned is None:
            self._ensure_thread()
            self._queue.put(("start", tuple(self.warm)))

    def _prepare(self, warm) -> None:
        try:
            self._ensure_worker()
        except ReductionFailedError:
            pass  # the first job reports it (and tries again)

    def _ensure_worker(self):
        if self._worker is None or not self._worker.alive():
            from .shared_worker import attach
            from .worker import WorkerProcess

            worker = None
            if self.keep_warm > 0:
                try:
                    worker = attach(self.warm, self.keep_warm)
                except Exception as exc:  # the shared worker is an optimisation: fall back to a private one
                    log.debug("tracker_sdk: no shared reduction worker (%s: %s)", type(exc).__name__, exc)
            if worker is None:
                try:
                    worker = WorkerProcess(self.warm)
                except (OSError, ValueError) as exc:
                    self.start_error = f"the reduction worker process could not start ({type(exc).__name__}: {exc})"
                    raise _failed(self.start_error) from None
            self._worker, self.worker_pid, self.start_error = worker, worker.pid, None
            self.uses_shared_worker = worker.shared
        return self._worker

    def _run(self, job: Job) -> JobResult:
        from .worker import WorkerDied

        worker = self._ensure_worker()
        try:
            reply = worker.call(job.for_transport())
        except WorkerDied as exc:
            self._worker = None
            raise _failed(str(exc)) from None
        if not reply.get("ok"):
            raise _failed(reply.get("error", "the worker gave no reason"))
        result: JobResult = reply["result"]
        if reply.get("fitted_error"):
            log.warning("tracker_sdk: the reducer fitted for %s could not be sent back (%s); your instance stays "
                        "unfitted", job.label, reply["fitted_error"])
        if result.fitted is not None and not self.keep_fitted:
            result.fitted = None  # the script has finished (end() at exit): nobody can use it, skip the import
            return result
        try:
            return result.load_fitted()  # imports the reducer's library here, not on the training thread
        except Exception as exc:
            log.warning("tracker_sdk: the reducer fitted for %s could not be loaded here (%s: %s); your instance "
                        "stays unfitted", job.label, type(exc).__name__, exc)
            result.fitted = None
            return result

    def _cpu(self) -> float | None:
        return cpu_seconds(pid=self.worker_pid) if self.worker_pid is not None else None

    def _close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def _stop_now(self) -> None:
        worker = self._worker
        if worker is not None:
            worker.kill()  # the job in progress is ours alone: stop it rather than let it run on
