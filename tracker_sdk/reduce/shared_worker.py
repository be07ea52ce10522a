"""The shared warm worker: a reduction worker that outlives the process that started it.

Why: a fresh process cannot reuse everything UMAP compiled before. numba refuses to cache
functions that call ``numba.get_num_threads()`` and misses its cache for every function
that takes a distance function as an argument, so pynndescent's neighbour descent (UMAP
beyond 4,096 rows) compiles again in each new process, 15-25 s; importing scikit-learn,
numba and the library costs 2-3 s more. A second training script that finds the previous
worker still running pays none of it (``benchmarks/reduce.py --sdk-flow``).

How: at most one worker per user and Python environment (the interpreter, where tracker_sdk
is installed, and the thread/numba settings, hashed into the names of its files). It holds
an exclusive ``flock`` on ``<key>.lock`` (which also holds its pid) for its whole life, so a
second one cannot start, and ``tracker worker status`` knows a worker from a stale socket.
It listens on a Unix socket in a private directory (mode 0700; the peer's uid is checked on
both ends). A client sends a hello (its import path and a stamp of the tracker_sdk source)
and the worker answers ``{"ready": True, "pid": ...}``, then runs that client's jobs exactly
like a private worker (``worker.serve``); the client's import path is removed again after
it, with the modules imported from it. A worker started before the client's tracker_sdk
source last changed answers ``{"stale": True}`` and exits (a new one starts). It serves one client at a time: another client gets
``{"busy": True}`` at once and starts a private worker. With no client for
``TRACKER_REDUCE_KEEP_WARM`` seconds (default 60; 0 turns the shared worker off) it exits
and removes its socket.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import math
import os
import queue
import select
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..errors import InvalidArgumentError
from .worker import WorkerDied, apply_hello, lower_priority, serve
from .worker import recv as _recv
from .worker import send as _send

#: the installed tracker_sdk package (found from this file: importing the package here would be a cycle)
PACKAGE_DIR = Path(__file__).resolve().parent.parent
KEEP_WARM_ENV = "TRACKER_REDUCE_KEEP_WARM"
DEFAULT_KEEP_WARM = 60.0
#: how long a client waits for a worker it started to listen
START_TIMEOUT = 20.0
_CRED = struct.Struct("3i")  # SO_PEERCRED: pid, uid, gid
MAX_SOCKET_PATH = 104  # bytes in a Unix socket address (108 on Linux, 104 on macOS)


def keep_warm_seconds() -> float:
    """Seconds an idle shared worker waits for the next client (0: no shared worker)."""
    raw = os.environ.get(KEEP_WARM_ENV, "").strip()
    if not raw:
        return DEFAULT_KEEP_WARM
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InvalidArgumentError(
            f"{KEEP_WARM_ENV} must be a number of seconds >= 0 (0 turns the shared worker off); got {raw!r}")
    return value


def worker_dir() -> Path:
    """The private directory of the sockets: $XDG_RUNTIME_DIR/tracker_sdk, else /tmp/tracker_sdk-<uid>."""
    candidates = []
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "tracker_sdk")
    candidates.append(Path(tempfile.gettempdir()) / f"tracker_sdk-{os.getuid()}")
    problem = None
    for path in candidates:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(path)
        except OSError as exc:
            problem = exc
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
            return path
        problem = OSError(f"{path} is not a directory of yours with mode 0700; not using it for worker sockets")
    raise problem


def client_sys_path() -> list[str]:
    return [os.path.abspath(p) for p in sys.path if p]


def environment_key() -> str:
    """The Python environment a worker serves: interpreter, tracker_sdk's location, thread/numba settings.

    Not the client's import path: scripts in different directories share one worker (their
    paths travel in the hello). Not the source either: see ``source_stamp``.
    """
    package = PACKAGE_DIR
    settings = sorted((k, v) for k, v in os.environ.items()
                      if k.startswith(("NUMBA_", "OMP_", "MKL_", "OPENBLAS_")) or k in ("XDG_CACHE_HOME", "HOME"))
    parts = [sys.executable, sys.prefix, sys.version, str(package), repr(settings)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def source_stamp() -> int:
    """The newest modification time of tracker_sdk's source: a worker older than its client retires."""
    package = PACKAGE_DIR
    return max((p.stat().st_mtime_ns for p in package.rglob("*.py")), default=0)


