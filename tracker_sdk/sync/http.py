"""The HTTP side of sync: a one-method transport, the protocol client, and HTTPBackend.

``Transport.request`` is the only place that touches sockets (``http.client``, one
keep-alive connection per thread), so a test can swap in another one. ``Client`` speaks the
``/api/v1`` protocol and applies the :class:`~tracker_sdk.sync.retry.RetryPolicy`.
``HTTPBackend`` (``http://`` and ``https://`` URLs) writes the run locally like the offline
backend and replays it to the server from a daemon thread that never raises into training.
"""

from __future__ import annotations

import collections
import http.client
import json
import logging
import os
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import msgpack

from ..errors import (InvalidArgumentError, RunFormatError, ServerRejectedError, ServerUnavailableError,
                      SyncError)
from .retry import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger("tracker_sdk.sync")

API = "/api/v1"
DEFAULT_END_TIMEOUT = 30.0
_STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                            ConnectionAbortedError)


@dataclass
class Response:
    """A fully read HTTP response (header names lower-cased)."""

    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> dict:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def error_message(self) -> str:
        message = self.json().get("error")
        return str(message) if message else self.body[:200].decode("utf-8", "replace")


class Transport:
    """Sends one request and reads the whole response; one ``http.client`` connection per thread.

    ``body`` is bytes, or a binary file object whose ``Content-Length`` the caller sets. All
    requests of the protocol are idempotent, so a request that fails on a reused keep-alive
    connection (the server closed it while idle) is resent once on a fresh one at once.
    """

    def __init__(self, base_url: str, *, timeout: float = 60.0, blocksize: int = 1 << 20):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgumentError(f"url must look like http://host:port; got {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.blocksize = blocksize
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout, blocksize=self.blocksize)
            self._local.conn = conn
            self._local.used = False
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method: str, path: str, headers: dict, body=None) -> Response:
        start = body.tell() if hasattr(body, "tell") else None
        reused = self._connection() is not None and self._local.used
        try:
            return self._send(method, path, headers, body)
        except _STALE_CONNECTION_ERRORS:
            if not reused:
                raise
        if start is not None:
            body.seek(start)
        return self._send(method, path, headers, body)

    def _send(self, method: str, path: str, headers: dict, body) -> Response:
        conn = self._connection()
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
            raw = conn.getresponse()
            data = raw.read()
        except BaseException:
            self.close()
            raise
        self._local.used = True
        if raw.will_close:
            self.close()
        return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data)


