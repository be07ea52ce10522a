"""Helpers of the sync tests: a real ``tracker-server`` process on loopback, runs, comparisons."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from tracker_sdk import OfflineExperiment, open_run
from tracker_sdk.runformat import journal

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m server_stub`` in its own process; ``kill`` is a real SIGKILL."""

    def __init__(self, root: Path, port: int | None = None, api_key: str | None = None, log_path: Path | None = None):
        self.root = Path(root)
        self.port = port or free_port()
        self.api_key = api_key
        self.log_path = log_path or self.root.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        command = [sys.executable, "-m", "server_stub", "--root", str(self.root), "--port", str(self.port)]
        if self.api_key:
            command += ["--api-key", self.api_key]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/projects", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout}s: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def make_run(root: Path, *, project: str = "proj", embeddings: int = 2, metrics: int = 30, n: int = 64,
             dim: int = 8, seed: int = 0) -> Path:
    """A finished offline run with parameters, metrics, an asset and embeddings; returns its directory."""
    rng = np.random.default_rng(seed)
    exp = OfflineExperiment(project_name=project, offline_directory=str(root))
    exp.log_parameters({"lr": 0.01, "seed": seed})
    for step in range(metrics):
        exp.log_metric("loss", float(rng.random()), step=step)
    exp.log_asset(rng.bytes(1000), file_name="weights.bin")
    for step in range(embeddings):
        exp.log_embedding(rng.standard_normal((n, dim)).astype(np.float32), [f"c{i % 3}" for i in range(n)],
                          title="penultimate", step=step, reduce=None)
    exp.end()
    return exp.run_dir


def assert_same_run(local_dir: Path, server_root: Path) -> None:
    """The server's copy holds exactly the local records (one per seq) and the same blob bytes."""
    local = open_run(local_dir)
    remote_dir = Path(server_root) / local.project / local.run_id
    remote = open_run(remote_dir)
    raw_seqs = [r["seq"] for r in journal.read_journal(remote_dir / "journal")]
    assert raw_seqs == list(range(len(local.records))), "server journal must hold each seq once, in order"
    assert remote.records == local.records
    assert set(remote.blob_refs()) == set(local.blob_refs())
    remote.verify()
    for sha in set(local.blob_refs()):
        assert remote.blob_path(sha).read_bytes() == local.blob_path(sha).read_bytes()
