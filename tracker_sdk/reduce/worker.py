"""The reduction worker process: its wire protocol, its job loop, and the private child.

Why a separate process: numba and BLAS threads of UMAP/PaCMAP must not fight the training
thread, and a reducer that crashes or runs out of memory must not take training down.
The child is started with ``python -m tracker_sdk.reduce.worker`` (never by re-importing
the user's script) and talks over its stdin/stdout with length-prefixed pickles of the
typed jobs and results in ``tasks.py``; nothing pickled ever reaches the run directory.
The child only computes and writes coordinate blobs; the parent, which holds the run's
writer, appends the records. ``serve`` is shared with the shared warm worker
(``shared_worker.py``, which imports this module; this one never imports it).
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import time
import traceback

_LEN = struct.Struct("<Q")


def send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


def recv(stream):
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError("worker pipe closed")
    size = _LEN.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("worker pipe closed mid-message")
    return pickle.loads(data)


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


def serve(proto_in, proto_out, guard=None) -> int:
    """Run one client's jobs, one at a time, until it says None or hangs up; 1 on Ctrl-C.

    Each reply is ``{"ok": True, "result": JobResult}`` (the fitted reducer pickled inside)
    or ``{"ok": False, "error": ..., "traceback": ...}``. ``guard``, when given, is a context
    manager factory entered around each job (the shared worker's watch for a client that
    disappears mid-job).
    """
    from .tasks import execute

    cache: dict = {}  # reducers fitted for this client only
    while True:
        try:
            job = recv(proto_in)
        except (EOFError, OSError):
            return 0
        if job is None:
            return 0
        start = time.perf_counter()
        try:
            if guard is None:
                reply = {"ok": True, "result": execute(job, cache)}
            else:
                with guard():
                    reply = {"ok": True, "result": execute(job, cache)}
        except BaseException as exc:  # report, stay alive for the next job
            if isinstance(exc, KeyboardInterrupt):
                return 1
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)}
        if reply["ok"]:
            try:
                reply["result"] = reply["result"].pickled()
            except Exception as exc:  # a fitted state that cannot be pickled: send the records anyway
                reply["result"].fitted = None
                reply["fitted_error"] = f"{type(exc).__name__}: {exc}"
        reply["seconds"] = time.perf_counter() - start
        try:
            send(proto_out, reply)
        except OSError:  # the client went away
            return 0


def _child_main() -> int:
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # library prints go to stderr, never into the protocol stream
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    lower_priority()
    apply_hello(recv(proto_in))
    return serve(proto_in, proto_out)


class WorkerDied(Exception):
    """The worker process ended during a call; the message says how (signal, exit code, hint)."""


class WorkerProcess:
    """One private child process, owned by one ProcessExecutor; raises OSError when it cannot start."""

    shared = False

    def __init__(self, warm=()):
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen([sys.executable, "-m", "tracker_sdk.reduce.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, close_fds=True)
        self.pid = self.proc.pid
        try:
            send(self.proc.stdin, {"sys_path": [p for p in sys.path if p], "warm": list(warm)})
        except OSError:
            pass  # it died at once: the first call reports how

    def call(self, job) -> dict:
        """Send one job and wait for its reply; raises WorkerDied when the child ends meanwhile."""
        try:
            send(self.proc.stdin, job)
            return recv(self.proc.stdout)
        except (EOFError, OSError):
            try:
                code = self.proc.wait(5)
            except subprocess.TimeoutExpired:  # closed its pipe but lives on: not ours any more
                self.proc.kill()
                code = self.proc.wait()
            why = "killed by signal %d" % -code if code < 0 else f"exit code {code}"
            hint = " (out of memory?)" if code in (-9, 137) else ""
            raise WorkerDied(f"the reduction worker process died ({why}){hint}; it was pid {self.pid}") from None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self, timeout: float = 10.0) -> None:
        try:
            send(self.proc.stdin, None)
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


if __name__ == "__main__":
    sys.exit(_child_main())
