"""The background reduction worker: a child process that runs one reduction at a time.

Why a separate process: numba and BLAS threads of UMAP/PaCMAP must not fight the training
thread, and a reducer that crashes or runs out of memory must not take training down.
The child is started with ``python -m tracker_sdk.reduce.worker`` (never by re-importing
the user's script) and talks over its stdin/stdout with length-prefixed pickles; nothing
pickled ever reaches the run directory. The child only computes and writes coordinate
blobs; the parent, which holds the run's writer, appends the reduction records.

    training thread --submit--> queue --collector thread--> child --result--> writer.append
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field

log = logging.getLogger("tracker_sdk")

_LEN = struct.Struct("<Q")


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


def _recv(stream):
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError("worker pipe closed")
    size = _LEN.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("worker pipe closed mid-message")
    return pickle.loads(data)


# -- jobs (run in the child, or inline) ------------------------------------------------------
def run_job(job: dict, cache: dict, vectors=None) -> dict:
    """Execute one job dict; ``cache`` maps reducer tokens to reducers fitted in this process."""
    from ..runformat import files, load_npy
    from .jobs import reduce_embedding
    from .timeline import reduce_timeline

    run_dir = job["run_dir"]

    def load(item):
        return load_npy(files.blob_path(run_dir, item["vectors_sha"]))

    if job["kind"] == "embedding":
        reducer, token = job["reducer"], job.get("token")
        if token is not None and not reducer.is_fitted and token in cache:
            reducer = cache[token]  # fitted by an earlier job of this worker; the parent has not heard yet
        X = load(job["embedding"]) if vectors is None else vectors
        payload, fitted_now = reduce_embedding(run_dir, job["embedding"], X, job.get("labels"), reducer,
                                               timeline=job.get("timeline"))
        if token is not None and fitted_now:
            cache[token] = reducer
        return {"payloads": [payload], "state": reducer.__dict__ if fitted_now and job.get("return_state") else None}
    if job["kind"] == "timeline":
        payloads = reduce_timeline(run_dir, job["items"], load, job["reducer"], job["fit_on"], timeline=job["timeline"])
        return {"payloads": payloads, "state": None}
    raise ValueError(f"unknown job kind {job['kind']!r}")


_LIBRARIES = {"umap": "umap", "pacmap": "pacmap", "tsne": "openTSNE"}


def _warm_up(methods) -> None:
    """Import the planned libraries (numba caching switched on) before the first job arrives."""
    from .base import import_optional

    for method in methods:
        try:
            import_optional(_LIBRARIES[method], _LIBRARIES[method], method) if method in _LIBRARIES else None
        except Exception:  # the job itself will report a missing or broken library
            pass


def lower_priority() -> None:
    try:
        os.nice(5)  # training keeps priority over reductions
    except OSError:
        pass


def apply_hello(hello: dict) -> None:
    """A client's greeting: make its import path visible, then import the libraries it plans to use."""
    for path in reversed(hello.get("sys_path", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    _warm_up(hello.get("warm", ()))


def _pickled_result(result: dict) -> bytes:
    """The fitted state travels as bytes inside the result: the parent stores the records first and
    unpickles it after (which imports the reducer's library there, a second or two)."""
    if result.get("state") is not None:
        try:
            result["state"] = pickle.dumps(result["state"], protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a fitted state that cannot be pickled: send the records anyway
            result["state"] = None
            result["state_error"] = f"{type(exc).__name__}: {exc}"
    return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)


def serve(proto_in, proto_out, guard=None) -> int:
    """Run one client's jobs, one at a time, until it says None or hangs up; 1 on Ctrl-C.

    ``guard``, when given, is a context manager factory entered around each job (the shared
    worker's watch for a client that disappears mid-job).
    """
    cache: dict = {}  # reducers fitted for this client only
    while True:
        try:
            job = _recv(proto_in)
        except (EOFError, OSError):
            return 0
        if job is None:
            return 0
        start = time.perf_counter()
        try:
            if guard is None:
                result = {"ok": True, **run_job(job, cache)}
            else:
                with guard():
                    result = {"ok": True, **run_job(job, cache)}
        except BaseException as exc:  # report, stay alive for the next job
            if isinstance(exc, KeyboardInterrupt):
                return 1
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc(limit=8)}
        result["seconds"] = time.perf_counter() - start
        data = _pickled_result(result)
        try:
            proto_out.write(_LEN.pack(len(data)) + data)
            proto_out.flush()
        except OSError:  # the client went away
            return 0


def _child_main() -> int:
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # library prints go to stderr, never into the protocol stream
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    lower_priority()
    apply_hello(_recv(proto_in))
    return serve(proto_in, proto_out)


# -- parent side ---------------------------------------------------------------------------------
@dataclass
class Task:
    job: dict
    label: str
    on_done: object = None  # callable(result) in the collector thread
    done: threading.Event = field(default_factory=threading.Event)
    result: dict | None = None


class WorkerProcess:
    """One child process; restarted by the scheduler when it dies."""

    def __init__(self, warm=()):
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen([sys.executable, "-m", "tracker_sdk.reduce.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, close_fds=True)
        self.pid = self.proc.pid
        _send(self.proc.stdin, {"sys_path": [p for p in sys.path if p], "warm": list(warm)})

    def call(self, job: dict) -> dict:
        try:
            _send(self.proc.stdin, job)
            return _recv(self.proc.stdout)
        except (EOFError, BrokenPipeError, OSError):
            code = self.proc.wait()
            why = "killed by signal %d" % -code if code < 0 else f"exit code {code}"
            hint = " (out of memory?)" if code in (-9, 137) else ""
            return {"ok": False, "error": f"the reduction worker process died ({why}){hint}", "died": True}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()

    def close(self, timeout: float = 10.0) -> None:
        try:
            _send(self.proc.stdin, None)
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class Scheduler:
    """Queues reduction jobs for the worker and waits for them at the end of a run."""

    def __init__(self):
        from .shared_worker import keep_warm_seconds

        self._keep_warm = keep_warm_seconds()  # a bad TRACKER_REDUCE_KEEP_WARM is reported to the caller now
        self._queue: "queue.Queue[Task | None]" = queue.Queue()
        self._worker = None  # a SharedWorker connection or a private WorkerProcess
        self.worker_pid: int | None = None  # of the latest worker (the shared worker's pid when it is used)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.submitted = 0
        self.finished = 0
        self.summaries: list[str] = []
        self.failures: list[str] = []
        self._abandoned = False

    def start(self, warm=()) -> None:
        """Start the collector thread and the child (its imports overlap with training)."""
        self._warm = sorted(set(getattr(self, "_warm", ())) | set(warm))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="tracker-reduce")
                self._thread.start()
                self._queue.put(Task(job={"kind": "start"}, label="start"))

    def submit(self, job: dict, label: str, on_done) -> Task:
        self.start()
        task = Task(job=job, label=label, on_done=on_done)
        with self._lock:
            self.submitted += 1
        self._queue.put(task)
        return task

    def _loop(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                break
            if task.job.get("kind") == "start":
                self._ensure_worker()
                continue
            if self._abandoned:
                result = {"ok": False, "error": "abandoned: the run ended before this reduction started"}
                task.result = result
                with self._lock:
                    self.finished += 1
                task.done.set()
                continue
            try:
                worker = self._ensure_worker()
                result = worker.call(task.job)
                if result.get("died"):
                    self._worker = None
            except Exception as exc:  # e.g. the reducer cannot be pickled
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            task.result = result
            try:
                if task.on_done is not None:
                    task.on_done(result)
            except Exception:  # the collector must outlive one bad record
                log.exception("tracker_sdk: storing reduction %s failed", task.label)
            finally:
                with self._lock:
                    self.finished += 1
                task.done.set()
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def _ensure_worker(self):
        """The shared warm worker when it is on and free, else a private child process."""
        if self._worker is None or not self._worker.alive():
            from .shared_worker import attach

            warm = getattr(self, "_warm", ())
            self._worker = attach(warm, self._keep_warm) or WorkerProcess(warm)
            self.worker_pid = self._worker.pid
        return self._worker

    @property
    def pending(self) -> int:
        return self.submitted - self.finished

    def wait(self, timeout: float | None = None, progress: bool = True) -> bool:
        """Wait for every submitted job (with a progress bar); True when all finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = None
        if progress and self.pending:
            from tqdm import tqdm

            bar = tqdm(total=self.submitted, initial=self.finished, desc="tracker_sdk reductions", unit="job",
                       leave=False, disable=None)
        try:
            while self.pending:
                if deadline is not None and time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
                if bar is not None:
                    bar.n = self.finished
                    bar.refresh()
        finally:
            if bar is not None:
                bar.close()
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Wait, then stop the collector and the child; True when nothing was left behind."""
        finished = self.wait(timeout)
        if self._thread is not None:
            if finished:
                self._queue.put(None)
                self._thread.join(30)
            else:
                self._abandoned = True
                if self._worker is not None:
                    self._worker.kill()
                self._queue.put(None)
        return finished


def new_token() -> str:
    return uuid.uuid4().hex


if __name__ == "__main__":
    sys.exit(_child_main())