def socket_path() -> Path:
    return worker_dir() / f"{environment_key()}.sock"


def _peer(sock: socket.socket) -> tuple[int, int]:
    pid, uid, _ = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
    return pid, uid


# -- client side ------------------------------------------------------------------------------
class SharedWorker:
    """A client's connection to the shared worker; the Scheduler's worker while it lasts."""

    shared = True

    def __init__(self, sock: socket.socket, reader, writer, pid: int, path: Path):
        self.sock, self.reader, self.writer, self.pid, self.path = sock, reader, writer, pid, path
        self._dead = False

    def call(self, job) -> dict:
        """Send one job and wait for its reply; raises WorkerDied when the worker ends meanwhile."""
        try:
            _send(self.writer, job)
            return _recv(self.reader)
        except (EOFError, OSError):
            self._dead = True
            self._close_socket()
            raise WorkerDied(f"the shared reduction worker process (pid {self.pid}) died during the job "
                             f"(a crash, or out of memory?); its log: {self.path.with_suffix('.log')}") from None

    def alive(self) -> bool:
        return not self._dead

    def close(self, timeout: float = 10.0) -> None:
        """Say goodbye: the worker stays up, warm, for the next client."""
        if not self._dead:
            try:
                _send(self.writer, None)
            except OSError:
                pass
        self._close_socket()

    def kill(self) -> None:
        """Abandon: the job in progress is ours alone, so stop the worker rather than let it run on."""
        import signal

        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        self._dead = True
        self._close_socket()

    def _close_socket(self) -> None:
        for closeable in (self.reader, self.writer, self.sock):
            try:
                closeable.close()
            except OSError:
                pass


def _connect(path: Path, hello: dict, timeout: float = 10.0):
    """A SharedWorker, "busy", "absent" (nothing listening, or a worker that hung up on us while
    exiting) or None (a peer that is not ours)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return "absent"
    reader = writer = None
    reply: dict = {}
    try:
        pid, uid = _peer(sock)
        if uid == os.getuid():
            reader, writer = sock.makefile("rb"), sock.makefile("wb")
            _send(writer, hello)
            reply = _recv(reader)
    except (OSError, EOFError, ValueError):
        reply = {"hung_up": True}
    if reply.get("ready"):
        sock.settimeout(None)
        return SharedWorker(sock, reader, writer, pid, path)
    for closeable in (reader, writer, sock):
        if closeable is not None:
            closeable.close()
    return "busy" if reply.get("busy") else "absent" if reply.get("hung_up") or reply.get("stale") else None


def _start(path: Path, keep_warm: float) -> bool:
    """Start a worker for ``path`` in its own session; it detaches at once (no zombie left to reap).
    False when the starter itself failed (its error is in the log)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    root = str(PACKAGE_DIR.parent)
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    log_path = path.with_suffix(".log")
    if log_path.exists() and log_path.stat().st_size > 1 << 20:
        log_path.unlink()  # keep the log of recent workers, not of every worker since boot
    with open(log_path, "ab") as log_file:
        starter = subprocess.run([sys.executable, "-m", "tracker_sdk.reduce.shared_worker", str(path),
                                  repr(keep_warm)], stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                 env=env, cwd="/", close_fds=True, start_new_session=True, timeout=30, check=False)
    return starter.returncode == 0


