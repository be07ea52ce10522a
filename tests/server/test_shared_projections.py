"""The viewer's "compute a projection" on scale-out replicas (SharedProjectionJobs).

Runs on SQLite + a blob directory, and on PostgreSQL + S3 when the services are configured
(the ``stores`` and ``replica`` fixtures of test_shared_store.py). Jobs run on the replica that
took them; their results are read back through every replica.
"""

from __future__ import annotations

import time

import numpy as np
import requests
from test_shared_store import replica, stores  # noqa: F401  (fixtures)

from services import postgres_url, s3_service  # noqa: F401  (fixtures)
from tracker_sdk.reduce.pca import PCAReducer
from tracker_sdk.runformat import load_npy


def _wait(api, run_id, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        job = requests.get(f"{api}/runs/{run_id}/projections/{job_id}", timeout=10).json()
        if job["state"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def _post(server, run_id, body):
    r = requests.post(f"{server.api}/runs/{run_id}/projections", json=body, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()


def _coords(server, run_id, reduction_id, n, k):
    r = requests.get(f"{server.api}/runs/{run_id}/reductions/{reduction_id}/coords", timeout=10)
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, dtype="<f4").reshape(n, k)


def _stored(x: np.ndarray, path) -> np.ndarray:
    """``x`` read back as every reduction reads a blob (memory-mapped; PCA then sums in row blocks)."""
    np.save(path, x)
    return load_npy(path)


def _scratch_left(server) -> list:
    scratch = server.root / ".projection-jobs"
    return sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []


def test_a_projection_computed_on_one_replica_is_stored_for_every_replica(replica, helpers, tmp_path):  # noqa: F811
    a, b = replica("a"), replica("b")
    rng = np.random.default_rng(3)
    run = helpers.RemoteRun(a)
    run.create()
    xs = [rng.standard_normal((40, 6)).astype(np.float32) for _ in range(2)]
    embs = [run.embedding_record(x, [f"c{i % 3}" for i in range(40)], group="g", step=step)
            for step, x in enumerate(xs)]
    assert run.post(embs).status_code == 200

    job = _post(a, run.run_id, {"embedding_id": embs[0]["id"], "method": "pca", "params": {"n_components": 2}})
    elsewhere = requests.get(f"{b.api}/runs/{run.run_id}/projections/{job['id']}", timeout=10)
    assert elsewhere.status_code == 404 and "replica that took them" in elsewhere.json()["error"]
    job = _wait(a.api, run.run_id, job["id"])
    assert job["state"] == "done", job
    [reduction_id] = job["reduction_ids"]
    stored = [_stored(x, tmp_path / f"x{i}.npy") for i, x in enumerate(xs)]
    expected = PCAReducer(n_components=2).fit_transform(stored[0])
    for server in (a, b):
        listing = requests.get(f"{server.api}/runs/{run.run_id}/embeddings", timeout=10).json()
        reductions = {e["id"]: [red["id"] for red in e["reductions"]] for e in listing}
        assert reductions == {embs[0]["id"]: [reduction_id], embs[1]["id"]: []}
        assert np.array_equal(_coords(server, run.run_id, reduction_id, 40, 2), expected)
    assert [j["id"] for j in requests.get(f"{a.api}/runs/{run.run_id}/projections", timeout=10).json()] == [job["id"]]
    assert requests.get(f"{b.api}/runs/{run.run_id}/projections", timeout=10).json() == []

    # a group: fitted on the last step, every step placed with it, computed on replica b this time
    job = _wait(b.api, run.run_id, _post(b, run.run_id, {"embedding_id": embs[1]["id"], "method": "pca",
                                                            "params": {"n_components": 3}, "scope": "group"})["id"])
    assert job["state"] == "done" and len(job["reduction_ids"]) == 2, job
    fitted = PCAReducer(n_components=3)  # a timeline reads its steps into memory (np.asarray of the blobs)
    last = fitted.fit_transform(np.asarray(stored[1]))
    first = fitted.transform(np.asarray(stored[0]))
    listing = requests.get(f"{a.api}/runs/{run.run_id}/embeddings", timeout=10).json()
    new = {e["id"]: [red for red in e["reductions"] if red["id"] in job["reduction_ids"]] for e in listing}
    assert len({red["timeline"] for reds in new.values() for red in reds}) == 1
    assert np.array_equal(_coords(a, run.run_id, new[embs[0]["id"]][0]["id"], 40, 3), first)
    assert np.array_equal(_coords(a, run.run_id, new[embs[1]["id"]][0]["id"], 40, 3), last)
    assert _scratch_left(a) == [] and _scratch_left(b) == []


def test_a_failing_projection_job_stores_nothing_on_shared_storage(replica, helpers):  # noqa: F811
    server = replica()
    run = helpers.RemoteRun(server)
    run.create()
    x = np.random.default_rng(4).standard_normal((30, 2)).astype(np.float32)
    emb = run.embedding_record(x, ["a"] * 30)
    assert run.post([emb]).status_code == 200
    before = requests.get(f"{server.api}/runs/{run.run_id}", timeout=10).json()["next_seq"]

    job = _post(server, run.run_id, {"embedding_id": emb["id"], "method": "pca", "params": {"n_components": 3}})
    job = _wait(server.api, run.run_id, job["id"])
    assert job["state"] == "failed" and "n_components must be at most" in job["error"], job
    assert job["reduction_ids"] == []
    assert requests.get(f"{server.api}/runs/{run.run_id}", timeout=10).json()["next_seq"] == before
    listing = requests.get(f"{server.api}/runs/{run.run_id}/embeddings", timeout=10).json()
    assert listing[0]["reductions"] == []
    assert _scratch_left(server) == []
    # an unknown embedding is refused before any job exists
    r = requests.post(f"{server.api}/runs/{run.run_id}/projections", json={"embedding_id": "0" * 32, "method": "pca"},
                      timeout=10)
    assert r.status_code == 404 and "no embedding" in r.json()["error"]
