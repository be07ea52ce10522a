"""Helpers of the sync tests: a real ``tracker-server`` process on loopback, runs, comparisons."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tracker_sdk import OfflineExperiment, open_run
from tracker_sdk.runformat import journal

from serverprocess import ServerProcess, free_port  # noqa: F401  (tests/ is on sys.path)


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
    raw_seqs = [r.seq for r in journal.read_journal(remote_dir / "journal")]
    assert raw_seqs == list(range(len(local.records))), "server journal must hold each seq once, in order"
    assert remote.records == local.records
    assert set(remote.blob_refs()) == set(local.blob_refs())
    remote.verify()
    for sha in set(local.blob_refs()):
        assert remote.blob_path(sha).read_bytes() == local.blob_path(sha).read_bytes()
