"""Uploads always finish: the server is killed (SIGKILL) at every phase of the chunked protocol
and, after a restart, the client's next question or re-send completes the blob, hashed and
checked. Real server processes, real kills."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import threading
import time

import requests

from tracker_sdk.runformat import verify_blob
from tracker_sdk.sync.http import HTTPBackend
from tracker_sdk.sync.retry import RetryPolicy

FAST = RetryPolicy(attempts=20, backoff=0.05, max_backoff=0.5)
CHUNK = 4 << 20


def _headers(offset: int, length: int, chunk: bytes) -> dict:
    return {"Upload-Offset": str(offset), "Upload-Length": str(length), "Content-Length": str(len(chunk)),
            "Upload-Checksum": "sha256 " + base64.b64encode(hashlib.sha256(chunk).digest()).decode()}


def _setup(start_server, helpers, tmp_path, size: int):
    server = start_server()
    run = helpers.RemoteRun(server)
    run.create()
    data = os.urandom(size)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    return server, run, data, path, digest


def _finish_with_the_client(server, run, path, digest, size) -> None:
    """What ``tracker upload`` does after the restart: ask for the offset, send the rest."""
    backend = HTTPBackend(server.url, retry=FAST, chunk_threshold=1, chunk_size=CHUNK)
    try:
        backend.put_blob(run.run_id, digest, path, size)
    finally:
        backend.close()
    run_dir = server.root / run.project / run.run_id
    assert verify_blob(run_dir, digest)
    assert not list((server.root / ".uploads").rglob("*.part"))


def _restart(server) -> None:
    server.kill()
    server.start()


def test_killed_before_the_first_chunk(start_server, helpers, tmp_path):
    server, run, data, path, digest = _setup(start_server, helpers, tmp_path, 3 * CHUNK)
    url = f"{server.api}/runs/{run.run_id}/uploads/{digest}"
    assert requests.get(url, timeout=10).json() == {"offset": 0, "complete": False}
    _restart(server)
    _finish_with_the_client(server, run, path, digest, len(data))


def test_killed_mid_chunk(start_server, helpers, tmp_path):
    server, run, data, path, digest = _setup(start_server, helpers, tmp_path, 3 * CHUNK)
    chunk = data[:CHUNK]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("PATCH", f"/api/v1/runs/{run.run_id}/uploads/{digest}")
    for key, value in _headers(0, len(data), chunk).items():
        conn.putheader(key, value)
    conn.endheaders()
    conn.send(chunk[: CHUNK // 2])
    part = server.root / ".uploads" / run.run_id / f"{digest}.part"
    deadline = time.monotonic() + 20
    while (not part.exists() or part.stat().st_size < CHUNK // 4) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert part.stat().st_size >= CHUNK // 4, "the server never started writing the chunk"
    _restart(server)
    conn.close()
    _finish_with_the_client(server, run, path, digest, len(data))


def test_killed_after_the_last_chunk_before_the_commit(start_server, helpers, tmp_path):
    server, run, data, path, digest = _setup(start_server, helpers, tmp_path, 3 * CHUNK)
    url = f"{server.api}/runs/{run.run_id}/uploads/{digest}"
    for offset in range(0, 2 * CHUNK, CHUNK):
        chunk = data[offset: offset + CHUNK]
        assert requests.patch(url, data=chunk, headers=_headers(offset, len(data), chunk), timeout=30).ok
    server.kill()
    # the state a kill between the last write and the commit leaves: every byte in the part
    part = server.root / ".uploads" / run.run_id / f"{digest}.part"
    with open(part, "ab") as fh:
        fh.write(data[2 * CHUNK:])
    server.start()
    assert requests.get(url, timeout=30).json() == {"offset": len(data), "complete": True}  # asking commits it
    _finish_with_the_client(server, run, path, digest, len(data))


def test_killed_during_the_commit(start_server, helpers, tmp_path):
    size = 96 << 20  # large enough that the commit (copy, hash, fsync) takes a while
    server, run, data, path, digest = _setup(start_server, helpers, tmp_path, size)
    url = f"{server.api}/runs/{run.run_id}/uploads/{digest}"
    big = 48 << 20
    assert requests.patch(url, data=data[:big], headers=_headers(0, size, data[:big]), timeout=120).ok
    last = data[big:]
    threading.Thread(target=lambda: _quietly(requests.patch, url, data=last, headers=_headers(big, size, last),
                                             timeout=120), daemon=True).start()
    blob_dir = server.root / run.project / run.run_id / "blobs" / digest[:2]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (blob_dir.is_dir() and any(
            name.endswith(".part") for name in os.listdir(blob_dir))):
        time.sleep(0.001)
    assert blob_dir.is_dir() and any(n.endswith(".part") for n in os.listdir(blob_dir)), "no commit was seen"
    assert not (blob_dir / digest).exists()
    _restart(server)
    _finish_with_the_client(server, run, path, digest, size)


def _quietly(func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except requests.RequestException:
        pass  # the server was killed under this request
