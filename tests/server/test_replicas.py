"""Two real ``tracker-server`` replicas on one PostgreSQL database and one S3 bucket (two gateways).

Replica A talks to the first RADOS gateway, B to the second; both gateways serve the same Ceph
cluster, so A and B share every stored byte and nothing else. The clients are the SDK's own
(HTTPBackend + Uploader, ``Experiment(url=...)``, ``tracker upload``), the server processes are
killed with real SIGKILLs, and what is stored is read back through the other replica (blobs)
and from PostgreSQL itself (the records table both replicas write). These are the commands
docs/deploy.md gives for a two-replica deployment. Skipped with a message without the
services (``.ci/services/up.sh``).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest

from tracker_sdk import Experiment, OfflineExperiment
from tracker_sdk.errors import ServerUnavailableError
from tracker_sdk.runformat import open_run
from tracker_sdk.runformat import records as rec
from tracker_sdk.sync.http import HTTPBackend
from tracker_sdk.sync.retry import RetryPolicy
from tracker_sdk.sync.uploader import Uploader

from serverprocess import REPO, ServerProcess
from services import POSTGRES_ENV, postgres_skip_reason, s3_prefix, s3_service  # noqa: F401  (fixtures)

MiB = 1 << 20
FAIL_FAST = RetryPolicy(attempts=2, backoff=0.05, jitter=0)
RIDE_OUT_RESTART = RetryPolicy(attempts=40, backoff=0.1, max_backoff=0.5)


# -- the deployment under test -----------------------------------------------------------------
class Cluster:
    """Replicas A and B on one database and one bucket prefix, plus ways to look at both stores."""

    def __init__(self, tmp_path: Path, index_uri: str, s3, prefix: str):
        self.index_uri, self.s3, self.prefix = index_uri, s3, prefix
        self.a = self._replica(tmp_path / "a", s3.endpoint)
        self.b = self._replica(tmp_path / "b", s3.endpoint_2)

    def _replica(self, root: Path, endpoint: str) -> ServerProcess:
        # the local directory is only a cache: everything that lasts is in PostgreSQL and the bucket
        return ServerProcess(root, "--index-uri", self.index_uri, "--blob-uri", self.s3.uri(self.prefix, endpoint),
                             log_path=root.parent / f"{root.name}.log")

    def stop(self) -> None:
        for server in (self.a, self.b):
            server.stop()

    # -- what is stored, seen from outside the servers ---------------------------------------
    def stored_records(self, run_id: str) -> list:
        """The run's rows of the shared records table, in seq order, decoded."""
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.index_uri).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT seq, body FROM records WHERE run_id = %s ORDER BY seq", (run_id,)).fetchall()
        return [rec.decode(bytes(body), where=f"records row {seq}") for seq, body in rows]

    def keys(self) -> list[str]:
        client = self.s3.client()
        found = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.s3.bucket, Prefix=self.prefix + "/"):
            found += [item["Key"] for item in page.get("Contents", [])]
        return found

    def unfinished_uploads(self) -> list[str]:
        listing = self.s3.client().list_multipart_uploads(Bucket=self.s3.bucket, Prefix=self.prefix + "/")
        return [upload["Key"] for upload in listing.get("Uploads", [])]

    def delete_everything(self) -> None:
        client = self.s3.client()
        keys = self.keys()
        for i in range(0, len(keys), 1000):
            client.delete_objects(Bucket=self.s3.bucket,
                                  Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        for upload in client.list_multipart_uploads(Bucket=self.s3.bucket, Prefix=self.prefix + "/").get("Uploads", []):
            client.abort_multipart_upload(Bucket=self.s3.bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def _admin() -> str:
    """psycopg's URL of the services' own database, to create and drop the tests' databases from."""
    from sqlalchemy.engine import make_url

    return make_url(os.environ[POSTGRES_ENV]).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def migrated_database():
    """A database that ``tracker-server migrate --index-uri URI`` brought to the newest schema.

    Migrated once per module; each test gets a fresh copy of it (``CREATE DATABASE … TEMPLATE``).
    """
    reason = postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(os.environ[POSTGRES_ENV])
    name = f"replicas_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        index_uri = base.set(database=name).render_as_string(hide_password=False)
        done = subprocess.run([sys.executable, "-m", "server_stub", "migrate", "--index-uri", index_uri], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        yield index_uri
    finally:
        with psycopg.connect(_admin(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def index_uri(migrated_database):
    """A fresh, migrated PostgreSQL database for one test, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    template = make_url(migrated_database)
    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_admin(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    try:
        yield template.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def cluster(tmp_path, index_uri, s3_service, s3_prefix, monkeypatch):  # noqa: F811
    """A fresh database and bucket prefix with replicas A and B running and healthy."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_service.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_service.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cluster = Cluster(tmp_path, index_uri, s3_service, s3_prefix)
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:  # both start at once: half the wait
            for started in [pool.submit(server.start) for server in (cluster.a, cluster.b)]:
                started.result()
        for server in (cluster.a, cluster.b):
            assert health(server) == 200  # both stores answer
        yield cluster
    finally:
        cluster.stop()
        cluster.delete_everything()


# -- clients and read-back -------------------------------------------------------------------
def small_run(root: Path, seed: int, shared: bytes = b"") -> Path:
    """A finished run: parameters, metrics, an asset, two embeddings, and ``shared`` bytes as an asset."""
    rng = np.random.default_rng(seed)
    exp = OfflineExperiment(project_name="replicas", offline_directory=str(root), quiet=True)
    exp.log_parameters({"seed": seed, "lr": 0.01})
    for step in range(30):
        exp.log_metric("loss", float(rng.random()), step=step)
    exp.log_asset(rng.bytes(5000), file_name="own.bin")
    if shared:
        exp.log_asset(shared, file_name="shared.bin")
    for step in range(2):
        exp.log_embedding(rng.standard_normal((200, 16)).astype(np.float32), [f"c{i % 4}" for i in range(200)],
                          title="layer", step=step, reduce=None)
    exp.end()
    return exp.run_dir


def upload(server: ServerProcess, run_dir: Path, *, chunks: int | None = None, batch_records: int = 1000) -> None:
    """The SDK's uploader, through one replica; ``chunks``: blobs above this size go in chunks of it."""
    backend = HTTPBackend(server.url, **({"chunk_threshold": chunks, "chunk_size": chunks} if chunks else {}))
    try:
        assert Uploader(backend, run_dir, batch_records=batch_records).sync_once(final=True)
    finally:
        backend.close()


def api(server: ServerProcess, path: str) -> dict:
    with urllib.request.urlopen(server.api + path, timeout=30) as response:
        return json.loads(response.read())


def health(server: ServerProcess) -> int:
    try:
        with urllib.request.urlopen(server.url + "/healthz", timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def blob_sha256(server: ServerProcess, run_id: str, sha: str) -> str:
    """The sha256 of the blob as ``server`` streams it back."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(f"{server.api}/runs/{run_id}/blobs/{sha}", timeout=120) as response:
        while chunk := response.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def assert_whole(cluster: Cluster, run_dir: Path, through: ServerProcess) -> None:
    """Every local record stored once, the replica ``through`` counts them all and serves every blob intact."""
    local = open_run(run_dir)
    assert cluster.stored_records(local.run_id) == local.records
    assert api(through, f"/runs/{local.run_id}")["next_seq"] == len(local.records)
    for sha in set(local.blob_refs()):
        assert blob_sha256(through, local.run_id, sha) == sha


def assert_stored_once(cluster: Cluster, shas) -> None:
    """One content object per blob in the bucket, and no staging object or multipart upload left over."""
    keys = cluster.keys()
    for sha in shas:
        assert len([k for k in keys if sha in k]) == 1, [k for k in keys if sha in k]
    assert cluster.unfinished_uploads() == []


# -- the tests ---------------------------------------------------------------------------------
def test_an_upload_killed_with_replica_a_finishes_through_b(cluster, tmp_path):
    """About half of a 200 MB blob goes through A, A is SIGKILLed, B resumes from the parts A stored."""
    exp = OfflineExperiment(project_name="replicas", offline_directory=str(tmp_path / "local"), quiet=True)
    vectors = np.random.default_rng(0).standard_normal((200 * MiB // 1024, 256), dtype=np.float32)
    exp.log_embedding(vectors, None, title="big", reduce=None)
    exp.end()
    del vectors
    run = open_run(exp.run_dir)
    (sha,) = [s for s in set(run.blob_refs()) if run.blob_path(s).stat().st_size > 100 * MiB]
    size = run.blob_path(sha).stat().st_size

    sent_through_a = []

    def kill_a_halfway(nbytes: int) -> None:
        sent_through_a.append(nbytes)
        if sum(sent_through_a) >= size // 2 and cluster.a.proc.poll() is None:
            cluster.a.kill()

    backend_a = HTTPBackend(cluster.a.url, retry=FAIL_FAST)
    with pytest.raises(ServerUnavailableError, match=re.escape(cluster.a.url)):
        Uploader(backend_a, exp.run_dir, progress=kill_a_halfway).sync_once(final=True)
    backend_a.close()
    others = sum(run.blob_path(s).stat().st_size for s in set(run.blob_refs()) if s != sha)
    acknowledged = sum(sent_through_a) - others  # A acknowledged at least this much of the big blob
    assert size // 2 - others <= acknowledged < size

    backend_b = HTTPBackend(cluster.b.url)
    offset, complete = backend_b.upload_offset(run.run_id, sha)[:2]
    assert not complete and acknowledged <= offset < size, (acknowledged, offset, size)
    uploader = Uploader(backend_b, exp.run_dir)
    assert uploader.sync_once(final=True)
    backend_b.close()
    assert uploader.bytes_sent <= size - offset  # resumed, not started again
    assert blob_sha256(cluster.b, run.run_id, sha) == sha
    assert_whole(cluster, exp.run_dir, through=cluster.b)
    assert_stored_once(cluster, [sha])


def test_one_run_uploaded_through_both_replicas_at_once_is_stored_once(cluster, tmp_path):
    rng = np.random.default_rng(1)
    exp = OfflineExperiment(project_name="replicas", offline_directory=str(tmp_path / "local"), quiet=True)
    for step in range(300):
        exp.log_metric("loss", float(rng.random()), step=step)
    exp.log_embedding(rng.standard_normal((10 * MiB // 64, 16), dtype=np.float32), None, title="chunked",
                      reduce=None)  # 40 MiB: five chunks of 8 MiB, sent by both uploaders at the same offsets
    exp.log_asset(rng.bytes(100_000), file_name="small.bin")
    exp.end()
    run = open_run(exp.run_dir)

    start = threading.Barrier(2)
    errors = []

    def send(server):
        try:
            start.wait(timeout=30)
            upload(server, exp.run_dir, chunks=8 * MiB, batch_records=50)
        except BaseException as exc:  # reported below, with the replica's name
            errors.append((server.url, exc))

    threads = [threading.Thread(target=send, args=(server,)) for server in (cluster.a, cluster.b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert_whole(cluster, exp.run_dir, through=cluster.a)
    assert api(cluster.b, f"/runs/{run.run_id}")["next_seq"] == len(run.records)
    assert_stored_once(cluster, set(run.blob_refs()))


def test_sixteen_clients_over_both_replicas_lose_and_duplicate_nothing(cluster, tmp_path):
    shared = np.random.default_rng(99).bytes(3 * MiB)  # one blob every client sends: stored once
    runs = [small_run(tmp_path / "clients" / str(i), seed=i, shared=shared) for i in range(16)]
    replicas = [cluster.a, cluster.b]
    errors = []

    def client(i: int) -> None:
        try:
            upload(replicas[i % 2], runs[i])
        except BaseException as exc:
            errors.append((i, exc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for i, run_dir in enumerate(runs):
        assert_whole(cluster, run_dir, through=replicas[(i + 1) % 2])  # read through the other replica
    listed = {run["run_id"] for server in replicas for run in api(server, "/projects/replicas/runs")}
    assert listed == {run_dir.name for run_dir in runs}
    assert_stored_once(cluster, {sha for run_dir in runs for sha in open_run(run_dir).blob_refs()})


def test_a_replica_restart_loses_no_accepted_record(cluster, tmp_path):
    rng = np.random.default_rng(2)
    exp = OfflineExperiment(project_name="replicas", offline_directory=str(tmp_path / "local"), quiet=True)
    for step in range(3000):
        exp.log_metric("loss", float(rng.random()), step=step)
    exp.end()
    run = open_run(exp.run_dir)
    backend = HTTPBackend(cluster.a.url, retry=RIDE_OUT_RESTART)
    uploader = Uploader(backend, exp.run_dir, batch_records=20)
    outcome = []
    sender = threading.Thread(target=lambda: outcome.append(uploader.sync_once(final=True)))
    sender.start()
    deadline = time.monotonic() + 60
    while (uploader.server_next_seq or 0) < 200 and sender.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    cluster.a.kill()
    accepted = uploader.server_next_seq  # nothing more can be acknowledged until A is back
    assert 0 < accepted < len(run.records), "the restart must fall in the middle of the upload"

    # everything A acknowledged is there for B, before A is back
    assert api(cluster.b, f"/runs/{run.run_id}")["next_seq"] >= accepted
    assert cluster.stored_records(run.run_id)[:accepted] == run.records[:accepted]

    cluster.a.start()
    sender.join(timeout=120)
    backend.close()
    assert outcome == [True]
    assert_whole(cluster, exp.run_dir, through=cluster.a)


def test_the_documented_clients_experiment_url_and_tracker_upload(cluster, tmp_path, monkeypatch):
    """``Experiment(url=A)`` syncing live, ``tracker upload DIR --url B``: each read back through the other."""
    monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "live"))
    exp = Experiment(url=cluster.a.url, project_name="replicas", quiet=True)
    for step in range(50):
        exp.log_metric("loss", 1.0 / (step + 1), step=step)
    exp.log_embedding(np.random.default_rng(3).random((300, 8)), [i % 3 for i in range(300)], title="live",
                      reduce=None)
    exp.end()
    assert_whole(cluster, exp.run_dir, through=cluster.b)

    offline = small_run(tmp_path / "offline", seed=5)
    done = subprocess.run([sys.executable, "-m", "tracker_sdk.cli", "upload", str(tmp_path / "offline"),
                           "--url", cluster.b.url, "--no-progress"], capture_output=True, text=True, timeout=120,
                          env=os.environ.copy())
    assert done.returncode == 0 and "1 runs uploaded" in done.stdout, done.stdout + done.stderr
    assert_whole(cluster, offline, through=cluster.a)