class Client:
    """The ``/api/v1`` sync protocol with retries; every method is safe to repeat.

    Parameters
    ----------
    url : str
        The server, e.g. ``http://127.0.0.1:8470``.
    api_key : str, optional
        Sent as ``Authorization: Bearer <api_key>``.
    retry : RetryPolicy
        Applied to each request.
    cancel : threading.Event, optional
        When set, waits between retries stop and the request raises ServerUnavailableError.
    """

    def __init__(self, url: str, api_key: str | None = None, *, retry: RetryPolicy = DEFAULT_POLICY,
                 transport: Transport | None = None, cancel: threading.Event | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.retry = retry
        self.transport = transport or Transport(self.url, timeout=timeout)
        self.cancel = cancel or threading.Event()
        # per request kind, the seconds of the latest answered requests (benchmarks, diagnostics)
        self.latencies: dict[str, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=100_000))
        self.statuses: collections.Counter = collections.Counter()

    def call(self, method: str, path: str, *, body=None, headers: dict | None = None,
             expect: tuple = (200,), kind: str = "other") -> Response:
        """Send with retries; return the response when its status is in ``expect``.

        ``body`` may be a zero-argument callable that opens a fresh body for each try.
        Other 4xx raise ServerRejectedError at once; connection errors, 5xx and 429 are
        retried, then raise ServerUnavailableError.
        """
        headers = dict(headers or {})
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = "no attempt"
        for attempt in range(1, self.retry.attempts + 1):
            if self.cancel.is_set():
                raise ServerUnavailableError(f"{method} {self.url}{path}: cancelled ({last})")
            retry_after = None
            payload = body() if callable(body) else body
            started = time.perf_counter()
            try:
                response = self.transport.request(method, API + path, headers, payload)
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
                self.statuses["connection error"] += 1
            else:
                self.latencies[kind].append(time.perf_counter() - started)
                self.statuses[response.status] += 1
                if response.status in expect:
                    return response
                if not self.retry.is_retryable_status(response.status):
                    raise ServerRejectedError(f"{method} {self.url}{API}{path} was refused with "
                                              f"{response.status}: {response.error_message()}", response.status)
                last = f"HTTP {response.status}: {response.error_message()}"
                retry_after = response.headers.get("retry-after")
            finally:
                if hasattr(payload, "close"):
                    payload.close()
            if attempt < self.retry.attempts:
                wait = self.retry.delay(attempt, retry_after)
                log.debug("sync: %s %s failed (%s); retry %d in %.2fs", method, path, last, attempt, wait)
                if self.cancel.wait(wait):
                    raise ServerUnavailableError(f"{method} {self.url}{path}: cancelled ({last})")
        raise ServerUnavailableError(f"{method} {self.url}{API}{path} failed {self.retry.attempts} times; last: {last}")

    # -- the protocol --------------------------------------------------------------------
    def put_run(self, project: str, run_id: str, info: dict) -> dict:
        body = json.dumps(info).encode()
        return self.call("PUT", f"/projects/{quote(project, safe='')}/runs/{run_id}", body=body,
                         headers={"Content-Type": "application/json"}, kind="run").json()

    def get_run(self, run_id: str) -> dict | None:
        response = self.call("GET", f"/runs/{run_id}", expect=(200, 404), kind="run")
        return response.json() if response.status == 200 else None

    def has_blob(self, run_id: str, sha256: str) -> bool:
        return self.call("HEAD", f"/runs/{run_id}/blobs/{sha256}", expect=(200, 404), kind="head").status == 200

    def put_blob(self, run_id: str, sha256: str, path: Path, size: int) -> int:
        response = self.call("PUT", f"/runs/{run_id}/blobs/{sha256}", body=lambda: open(path, "rb"),
                             headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                             expect=(200, 201), kind="blob")
        return response.status

    def upload_offset(self, run_id: str, sha256: str) -> tuple[int, bool]:
        data = self.call("GET", f"/runs/{run_id}/uploads/{sha256}", kind="offset").json()
        return int(data.get("offset", 0)), bool(data.get("complete", False))

    def patch_upload(self, run_id: str, sha256: str, offset: int, length: int, chunk) -> tuple[int, bool, bool]:
        """Append ``chunk`` at ``offset``; return (server offset, complete, accepted)."""
        response = self.call("PATCH", f"/runs/{run_id}/uploads/{sha256}", body=chunk,
                             headers={"Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset),
                                      "Upload-Length": str(length), "Content-Length": str(len(chunk))},
                             expect=(200, 201, 204, 409), kind="chunk")
        data = response.json()
        return int(data.get("offset", offset)), bool(data.get("complete", False)), response.status != 409

    def post_records(self, run_id: str, body: bytes) -> Response:
        """POST a msgpack ``{"records": [...]}`` body; the 409 answers are returned for the caller."""
        return self.call("POST", f"/runs/{run_id}/records", body=body,
                         headers={"Content-Type": "application/msgpack"}, expect=(200, 409), kind="records")

    def close(self) -> None:
        self.transport.close()


def pack_records(records: list[dict]) -> bytes:
    return msgpack.packb({"records": records}, use_bin_type=True)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def upload_command(run_dir: Path, url: str, api_key: str | None) -> str:
    """The exact ``tracker upload`` command that sends a run (the key itself is never printed)."""
    command = f"tracker upload {shlex.quote(str(Path(run_dir).resolve()))} --url {shlex.quote(url)}"
    if api_key and api_key != os.environ.get("TRACKER_API_KEY"):
        command += " --api-key YOUR_API_KEY"
    return command