def attach(warm=(), keep_warm: float | None = None) -> SharedWorker | None:
    """Connect to this environment's shared worker, starting one if none runs; None means use a private one."""
    keep_warm = keep_warm_seconds() if keep_warm is None else keep_warm
    if keep_warm <= 0:
        return None
    try:
        path = socket_path()
    except OSError:
        return None
    if len(os.fsencode(path)) >= MAX_SOCKET_PATH:
        return None  # too long for a Unix socket address
    hello = {"sys_path": client_sys_path(), "warm": list(warm), "stamp": source_stamp()}
    found = _connect(path, hello)
    if found == "absent":
        try:
            if not _start(path, keep_warm):
                return None
        except (OSError, subprocess.SubprocessError):
            return None
        deadline, restart = time.monotonic() + START_TIMEOUT, time.monotonic() + 2.0
        while found == "absent" and time.monotonic() < deadline:
            time.sleep(0.02)
            found = _connect(path, hello)
            if found == "absent" and time.monotonic() > restart:
                _start(path, keep_warm)  # the one we started met a worker that was just exiting
                restart = time.monotonic() + 2.0
    return found if isinstance(found, SharedWorker) else None


def _command(path: Path, command: str, timeout: float = 5.0) -> dict | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        if _peer(sock)[1] != os.getuid():
            return None
        with sock.makefile("rb") as reader, sock.makefile("wb") as writer:
            _send(writer, {"command": command})
            return _recv(reader)
    except (OSError, EOFError):
        return None
    finally:
        sock.close()


def _lock_holder(lock_path: Path) -> int | None:
    """The pid written in a worker's lock file while that worker holds the lock, else None."""
    import fcntl

    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held: a live worker
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def list_workers() -> list[dict]:
    """Status of every shared worker of this user (any environment): pid, state, idle time, clients.

    A worker is one that holds its lock file; a socket without a held lock is not counted.
    """
    try:
        directory = worker_dir()
    except OSError:
        return []
    found = []
    for lock_path in sorted(directory.glob("*.lock")):
        pid = _lock_holder(lock_path)
        if pid is None:
            continue
        path = lock_path.with_suffix(".sock")
        status = _command(path, "status") or {"pid": pid, "busy": None, "idle_s": None, "keep_warm_s": None,
                                              "clients_served": None, "started": None, "libraries": [],
                                              "python": None, "unreachable": True}
        found.append({"socket": str(path), "lock": str(lock_path), **status})
    return found


def stop_workers() -> list[dict]:
    """Ask every shared worker of this user to exit (after the job it is running); returns their status."""
    import signal

    stopped = []
    for status in list_workers():
        if _command(Path(status["socket"]), "stop") is not None:
            stopped.append(status)
        elif status["pid"] > 0:  # holds the lock but does not answer: ours (a 0700 directory), so end it
            try:
                os.kill(status["pid"], signal.SIGTERM)
                stopped.append(status)
            except OSError:
                pass
    return stopped


