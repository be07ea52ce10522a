"""The HTTP API of scale-out ``tracker-server`` processes (SharedStore): SQL index + shared blob store.

Every test runs on SQLite + a blob directory, and again on PostgreSQL + S3 (the Ceph gateways of
``.ci/services/up.sh``) when those services are configured. Servers are real processes; two of
them on the same stores are two replicas.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import numpy as np
import pytest
import requests

from serverprocess import REPO, ServerProcess
from services import postgres_url, s3_service  # noqa: F401  (fixtures)


@dataclass
class Stores:
    index_uri: str
    blob_uri: str
    kind: str

    def args(self) -> list[str]:
        return ["--index-uri", self.index_uri, "--blob-uri", self.blob_uri]


def _command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server_stub", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(params=["sqlite-dir", "postgres-s3"])
def stores(request, tmp_path) -> Stores:
    if request.param == "sqlite-dir":
        return Stores(f"sqlite:///{tmp_path / 'index.sqlite3'}", str(tmp_path / "blobs"), request.param)
    index_uri = request.getfixturevalue("postgres_url")
    s3 = request.getfixturevalue("s3_service")
    blob_uri = (s3.uri(f"tests/{uuid.uuid4().hex}") + f"&region=us-east-1&aws_access_key_id={s3.access_key}"
                f"&aws_secret_access_key={s3.secret_key}")
    migrated = _command("migrate", "--index-uri", index_uri)
    assert migrated.returncode == 0, migrated.stderr
    return Stores(index_uri, blob_uri, request.param)


@pytest.fixture
def replica(stores, tmp_path):
    """``replica(name)`` -> a running server on ``stores`` whose --root holds only its caches."""
    servers = []

    def _start(name: str = "a") -> ServerProcess:
        server = ServerProcess(tmp_path / f"cache-{name}", *stores.args(), log_path=tmp_path / f"{name}.log")
        servers.append(server)
        return server.start()

    yield _start
    for server in servers:
        server.stop()


def _embedding(run, helpers, rng, n=24, dim=6):
    return run.embedding_record(rng.standard_normal((n, dim)).astype(np.float32), [f"c{i % 3}" for i in range(n)],
                                sprite=helpers.png_bytes(), group="g", step=0)


def test_a_run_written_through_one_replica_reads_back_whole_through_another(replica, helpers):
    a, b = replica("a"), replica("b")
    rng = np.random.default_rng(0)
    run = helpers.RemoteRun(a, project="vision")
    assert run.create(name="first") == {"run_id": run.run_id, "project": "vision", "next_seq": 0}
    emb = _embedding(run, helpers, rng)
    coords = rng.standard_normal((24, 2)).astype(np.float32)
    coords_sha = run.put_blob(helpers.npy_bytes(coords))
    reduction = run.record("reduction", id=uuid.uuid4().hex, embedding_id=emb["id"], method="pca", n_components=2,
                           params={}, coords={"sha256": coords_sha, "dtype": "float32", "shape": [24, 2]})
    batch = [run.record("parameter", name="lr", value=0.5), run.record("metric", name="loss", value=2.0, step=0),
             emb, reduction, run.record("end")]
    assert run.post(batch).json() == {"next_seq": 5}

    for server in (a, b):
        api = server.api
        assert requests.get(f"{api}/projects", timeout=10).json()[0]["name"] == "vision"
        listed = requests.get(f"{api}/projects/vision/runs", timeout=10).json()
        assert [(r["run_id"], r["name"], r["status"], r["parameters"], r["n_embeddings"]) for r in listed] == \
            [(run.run_id, "first", "finished", {"lr": 0.5}, 1)]
        summary = requests.get(f"{api}/runs/{run.run_id}", timeout=10).json()
        assert (summary["next_seq"], summary["metric_names"]) == (5, ["loss"])
        listing = requests.get(f"{api}/runs/{run.run_id}/embeddings", timeout=10).json()
        assert [e["id"] for e in listing] == [emb["id"]] and listing[0]["reductions"][0]["id"] == reduction["id"]
        vectors = requests.get(f"{api}/runs/{run.run_id}/embeddings/{emb['id']}/vectors", timeout=10)
        assert vectors.headers["X-Shape"] == "24,6"
        got = requests.get(f"{api}/runs/{run.run_id}/reductions/{reduction['id']}/coords", timeout=10)
        assert np.array_equal(np.frombuffer(got.content, dtype="<f4").reshape(24, 2), coords)
        meta = requests.get(f"{api}/runs/{run.run_id}/embeddings/{emb['id']}/metadata", timeout=10).json()
        assert meta["columns"][0]["values"][:4] == ["c0", "c1", "c2", "c0"]
        sprite = requests.get(f"{api}/runs/{run.run_id}/embeddings/{emb['id']}/sprite", timeout=10)
        assert sprite.content == helpers.png_bytes()
        near = requests.get(f"{api}/runs/{run.run_id}/embeddings/{emb['id']}/neighbors?index=3&k=4", timeout=10)
        assert len(near.json()["neighbors"]) == 4 and 3 not in near.json()["neighbors"]
    # the same vectors bytes from both replicas, and a run renamed through B is renamed for A
    assert requests.get(f"{b.api}/runs/{run.run_id}/embeddings/{emb['id']}/vectors", timeout=10).content == \
        requests.get(f"{a.api}/runs/{run.run_id}/embeddings/{emb['id']}/vectors", timeout=10).content
    helpers.RemoteRun(b, project="vision", run_id=run.run_id).create(name="renamed")
    assert requests.get(f"{a.api}/runs/{run.run_id}", timeout=10).json()["name"] == "renamed"
    r = requests.put(f"{b.api}/projects/other/runs/{run.run_id}", json={}, timeout=10)
    assert r.status_code == 409 and "already exists in project 'vision'" in r.json()["error"]


def test_a_run_reads_only_the_blobs_sent_for_it_even_when_storage_has_them(replica, helpers):
    server = replica()
    first, second = helpers.RemoteRun(server), helpers.RemoteRun(server)
    first.create()
    second.create()
    data = os.urandom(50_000)
    digest = first.put_blob(data)
    for method in (requests.head, requests.get):
        assert method(f"{server.api}/runs/{second.run_id}/blobs/{digest}", timeout=10).status_code == 404
    wrong = requests.put(f"{server.api}/runs/{second.run_id}/blobs/{digest}", data=data[:-1] + b"x", timeout=10)
    assert wrong.status_code == 422 and wrong.json()["retryable"] is True
    assert requests.head(f"{server.api}/runs/{second.run_id}/blobs/{digest}", timeout=10).status_code == 404
    put = requests.put(f"{server.api}/runs/{second.run_id}/blobs/{digest}", data=data, timeout=10)
    assert put.status_code == 201 and put.json() == {"sha256": digest, "size": 50_000, "created": True}
    again = requests.put(f"{server.api}/runs/{second.run_id}/blobs/{digest}", data=data, timeout=10)
    assert again.status_code == 200 and again.json()["created"] is False
    assert requests.get(f"{server.api}/runs/{second.run_id}/blobs/{digest}", timeout=10).content == data
    missing = requests.head(f"{server.api}/runs/{'f' * 32}/blobs/{digest}", timeout=10)
    assert missing.status_code == 404


def _patch(server, run_id, digest, offset, length, chunk, checksum=True):
    headers = {"Upload-Offset": str(offset), "Upload-Length": str(length)}
    if checksum:
        headers["Upload-Checksum"] = "sha256 " + base64.b64encode(hashlib.sha256(chunk).digest()).decode()
    return requests.patch(f"{server.api}/runs/{run_id}/uploads/{digest}", data=chunk, headers=headers, timeout=60)


def test_a_chunked_resend_of_a_stored_blob_is_compared_byte_for_byte(replica, helpers):
    a, b = replica("a"), replica("b")
    owner, other = helpers.RemoteRun(a), helpers.RemoteRun(a)
    owner.create()
    other.create()
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = owner.put_blob(data)
    state = requests.get(f"{a.api}/runs/{other.run_id}/uploads/{digest}", timeout=10).json()
    assert (state["offset"], state["complete"]) == (0, False)
    half = len(data) // 2
    assert _patch(a, other.run_id, digest, 0, len(data), data[:half]).json() == {"offset": half, "complete": False}
    assert requests.head(f"{b.api}/runs/{other.run_id}/blobs/{digest}", timeout=10).status_code == 404
    stale = _patch(b, other.run_id, digest, 0, len(data), data[:half])
    assert stale.status_code == 409 and stale.json()["offset"] == half  # the other replica knows the offset
    forged = _patch(b, other.run_id, digest, half, len(data), os.urandom(len(data) - half), checksum=False)
    assert forged.status_code == 422 and forged.json()["offset"] == 0
    assert requests.get(f"{b.api}/runs/{other.run_id}/uploads/{digest}", timeout=10).json()["offset"] == 0
    assert _patch(b, other.run_id, digest, 0, len(data), data[:half]).json()["offset"] == half
    assert _patch(b, other.run_id, digest, half, len(data), data[half:]).json() == \
        {"offset": len(data), "complete": True}
    assert requests.get(f"{a.api}/runs/{other.run_id}/blobs/{digest}", timeout=30).content == data


def test_a_chunked_upload_resumes_through_another_replica_after_a_kill(replica, helpers):
    a, b = replica("a"), replica("b")
    run = helpers.RemoteRun(a)
    run.create()
    chunk = 5 * 1024 * 1024  # S3's smallest part
    data = os.urandom(2 * chunk + 1000)
    digest = helpers.sha(data)
    assert _patch(a, run.run_id, digest, 0, len(data), data[:chunk]).json()["offset"] == chunk
    a.kill()
    state = requests.get(f"{b.api}/runs/{run.run_id}/uploads/{digest}", timeout=10).json()
    assert (state["offset"], state["complete"]) == (chunk, False)
    assert _patch(b, run.run_id, digest, chunk, len(data), data[chunk:2 * chunk]).json()["offset"] == 2 * chunk
    assert _patch(b, run.run_id, digest, 2 * chunk, len(data), data[2 * chunk:]).json()["complete"] is True
    assert requests.get(f"{b.api}/runs/{run.run_id}/blobs/{digest}", timeout=30).content == data


def test_a_records_batch_is_one_transaction_with_the_directory_store_s_answers(replica, helpers):
    server = replica()
    run = helpers.RemoteRun(server)
    run.create()
    rng = np.random.default_rng(1)
    metrics = [run.record("metric", name="loss", value=float(i), step=i) for i in range(4)]
    assert run.post(metrics[:2]).json() == {"next_seq": 2}
    assert run.post(metrics).json() == {"next_seq": 4}  # a resend: nothing stored twice
    ahead = dict(run.record("metric", name="loss", value=9.0, step=9), seq=7)
    r = run.post([ahead])
    assert r.status_code == 409 and r.json() == {"error": "records start at seq 7; the run expects seq 4 next",
                                                 "next_seq": 4}
    run.seq = 4
    with_gap = [run.record("metric", name="loss", value=4.0, step=4), ahead]
    r = run.post(with_gap)
    assert r.status_code == 409 and r.json() == {"error": "records skip from seq 4 to 7", "next_seq": 5}
    absent = helpers.sha(b"never sent")
    orphan = run.record("asset", name="w.bin", sha256=absent, size=10)
    r = run.post([orphan])
    assert r.status_code == 409 and r.json()["missing_blobs"] == [absent] and r.json()["next_seq"] == 5
    run.seq = 5
    lost = run.record("reduction", id=uuid.uuid4().hex, embedding_id=uuid.uuid4().hex, method="pca",
                      n_components=2, params={}, coords={"sha256": absent, "dtype": "float32", "shape": [3, 2]})
    r = run.post([lost])
    assert r.status_code == 400 and "which this run does not have" in r.json()["error"]
    run.seq = 5
    emb = _embedding(run, helpers, rng)
    bad_rows = run.record("reduction", id=uuid.uuid4().hex, embedding_id=emb["id"], method="pca", n_components=2,
                          params={}, coords={"sha256": run.put_blob(helpers.npy_bytes(np.zeros((5, 2), "f4"))),
                                             "dtype": "float32", "shape": [5, 2]})
    r = run.post([emb, bad_rows])  # the embedding is valid, the batch is not: nothing of it is stored
    assert r.status_code == 400 and "does not have the embedding's 24 rows" in r.json()["error"]
    summary = requests.get(f"{server.api}/runs/{run.run_id}", timeout=10).json()
    assert (summary["next_seq"], summary["n_embeddings"]) == (5, 0)
    not_npy = run.put_blob(b"not an npy file at all")
    run.seq = 6
    fake = run.record("reduction", id=uuid.uuid4().hex, embedding_id=emb["id"], method="pca", n_components=2,
                      params={}, coords={"sha256": not_npy, "dtype": "float32", "shape": [24, 2]})
    r = run.post([emb, fake])
    assert r.status_code == 400 and requests.get(f"{server.api}/runs/{run.run_id}", timeout=10).json()["next_seq"] == 5
    assert run.post([emb]).json() == {"next_seq": 6}
    assert [m["value"] for m in requests.get(f"{server.api}/runs/{run.run_id}/metrics", timeout=10).json()["loss"]] \
        == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_concurrent_batches_through_two_replicas_store_every_seq_once(replica, helpers):
    a, b = replica("a"), replica("b")
    run = helpers.RemoteRun(a)
    run.create()
    records = [run.record("metric", name="loss", value=float(i), step=i) for i in range(200)]
    errors = []

    def sender(server, seed):
        rng = np.random.default_rng(seed)
        client = helpers.RemoteRun(server, run_id=run.run_id)
        next_seq = 0
        try:
            while next_seq < len(records):
                end = min(len(records), next_seq + int(rng.integers(1, 30)))
                r = client.post(records[max(0, next_seq - int(rng.integers(0, 5))):end])
                assert r.status_code in (200, 409), r.text
                next_seq = r.json()["next_seq"]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=((a, b)[i % 2], i)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    stored = requests.get(f"{b.api}/runs/{run.run_id}/metrics", timeout=10).json()["loss"]
    assert [m["seq"] for m in stored] == list(range(200))
    assert [m["value"] for m in stored] == [float(i) for i in range(200)]


def test_bookmarks_are_shared_by_replicas(replica, helpers):
    a, b = replica("a"), replica("b")
    run = helpers.RemoteRun(a)
    run.create()
    put = requests.put(f"{a.api}/runs/{run.run_id}/bookmarks/best view", json={"state": {"run": run.run_id}},
                       timeout=10)
    assert put.status_code == 201
    listed = requests.get(f"{b.api}/runs/{run.run_id}/bookmarks", timeout=10).json()
    assert [(m["name"], m["state"]) for m in listed] == [("best view", {"run": run.run_id})]
    again = requests.put(f"{b.api}/runs/{run.run_id}/bookmarks/best view", json={"state": {"step": "3"}}, timeout=10)
    assert again.status_code == 200 and again.json()["created"] == put.json()["created"]
    assert requests.delete(f"{b.api}/runs/{run.run_id}/bookmarks/best view", timeout=10).status_code == 204
    assert requests.get(f"{a.api}/runs/{run.run_id}/bookmarks", timeout=10).json() == []
    gone = requests.delete(f"{a.api}/runs/{run.run_id}/bookmarks/best view", timeout=10)
    assert gone.status_code == 404 and "has no bookmark 'best view'" in gone.json()["error"]
    unknown = requests.get(f"{a.api}/runs/{'e' * 32}/bookmarks", timeout=10)
    assert unknown.status_code == 404


def test_health_reports_both_stores(replica, stores):
    server = replica()
    for path in ("/healthz", "/api/v1/health"):
        answer = requests.get(server.url + path, timeout=10)
        assert answer.status_code == 200
        body = answer.json()
        assert body["status"] == "ok" and body["index"]["ok"] and body["blobs"]["ok"]
        assert body["index"]["backend"] == ("sqlite" if stores.kind == "sqlite-dir" else "postgresql")


def test_health_answers_503_when_the_blob_store_is_gone(tmp_path):
    blobs = tmp_path / "blobs"
    server = ServerProcess(tmp_path / "cache", "--index-uri", f"sqlite:///{tmp_path / 'index.sqlite3'}",
                           "--blob-uri", str(blobs), log_path=tmp_path / "server.log").start()
    try:
        blobs.rename(tmp_path / "moved")
        answer = requests.get(server.url + "/healthz", timeout=10)
        assert answer.status_code == 503
        assert answer.json()["status"] == "unavailable" and answer.json()["blobs"]["ok"] is False
        assert answer.json()["index"]["ok"] is True
    finally:
        server.stop()


def test_gc_removes_only_blobs_no_run_links(replica, stores, helpers, tmp_path):
    server = replica()
    run = helpers.RemoteRun(server)
    run.create()
    kept = run.put_blob(b"linked to a run")
    from server_stub.blobstore import open_blob_store

    store = open_blob_store(stores.blob_uri, tmp_path / "gc-cache")
    orphan_bytes = b"stored, never linked"
    orphan = helpers.sha(orphan_bytes)
    store.put(orphan, [orphan_bytes])
    time.sleep(2)
    args = ["gc", *stores.args(), "--root", str(tmp_path / "gc-root"), "--older-than", "0.0003"]
    dry = _command(*args)
    assert dry.returncode == 0, dry.stderr
    assert orphan in dry.stdout and kept not in dry.stdout and "would remove 1 blobs" in dry.stdout
    assert store.size(orphan) is not None
    applied = _command(*args, "--apply")
    assert applied.returncode == 0 and "removed 1 blobs" in applied.stdout, applied.stdout + applied.stderr
    assert store.size(orphan) is None and store.size(kept) is not None
    assert requests.get(f"{server.api}/runs/{run.run_id}/blobs/{kept}", timeout=10).content == b"linked to a run"
    store.close()


def test_bad_storage_arguments_are_refused_before_serving(tmp_path):
    cases = [
        (["--index-uri", "mysql://db/x", "--blob-uri", str(tmp_path)],
         "--index-uri must be sqlite:///PATH or postgresql+psycopg://"),
        (["--index-uri", f"sqlite:///{tmp_path / 'i.sqlite3'}", "--blob-uri", "ftp://host/x"], "blob uri must be"),
        (["--index-uri", f"sqlite:///{tmp_path / 'i.sqlite3'}"], "--blob-uri or --root (where its default goes)"),
        ([], "--root DIR is required"),
    ]
    for args, message in cases:
        done = _command(*args, "--port", "1")
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)


def test_only_one_uri_puts_the_other_store_under_root(tmp_path, helpers):
    server = ServerProcess(tmp_path / "root", "--index-uri", f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}",
                           log_path=tmp_path / "server.log").start()
    try:
        run = helpers.RemoteRun(server)
        run.create()
        digest = run.put_blob(b"where does it go")
        assert (tmp_path / "root" / "blobs" / "blobs" / digest[:2] / digest).is_file()
        assert "blobs " + str(tmp_path / "root" / "blobs") in server.output()
    finally:
        server.stop()


def test_a_blob_another_run_publishes_mid_upload_is_proven_not_granted(tmp_path):
    """The window between "is the blob stored?" and the blob store's append: run A publishes the
    blob there, so run B's first chunk meets a stored blob. B must still send (prove) every byte
    before it may read the blob."""
    from server_stub.shared_store import SharedStore

    store = SharedStore(f"sqlite:///{tmp_path / 'index.sqlite3'}", str(tmp_path / "blobs"), tmp_path / "cache")
    try:
        run_a, run_b = uuid.uuid4().hex, uuid.uuid4().hex
        store.put_run("p", run_a, {"name": "a"})
        store.put_run("p", run_b, {"name": "b"})
        data = os.urandom(3000)
        sha = hashlib.sha256(data).hexdigest()
        first = data[:1000]
        store.put_blob(run_a, sha, [data])  # A publishes the blob ...
        # ... while B's request had already found it absent and goes straight to the blob store
        state = store._linked_when_complete(run_b, sha, store.blobs.append_upload(
            run_b, sha, 0, len(data), [first], hashlib.sha256(first).digest()))
        assert state == {"offset": 0, "complete": False, "length": len(data)}
        assert store.blob_size(run_b, sha) is None and store.blob_size(run_a, sha) == len(data)
        for offset in (0, 1000, 2000):  # B proves the bytes through the ordinary path
            chunk = data[offset: offset + 1000]
            state = store.append_upload(run_b, sha, offset, len(data), [chunk], hashlib.sha256(chunk).digest())
        assert state == {"offset": len(data), "complete": True} and store.blob_size(run_b, sha) == len(data)
    finally:
        store.close()
