"""Background sync of a live Experiment against a real server process, and with no server at all."""

import json
import logging
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from tracker_sdk import Experiment, open_run
from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.sync.uploader import SyncState

from faultproxy import FaultProxy
from synchelpers import ServerProcess, assert_same_run, free_port


def _server_next_seq(url: str, run_id: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/runs/{run_id}", timeout=5) as response:
            return int(json.loads(response.read())["next_seq"])
    except urllib.error.HTTPError:
        return 0


def test_runs_sync_while_training_through_a_faulty_network(server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "local"))
    proxy = FaultProxy(server.port, {"503": 0.08, "reset": 0.08, "drop_ack": 0.08}, seed=3).start()
    try:
        exp = Experiment(url=proxy.url, project_name="live", end_timeout=60)
        exp.log_parameters({"lr": 0.1, "layers": [64, 32]})
        rng = np.random.default_rng(0)
        for step in range(50):
            exp.log_metric("loss", 1.0 / (step + 1), step=step)
        exp.log_embedding(rng.standard_normal((300, 16)).astype(np.float32), [str(i % 4) for i in range(300)],
                          title="hidden", step=0, reduce="pca")
        logged = len(open_run(exp.run_dir).records)  # parameters, metrics, the embedding, its inline PCA
        deadline = time.monotonic() + 30
        while _server_next_seq(server.url, exp.run_id) < logged and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _server_next_seq(server.url, exp.run_id) == logged, "records must arrive while the run is live"
        assert open_run(server.root / "live" / exp.run_id).status == "running"
        with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
            exp.end()
    finally:
        proxy.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "still to send" in r.getMessage()]
    assert sum(proxy.counts[k] for k in ("503", "reset", "drop_ack")) >= 3
    assert_same_run(exp.run_dir, server.root)
    remote = open_run(server.root / "live" / exp.run_id)
    assert remote.status == "finished"
    assert [r.method for r in remote.embeddings[0].reductions] == ["pca"]  # a reduction record and its coords blob
    assert SyncState(exp.run_dir, proxy.url).acknowledged() == len(open_run(exp.run_dir).records)


def test_server_down_for_a_whole_run_then_tracker_upload(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "local"))
    port = free_port()  # nothing listens here until the end of the test
    url = f"http://127.0.0.1:{port}"
    exp = Experiment(url=url, project_name="offline-first", end_timeout=1.5)
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((128, 8)).astype(np.float32)
    latencies = []
    for step in range(600):
        start = time.perf_counter()
        if step % 100 == 0:
            exp.log_embedding(vectors + step, [str(i % 2) for i in range(128)], step=step, reduce=None)
        elif step % 10 == 0:
            exp.log_parameter(f"p{step}", step)
        else:
            exp.log_metric("loss", float(step), step=step)
        latencies.append(time.perf_counter() - start)
    p99 = float(np.percentile(latencies, 99))
    assert p99 < 0.050, f"log_* p99 was {p99 * 1000:.1f} ms with the server down"
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
        exp.end()
    assert time.monotonic() - start < 1.5 + 3, "end() must wait a bounded time"
    messages = [r.getMessage() for r in caplog.records if "still to send" in r.getMessage()]
    assert len(messages) == 1
    local = open_run(exp.run_dir)
    assert f"{len(local.records)} records and {len(set(local.blob_refs()))} blobs" in messages[0]
    command = re.search(r"^\s+(tracker upload .+)$", messages[0], re.M).group(1)
    assert command == f"tracker upload {shlex.quote(str(exp.run_dir.resolve()))} --url {url}"

    server = ServerProcess(tmp_path / "server-root", port=port).start()
    try:
        argv = [sys.executable, "-m", "tracker_sdk.cli"] + shlex.split(command)[1:]
        first = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        assert "1 runs uploaded" in first.stdout
        assert_same_run(exp.run_dir, server.root)
        again = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "0 runs uploaded, 1 already on" in again.stdout
        assert_same_run(exp.run_dir, server.root)
    finally:
        server.stop()


def test_refused_run_is_reported_not_retried(server, tmp_path, monkeypatch, caplog):
    keyed = ServerProcess(tmp_path / "keyed-root", api_key="right-key").start()
    try:
        monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "local"))
        exp = Experiment(url=keyed.url, api_key="wrong-key", project_name="p", end_timeout=5)
        exp.log_metric("loss", 1.0)
        start = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
            exp.end()
        assert time.monotonic() - start < 5, "a 4xx must not be retried until the timeout"
    finally:
        keyed.stop()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert re.search(r"refused with 40[13]", text)
    assert f"{keyed.url} refused run p/" in text
    assert "--api-key YOUR_API_KEY" in text and "wrong-key" not in text


def test_bad_end_timeout_setting_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("TRACKER_END_TIMEOUT", "soon")
    with pytest.raises(InvalidArgumentError, match="TRACKER_END_TIMEOUT must be a number of seconds; got 'soon'"):
        Experiment(url="http://127.0.0.1:9", project_name="p")
    assert not (tmp_path / "local").exists()
