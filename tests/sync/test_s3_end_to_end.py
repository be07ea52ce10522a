"""An Experiment logging to s3:// and `tracker upload --url s3://`, against the real Ceph gateways."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tracker_sdk import Experiment
from tracker_sdk.runformat import open_run
from tracker_sdk.sync.s3 import S3Backend

from services import requires_s3, s3_prefix, s3_service  # noqa: F401  (fixtures)
from synchelpers import make_run

pytestmark = requires_s3


@pytest.fixture
def aws_env(s3_service, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_service.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_service.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_service


def test_an_experiment_with_an_s3_url_is_written_locally_and_synced_to_the_bucket(  # noqa: F811
        aws_env, s3_prefix, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "local"))
    uri = aws_env.uri(s3_prefix)
    exp = Experiment(url=uri, project_name="s3proj")
    for step in range(20):
        exp.log_metric("loss", 1.0 / (step + 1), step=step)
    exp.log_embedding(np.random.default_rng(0).random((200, 16)), [i % 4 for i in range(200)], title="e")
    exp.end()
    local = open_run(exp.run_dir)
    assert any(e.reductions for e in local.embeddings)  # the default PCA is synced too
    # read back through the other gateway: a stateless replica of the same bucket
    replica = S3Backend(aws_env.uri(s3_prefix, endpoint=aws_env.endpoint_2))
    assert ("s3proj", exp.run_id) in replica.list_runs()
    stored = open_run(replica.download_run(exp.run_id, tmp_path / "back"))
    assert stored.records == local.records
    stored.verify()


def test_tracker_upload_to_s3_once_then_nothing(aws_env, s3_prefix, tmp_path):  # noqa: F811
    root = tmp_path / "runs"
    run_dir = make_run(root, project="up", seed=3)
    argv = [sys.executable, "-m", "tracker_sdk.cli", "upload", str(root), "--url", aws_env.uri(s3_prefix),
            "--no-progress"]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert first.returncode == 0 and "1 runs uploaded, 0 already on s3://" in first.stdout, first.stderr
    again = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert again.returncode == 0 and "0 runs uploaded, 1 already on s3://" in again.stdout, again.stderr
    stored = open_run(S3Backend(aws_env.uri(s3_prefix)).download_run(run_dir.name, tmp_path / "back"))
    assert stored.records == open_run(run_dir).records