class HTTPBackend:
    """Writes runs under the local root and syncs them to a tracking server in the background.

    Parameters
    ----------
    uri : str
        ``http(s)://host:port`` of the tracking server.
    api_key : str, optional
        Falls back to ``TRACKER_API_KEY``.
    root : path, optional
        Local run root, written first; defaults to ``TRACKER_DIR`` or ./tracker-runs.
    end_timeout : float, optional
        Seconds ``finish`` waits for the upload to catch up (``TRACKER_END_TIMEOUT``, else 30).
    poll_interval : float
        Seconds between passes over the journal while the run is live.
    """

    uri_schemes = ("http", "https")

    def __init__(self, uri: str, api_key: str | None = None, *, root=None, retry: RetryPolicy = DEFAULT_POLICY,
                 end_timeout: float | None = None, poll_interval: float = 0.5, **uploader_options):
        from . import default_local_root

        self.url = str(uri).rstrip("/")
        Transport(self.url)  # validates the URL now, in the caller's thread
        self.api_key = api_key or os.environ.get("TRACKER_API_KEY") or None
        self.root = Path(root).expanduser() if root is not None else default_local_root()
        self.retry = retry
        if end_timeout is None:
            configured = os.environ.get("TRACKER_END_TIMEOUT") or DEFAULT_END_TIMEOUT
            try:
                end_timeout = float(configured)
            except ValueError:
                raise InvalidArgumentError(
                    f"TRACKER_END_TIMEOUT must be a number of seconds; got {configured!r}") from None
        self.end_timeout = end_timeout
        self.poll_interval = poll_interval
        self.uploader_options = uploader_options
        self.worker: SyncWorker | None = None

    def start(self, run_dir: Path) -> None:
        """Start the daemon thread that tails ``run_dir``'s journal and uploads it."""
        from .uploader import Uploader

        cancel = threading.Event()
        client = Client(self.url, self.api_key, retry=self.retry, cancel=cancel)
        uploader = Uploader(client, run_dir, **self.uploader_options)
        self.worker = SyncWorker(uploader, cancel, retry=self.retry, poll_interval=self.poll_interval)
        self.worker.start()

    def finish(self, timeout: float | None = None) -> str | None:
        """Let the worker send the rest for at most ``timeout`` seconds; describe what is left, if anything."""
        if self.worker is None:
            return None
        timeout = self.end_timeout if timeout is None else float(timeout)
        worker = self.worker
        worker.close(timeout)
        if worker.done:
            return None
        uploader = worker.uploader
        try:
            records, blobs, nbytes = uploader.pending()
        except (RunFormatError, OSError) as exc:
            records, blobs, nbytes = "some", "some", 0
            log.debug("sync: could not count what is pending: %s", exc)
        reason = f"; last error: {worker.error}" if worker.error else ""
        what = f"{records} records and {blobs} blobs ({_human_bytes(nbytes)})"
        if worker.rejected is not None:
            head = f"the server refused run {uploader.project}/{uploader.run_id}"
        else:
            head = f"run {uploader.project}/{uploader.run_id} is not fully on {self.url} after waiting {timeout:g}s"
        where = Path(uploader.run_dir).resolve()
        return (f"tracker_sdk: {head}: {what} still to send{reason}. They are safe in {where}; send them with:\n"
                f"    {upload_command(uploader.run_dir, self.url, self.api_key)}")


class SyncWorker:
    """The daemon thread: tail, upload, wait, repeat; never raises, never blocks the caller."""

    def __init__(self, uploader, cancel: threading.Event, *, retry: RetryPolicy, poll_interval: float):
        self.uploader = uploader
        self.cancel = cancel
        self.retry = retry
        self.poll_interval = poll_interval
        self.closing = threading.Event()
        self.wake = threading.Event()
        self.done = False
        self.error: str | None = None
        self.rejected: SyncError | None = None
        self.thread = threading.Thread(target=self._loop, name=f"tracker-sync-{uploader.run_id[:8]}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        try:
            self._passes()
        finally:
            self.uploader.client.close()  # the connection belongs to this thread

    def _passes(self) -> None:
        failures = 0
        while not self.cancel.is_set():
            final = self.closing.is_set()  # set only after the writer closed: the journal is complete
            try:
                caught_up = self.uploader.sync_once(final=final)
            except ServerRejectedError as exc:
                self.rejected, self.error = exc, str(exc)
                log.error("tracker_sdk: sync stopped, %s; the run stays on disk", exc)
                return
            except RunFormatError as exc:
                self.rejected, self.error = exc, str(exc)
                log.error("tracker_sdk: sync stopped, the local run cannot be read: %s", exc)
                return
            except ServerUnavailableError as exc:
                failures += 1
                self.error = str(exc)
                if failures == 1:
                    log.warning("tracker_sdk: tracking server unavailable, will keep retrying: %s", exc)
            except Exception as exc:  # a bug must not kill sync silently nor touch training
                failures += 1
                self.error = f"{type(exc).__name__}: {exc}"
                log.log(logging.ERROR if failures == 1 else logging.DEBUG,
                        "tracker_sdk: unexpected error in the sync thread; retrying", exc_info=True)
            else:
                if failures:
                    log.info("tracker_sdk: tracking server reachable again")
                failures = 0
                self.error = None
                if final and caught_up:
                    self.done = True
                    return
            if failures:
                wait = self.retry.delay(min(failures, 30))
            else:
                wait = 0.05 if final else self.poll_interval  # final and not caught up: go again soon
            self.wake.wait(wait)
            self.wake.clear()

    def close(self, timeout: float) -> None:
        """Ask for a final pass and wait for it at most ``timeout`` seconds, then cancel."""
        self.closing.set()
        self.wake.set()
        self.thread.join(max(0.0, timeout))
        if self.thread.is_alive():
            self.cancel.set()
            self.wake.set()
            self.thread.join(0.5)
