"""The ``http(s)://`` backend: the tracking server's ``/api/v1`` sync protocol.

``Transport.request`` is the only place that touches sockets (``http.client``, one
keep-alive connection per thread), so a test can swap in another one. ``HTTPBackend``
implements the backend protocol (:mod:`.protocol`) on top of it with the
:class:`~tracker_sdk.sync.retry.RetryPolicy`: a blob goes up in one ``PUT``, or above
``chunk_threshold`` in resumable ``PATCH`` chunks from the offset the server reports, each
with tus's ``Upload-Checksum: sha256 <base64>`` (a chunk the server answers 460 "Checksum
Mismatch" is sent again), and records go up in msgpack batches whose ``409`` answers name
missing blobs or where to resume. An answer whose body says ``"retryable": true`` (a whole
blob that arrived corrupted: 422) is retried with backoff like a 5xx, never taken as a refusal.
What to send and when lives in :mod:`.uploader` and :mod:`.background`.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import http.client
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import msgspec

from ..errors import InvalidArgumentError, MissingBlobsError, ServerRejectedError, ServerUnavailableError, SyncError
from .retry import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger("tracker_sdk.sync")

API = "/api/v1"
MIN_CHUNK = 256 << 10
DEFAULT_CHUNK_THRESHOLD = 64 << 20
DEFAULT_CHUNK_SIZE = 16 << 20
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


class HTTPBackend:
    """The tracking server as a destination of runs, with retries; every method is safe to repeat.

    Parameters
    ----------
    url : str
        The server, e.g. ``http://127.0.0.1:8470``.
    api_key : str, optional
        Sent as ``Authorization: Bearer <api_key>``; defaults to ``TRACKER_API_KEY``.
    retry : RetryPolicy
        Applied to each request.
    cancel : threading.Event, optional
        When set, waits between retries stop and the request raises ServerUnavailableError.
    chunk_threshold, chunk_size : int
        Blobs above ``chunk_threshold`` bytes go up in resumable chunks of ``chunk_size``.
    """

    def __init__(self, url: str, api_key: str | None = None, *, retry: RetryPolicy = DEFAULT_POLICY,
                 transport: Transport | None = None, cancel: threading.Event | None = None, timeout: float = 60.0,
                 chunk_threshold: int = DEFAULT_CHUNK_THRESHOLD, chunk_size: int = DEFAULT_CHUNK_SIZE):
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidArgumentError(f"chunk_size must be a positive number of bytes; got {chunk_size!r}")
        self.url = str(url).rstrip("/")
        self.api_key = api_key if api_key is not None else (os.environ.get("TRACKER_API_KEY") or None)
        self.chunk_threshold = int(chunk_threshold)
        self.chunk_size = int(chunk_size)
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
                if not self.retry.is_retryable_status(response.status) and not _says_retryable(response):
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

    # -- the backend protocol ------------------------------------------------------------
    def put_run(self, project: str, run_id: str, info: dict) -> int:
        body = json.dumps(info).encode()
        answer = self.call("PUT", f"/projects/{quote(project, safe='')}/runs/{run_id}", body=body,
                           headers={"Content-Type": "application/json"}, kind="run").json()
        return int(answer.get("next_seq", 0))

    def has_blob(self, run_id: str, sha256: str) -> bool:
        return self.call("HEAD", f"/runs/{run_id}/blobs/{sha256}", expect=(200, 404), kind="head").status == 200

    def put_blob(self, run_id: str, sha256: str, path: Path, size: int, progress=None) -> None:
        """One ``PUT``, or resumable chunks above ``chunk_threshold`` (or when the server caps bodies lower)."""
        progress = progress or (lambda n: None)
        if size > self.chunk_threshold:
            self._upload_chunked(run_id, sha256, Path(path), size, progress)
            return
        try:
            self.call("PUT", f"/runs/{run_id}/blobs/{sha256}", body=lambda: open(path, "rb"),
                      headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                      expect=(200, 201), kind="blob")
        except ServerRejectedError as exc:
            if exc.status != 413:
                raise
            self._upload_chunked(run_id, sha256, Path(path), size, progress)  # the server's cap is below ours
            return
        progress(size)

    def append_records(self, run_id: str, records: list) -> int:
        """POST one batch; a 409 either names missing blobs (raised) or says where the run ends."""
        response = self.call("POST", f"/runs/{run_id}/records", body=pack_records(records),
                             headers={"Content-Type": "application/msgpack"}, expect=(200, 409), kind="records")
        data = response.json()
        if response.status == 200:
            return int(data["next_seq"])
        if "missing_blobs" in data:
            raise MissingBlobsError(f"{self.url} lacks blobs named by records of run {run_id}",
                                    [str(sha) for sha in data["missing_blobs"]])
        if "next_seq" in data:
            return int(data["next_seq"])
        raise SyncError(f"server answered 409 to records of run {run_id}: {response.error_message()}")

    def list_runs(self) -> list[tuple[str, str]]:
        projects = self.call("GET", "/projects", kind="run")
        runs = []
        for project in json.loads(projects.body or b"[]"):
            listing = self.call("GET", f"/projects/{quote(project['name'], safe='')}/runs", kind="run")
            runs += [(run["project"], run["run_id"]) for run in json.loads(listing.body or b"[]")]
        return sorted(runs)

    def close(self) -> None:
        self.transport.close()

    # -- resumable chunks ----------------------------------------------------------------
    def upload_offset(self, run_id: str, sha256: str) -> tuple[int, bool, int]:
        """(offset, complete, min_chunk): a server on S3 takes no chunk below 5 MiB but the last."""
        data = self.call("GET", f"/runs/{run_id}/uploads/{sha256}", kind="offset").json()
        return int(data.get("offset", 0)), bool(data.get("complete", False)), int(data.get("min_chunk", 0))

    def patch_upload(self, run_id: str, sha256: str, offset: int, length: int, chunk) -> tuple[int, bool, bool]:
        """Append ``chunk`` at ``offset`` with its checksum; return (server offset, complete, accepted).

        A 460 (the chunk failed its checksum on the way) is retried by :meth:`call` with the same bytes.
        """
        checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        response = self.call("PATCH", f"/runs/{run_id}/uploads/{sha256}", body=chunk,
                             headers={"Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset),
                                      "Upload-Length": str(length), "Content-Length": str(len(chunk)),
                                      "Upload-Checksum": f"sha256 {checksum}"},
                             expect=(200, 201, 204, 409), kind="chunk")
        data = response.json()
        return int(data.get("offset", offset)), bool(data.get("complete", False)), response.status != 409

    def _upload_chunked(self, run_id: str, sha256: str, path: Path, size: int, progress) -> None:
        """PATCH chunks from the server's offset until it commits the blob (resumes after any failure)."""
        offset, complete, min_chunk = self.upload_offset(run_id, sha256)
        chunk_size = max(self.chunk_size, min_chunk)
        stalled = restarts = 0
        with open(path, "rb") as fh:
            while not complete:
                if stalled > 200:
                    raise SyncError(f"chunked upload of blob {sha256} of run {run_id} made no progress")
                if restarts > self.retry.attempts:
                    raise ServerUnavailableError(f"chunked upload of blob {sha256} of run {run_id} was discarded "
                                                 f"{restarts} times as corrupt; will try again later")
                if offset >= size:
                    # every byte is there but another request (a second uploader) is still verifying it
                    time.sleep(min(1.0, 0.02 * (stalled + 1)))
                    stalled += 1
                    offset, complete, _ = self.upload_offset(run_id, sha256)
                    continue
                chunk = os.pread(fh.fileno(), min(chunk_size, size - offset), offset)
                try:
                    new_offset, complete, accepted = self.patch_upload(run_id, sha256, offset, size, chunk)
                except ServerRejectedError as exc:
                    if exc.status != 413 or chunk_size <= max(MIN_CHUNK, min_chunk):
                        raise
                    chunk_size = self.chunk_size = max(MIN_CHUNK, min_chunk, chunk_size // 2)
                    continue
                if accepted:
                    progress(new_offset - offset)
                else:
                    time.sleep(0.02)  # another uploader is appending to this blob right now
                stalled = 0 if new_offset > offset else stalled + 1
                restarts += new_offset < offset  # the server discarded a whole upload that arrived corrupted
                offset = new_offset


def _says_retryable(response: Response) -> bool:
    """The server marks answers that another try may fix (a corrupted transfer) with ``retryable``."""
    return 400 <= response.status < 500 and response.json().get("retryable") is True


def pack_records(records: list) -> bytes:
    """The msgpack body of a records POST; records are :mod:`~tracker_sdk.runformat.records` structs."""
    return msgspec.msgpack.encode({"records": records})
