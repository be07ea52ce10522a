"""The server is SIGKILLed in the middle of a large chunked upload and restarted: the client
resumes from the server's offset and the stored blob hashes to what was sent."""

import hashlib
import os
import threading
import time

import numpy as np

from tracker_sdk.errors import ServerUnavailableError
from tracker_sdk.runformat import RunWriter
from tracker_sdk.runformat.files import blob_path
from tracker_sdk.runformat.records import AssetRecord, EndRecord
from tracker_sdk.sync.http import HTTPBackend, Transport
from tracker_sdk.sync.retry import RetryPolicy
from tracker_sdk.sync.uploader import Uploader

from synchelpers import ServerProcess, assert_same_run

SIZE = int(os.environ.get("TRACKER_TEST_RESUME_MB", "200")) << 20
CHUNK = 8 << 20


class CountingTransport(Transport):
    """The real transport, counting the chunk bytes of every PATCH the server answered."""

    patched = 0

    def request(self, method, path, headers, body=None):
        response = super().request(method, path, headers, body)
        if method == "PATCH":
            self.patched += len(body)
        return response


def test_kill_server_mid_upload_then_resume(tmp_path):
    run_id = "5" * 32
    run_dir = tmp_path / "runs" / "big" / run_id
    writer = RunWriter(run_dir, info={"run_id": run_id, "project": "big", "created": time.time()})
    payload = np.random.default_rng(0).bytes(SIZE)
    sha, size = writer.write_blob([payload])
    assert sha == hashlib.sha256(payload).hexdigest() and size == SIZE
    del payload
    writer.append(AssetRecord(name="checkpoint.bin", sha256=sha, size=size))
    writer.append(EndRecord())
    writer.close()

    server = ServerProcess(tmp_path / "server-root").start()
    partial = server.root / ".uploads" / run_id / f"{sha}.part"
    patient = RetryPolicy(attempts=200, backoff=0.05, max_backoff=0.25)
    transport = CountingTransport(server.url)
    uploader = Uploader(HTTPBackend(server.url, retry=patient, transport=transport, chunk_threshold=CHUNK,
                                    chunk_size=CHUNK), run_dir)
    outcome = {}

    def upload():
        try:
            while not uploader.sync_once(final=True):
                pass
            outcome["done"] = True
        except ServerUnavailableError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=upload)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not (partial.is_file() and partial.stat().st_size >= SIZE // 3):
            assert time.monotonic() < deadline and thread.is_alive(), "the upload never got a third of the way"
            time.sleep(0.005)
        server.kill()
        killed_at = partial.stat().st_size
        assert 0 < killed_at < SIZE, "the kill must land in the middle of the upload"
        server.start()
        thread.join(180)
        assert outcome.get("done"), outcome
        stored = blob_path(server.root / "big" / run_id, sha)
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
        assert not partial.exists()
        # resumed, not restarted: besides the chunk cut by the kill, one chunk at most was refused with 409
        assert SIZE <= transport.patched <= SIZE + 2 * CHUNK, transport.patched
        assert_same_run(run_dir, server.root)
    finally:
        server.stop()