# -- worker side ------------------------------------------------------------------------------
class _Server:
    """Accepts clients on a thread; the main thread serves them one at a time."""

    def __init__(self, listener: socket.socket, keep_warm: float, stamp: int = 0):
        self.listener, self.keep_warm, self.stamp = listener, keep_warm, stamp
        self.lock = threading.Condition()
        self.busy = False
        self.stopping = False
        self.clients = 0
        self.started = time.time()
        self.last_active = time.monotonic()
        self.pending: "queue.Queue[tuple]" = queue.Queue()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed: shutting down
            threading.Thread(target=self._greet, args=(conn,), daemon=True).start()

    def _status(self) -> dict:
        idle = 0.0 if self.busy else time.monotonic() - self.last_active
        return {"pid": os.getpid(), "python": sys.executable, "busy": self.busy, "idle_s": round(idle, 1),
                "keep_warm_s": self.keep_warm, "clients_served": self.clients, "started": self.started,
                "libraries": sorted(m for m in ("umap", "pacmap", "openTSNE") if m in sys.modules)}

    def _greet(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            if _peer(conn)[1] != os.getuid():
                conn.close()
                return
            reader, writer = conn.makefile("rb"), conn.makefile("wb")
            hello = _recv(reader)
            with self.lock:
                command = hello.get("command")
                if command is None and self.busy:  # a client that just said goodbye is finishing up
                    self.lock.wait_for(lambda: not self.busy, timeout=1.0)
                if command == "status":
                    reply = self._status()
                elif command == "stop":
                    self.stopping = True
                    reply = {"stopping": True, **self._status()}
                elif hello.get("stamp", self.stamp) > self.stamp:
                    self.stopping = True  # built from older source than this client: retire, a fresh one starts
                    reply = {"stale": True}
                elif self.busy or self.stopping:
                    reply = {"busy": True}
                else:
                    self.busy = True
                    self.pending.put((conn, reader, writer, hello))
                    return
            _send(writer, reply)
            conn.close()
        except (OSError, EOFError, ValueError):
            conn.close()

    def run(self) -> None:
        threading.Thread(target=self._accept_loop, daemon=True, name="tracker-accept").start()
        while True:
            try:
                client = self.pending.get(timeout=0.2)
            except queue.Empty:
                with self.lock:
                    expired = time.monotonic() - self.last_active > self.keep_warm
                    if not self.busy and (self.stopping or expired):
                        self.stopping = True
                        return
                continue
            self._serve(*client)

    def _serve(self, conn, reader, writer, hello) -> None:
        try:
            conn.settimeout(None)
            _send(writer, {"ready": True, "pid": os.getpid()})
            base_path, base_modules = list(sys.path), set(sys.modules)
            apply_hello(hello)
            serve(reader, writer, guard=lambda: _exit_if_client_leaves(conn))
        except (OSError, EOFError):
            pass  # the client went away
        finally:
            if "base_path" in locals():
                _forget_client_paths(base_path, base_modules)
            for closeable in (reader, writer, conn):
                try:
                    closeable.close()
                except OSError:
                    pass
            gc.collect()  # the client's fitted reducers go now, not at the next client
            with self.lock:
                self.busy = False
                self.clients += 1
                self.last_active = time.monotonic()
                self.lock.notify_all()


def _forget_client_paths(base_path: list[str], base_modules: set[str]) -> None:
    """Undo a client's import path: the next client, from another directory, must not import its modules."""
    added = [os.path.abspath(p) for p in sys.path if p not in base_path]
    sys.path[:] = base_path
    for name in set(sys.modules) - base_modules:
        origin = getattr(sys.modules.get(name), "__file__", None) or ""
        if any(os.path.abspath(origin).startswith(prefix + os.sep) for prefix in added):
            del sys.modules[name]


@contextlib.contextmanager
def _exit_if_client_leaves(conn: socket.socket):
    """During a job the client only waits; if its end closes, nobody will read the result, and the
    job (minutes of CPU, maybe) cannot be interrupted inside numba: the worker exits instead."""
    done = threading.Event()

    def watch():
        while not done.wait(0.25):
            try:
                readable, _, _ = select.select([conn], [], [], 0)
                gone = bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                gone = True
            if gone and not done.is_set():
                print(f"tracker_sdk shared reduction worker pid {os.getpid()}: the client left during a job; "
                      "exiting", flush=True)
                os._exit(0)

    watcher = threading.Thread(target=watch, daemon=True, name="tracker-client-watch")
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _worker_main(path: Path, keep_warm: float) -> int:
    if os.fork() > 0:
        os._exit(0)  # the starter returns at once; this process is adopted by init
    import fcntl

    lock = open(path.with_suffix(".lock"), "a+b")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # a live worker already serves this environment
    lock.truncate(0)
    lock.write(str(os.getpid()).encode())
    lock.flush()
    stamp = source_stamp()
    lower_priority()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        path.unlink(missing_ok=True)  # left by a worker that was killed
        listener.bind(str(path))
        os.chmod(path, 0o600)
        listener.listen(16)
        print(f"tracker_sdk shared reduction worker pid {os.getpid()} serving {path}, "
              f"keep warm {keep_warm:g} s", flush=True)
        _Server(listener, keep_warm, stamp).run()
    finally:
        path.unlink(missing_ok=True)  # ours: we hold the lock, no one else binds this path
        listener.close()
        lock.close()  # a worker started from now on may take over at once
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(Path(sys.argv[1]), float(sys.argv[2])))
