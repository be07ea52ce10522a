"""A server killed with SIGKILL in the middle of a chunked upload resumes from its offset."""

from __future__ import annotations

import hashlib
import http.client
import os
import time

import numpy as np
import requests

from tracker_sdk.runformat import open_run
from tracker_sdk.runformat.records import AssetRecord


def test_sigkill_during_chunked_upload_then_resume(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server)
    run.create()
    data = np.random.default_rng(1).bytes(24 * 1024 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    url = f"{server.api}/runs/{run.run_id}/uploads/{digest}"
    chunk = 8 * 1024 * 1024
    headers = {"Upload-Length": str(len(data))}
    r = requests.patch(url, data=data[:chunk], headers={**headers, "Upload-Offset": "0"}, timeout=60)
    assert r.json() == {"offset": chunk, "complete": False}

    # the second chunk is half sent when the server dies
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("PATCH", f"/api/v1/runs/{run.run_id}/uploads/{digest}")
    for key, value in {**headers, "Upload-Offset": str(chunk), "Content-Length": str(chunk)}.items():
        conn.putheader(key, value)
    conn.endheaders()
    conn.send(data[chunk:chunk + chunk // 2])
    part = server.root / ".uploads" / run.run_id / f"{digest}.part"
    deadline = time.monotonic() + 20
    while part.stat().st_size < chunk + chunk // 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()
    conn.close()

    server.start()
    state = requests.get(url, timeout=10).json()
    offset = state["offset"]
    assert state["complete"] is False and chunk < offset <= chunk + chunk // 2
    while offset < len(data):
        end = min(offset + chunk, len(data))
        r = requests.patch(url, data=data[offset:end], headers={**headers, "Upload-Offset": str(offset)}, timeout=60)
        assert r.status_code == 200, r.text
        offset = r.json()["offset"]
    assert r.json()["complete"] is True
    stored = server.root / "proj" / run.run_id / "blobs" / digest[:2] / digest
    assert helpers.sha(stored.read_bytes()) == digest
    assert not part.exists()

    # the killed server's writer lock is gone: records still go in, exactly once
    rec = run.record("asset", name="big.bin", sha256=digest, size=len(data), step=None, metadata=None)
    assert run.post([rec]).json() == {"next_seq": 1}
    assert run.post([rec]).json() == {"next_seq": 1}
    assert [type(r) for r in open_run(stored.parents[2]).records] == [AssetRecord]
    assert os.path.getsize(stored) == len(data)
