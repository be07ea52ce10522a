"""Bytes corrupted on the way: a bad chunk is answered 460 and sent again, a whole blob that does
not hash to its name is retried like any transient error, and background sync never stops
for good on it (a real server behind a proxy that flips one byte of blob bodies)."""

import logging

import numpy as np
import pytest
from faultproxy import FaultProxy
from synchelpers import assert_same_run, make_run

from tracker_sdk import Experiment, open_run
from tracker_sdk.sync.http import HTTPBackend
from tracker_sdk.sync.retry import RetryPolicy
from tracker_sdk.sync.uploader import Uploader

FAST = RetryPolicy(attempts=8, backoff=0.02, max_backoff=0.1, jitter=0.5)


@pytest.mark.parametrize("chunk_threshold, where, status", [(100_000, "uploads", 460), (10 ** 9, "blobs", 422)],
                         ids=["chunks", "whole-blobs"])
def test_corrupted_blobs_are_sent_again_until_they_arrive_intact(server, tmp_path, chunk_threshold, where, status):
    run_dir = make_run(tmp_path / "runs", embeddings=3, metrics=20, n=1500, dim=32)
    proxy = FaultProxy(server.port, {"corrupt": 0.4}, seed=11).start()
    try:
        # 1500x32 float32 vectors are 192 KB: chunked under the first threshold, one PUT under the second
        backend = HTTPBackend(proxy.url, retry=FAST, chunk_threshold=chunk_threshold, chunk_size=64_000)
        assert Uploader(backend, run_dir, batch_records=25).sync_once(final=True) is True
    finally:
        proxy.stop()
    assert_same_run(run_dir, server.root)  # every blob re-hashed and equal
    corrupted = [path for _, method, path, fault in proxy.events
                 if fault == "corrupt" and method in ("PUT", "PATCH") and f"/{where}/" in path]
    assert len(corrupted) >= 2 and backend.statuses[status] == len(corrupted), (corrupted, backend.statuses)


def test_background_sync_rides_out_corrupted_blobs(server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "local"))
    proxy = FaultProxy(server.port, {"corrupt": 0.5}, seed=5).start()
    try:
        exp = Experiment(url=proxy.url, project_name="bitflips", end_timeout=60)
        rng = np.random.default_rng(0)
        for step in range(3):
            exp.log_metric("loss", 1.0 / (step + 1), step=step)
            exp.log_embedding(rng.standard_normal((200, 8)).astype(np.float32), [str(i % 3) for i in range(200)],
                              step=step, reduce=None)
        with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
            exp.end()
    finally:
        proxy.stop()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "sync stopped" not in text and "still to send" not in text, text
    assert proxy.counts["corrupt"] >= 2
    assert_same_run(exp.run_dir, server.root)
    assert open_run(server.root / "bitflips" / exp.run_id).status == "finished"
