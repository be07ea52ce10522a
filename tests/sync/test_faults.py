"""Through a proxy that answers 503/429, resets connections and drops acknowledgements after the
server committed: the server ends with every record once and every blob intact."""

import threading

from tracker_sdk.errors import ServerUnavailableError
from tracker_sdk.sync.http import HTTPBackend
from tracker_sdk.sync.retry import RetryPolicy
from tracker_sdk.sync.uploader import Uploader

from faultproxy import FaultProxy
from synchelpers import assert_same_run, make_run

FAST = RetryPolicy(attempts=4, backoff=0.02, max_backoff=0.1, jitter=0.5)


def _upload_until_done(uploader: Uploader, passes: int = 60) -> int:
    failures = 0
    for _ in range(passes):
        try:
            if uploader.sync_once(final=True):
                return failures
        except ServerUnavailableError:
            failures += 1  # what the background thread does: wait, then another pass
    raise AssertionError(f"no complete pass in {passes} tries")


def test_faults_lose_nothing_and_duplicate_nothing(server, tmp_path):
    run_dir = make_run(tmp_path / "runs", embeddings=4, metrics=200, n=1500, dim=32)
    proxy = FaultProxy(server.port, {"503": 0.1, "429": 0.02, "reset": 0.1, "drop_ack": 0.15},
                       seed=7, retry_after_429="1").start()
    try:
        # 1500x32 float32 vectors are 192 KB: above the threshold, so they go up in chunks
        backend = HTTPBackend(proxy.url, retry=FAST, chunk_threshold=100_000, chunk_size=64_000)
        uploader = Uploader(backend, run_dir, batch_records=25)
        _upload_until_done(uploader)
    finally:
        proxy.stop()
    assert_same_run(run_dir, server.root)
    assert {k for k, v in proxy.counts.items() if v} >= {"pass", "503", "429", "reset", "drop_ack"}
    dropped = {(method, path.split("/")[-1] if method == "POST" else path.split("/")[-2])
               for _, method, path, fault in proxy.events if fault == "drop_ack"}
    assert ("POST", "records") in dropped and ("PATCH", "uploads") in dropped, dropped
    # Retry-After: 1 on a 429 is honoured: the same request comes back at least that much later
    for i, (when, method, path, fault) in enumerate(proxy.events):
        if fault == "429":
            again = next(t for t, m, p, _ in proxy.events[i + 1:] if (m, p) == (method, path))
            assert again - when >= 0.95, (method, path)


def test_two_uploaders_of_one_run_at_once_store_one_copy(server, tmp_path):
    run_dir = make_run(tmp_path / "runs", embeddings=3, metrics=300, n=2000, dim=32)
    errors = []

    def upload():
        try:
            backend = HTTPBackend(server.url, retry=FAST, chunk_threshold=100_000, chunk_size=50_000)
            uploader = Uploader(backend, run_dir, batch_records=20)
            _upload_until_done(uploader)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert_same_run(run_dir, server.root)
