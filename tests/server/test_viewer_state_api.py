"""The viewer's own routes on a real server: bookmarks CRUD and projection jobs computed from the page."""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests

from tracker_sdk import Experiment
from tracker_sdk.runformat import open_run


def _log(root, *, dim=6, n=60, steps=(0, 1), group="g"):
    rng = np.random.default_rng(0)
    exp = Experiment(url=str(root), project_name="p", experiment_name="viewer-api")
    ids = []
    for step in steps:
        x = rng.normal(size=(n, dim)).astype(np.float32)
        ids.append(exp.log_embedding(x, [f"c{i % 3}" for i in range(n)], title="t", group=group, step=step,
                                     reduce=None).id)
    exp.end()
    return exp.run_id, exp.run_dir, ids


def _wait(api, run_id, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        job = requests.get(f"{api}/runs/{run_id}/projections/{job_id}", timeout=10).json()
        if job["state"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


@pytest.fixture
def served(tmp_path, start_server):
    run_id, run_dir, ids = _log(tmp_path / "store")
    return start_server(tmp_path / "store"), run_id, run_dir, ids


def test_bookmarks_are_created_listed_replaced_and_deleted(served):
    server, run_id, _, ids = served
    base = f"{server.api}/runs/{run_id}/bookmarks"
    assert requests.get(base, timeout=10).json() == []
    state = {"emb": ids[0], "color": "label", "sel": "0-4.9", "cam": "0.1,0.2,2"}
    r = requests.put(f"{base}/epoch 1 outliers", json={"state": state}, timeout=10)
    assert r.status_code == 201 and r.json()["state"] == state
    r = requests.put(f"{base}/epoch 1 outliers", json={"state": {**state, "color": "split"}}, timeout=10)
    assert r.status_code == 200
    listed = requests.get(base, timeout=10).json()
    assert [b["name"] for b in listed] == ["epoch 1 outliers"] and listed[0]["state"]["color"] == "split"
    assert (server.root / ".bookmarks" / f"{run_id}.json").is_file()
    # a restarted server still has it
    server.stop()
    server.start()
    assert requests.get(base, timeout=10).json()[0]["name"] == "epoch 1 outliers"
    assert requests.delete(f"{base}/epoch 1 outliers", timeout=10).status_code == 204
    assert requests.get(base, timeout=10).json() == []
    r = requests.delete(f"{base}/epoch 1 outliers", timeout=10)
    assert r.status_code == 404 and "no bookmark" in r.json()["error"]


@pytest.mark.parametrize("name", [" lead", ".hidden", "a/b", "x" * 65, "tab\tname", "<b>"])
def test_bad_bookmark_names_are_refused(served, name):
    server, run_id, _, _ = served
    from urllib.parse import quote
    r = requests.put(f"{server.api}/runs/{run_id}/bookmarks/{quote(name, safe='')}", json={"state": {"a": "b"}},
                     timeout=10)
    assert r.status_code in (400, 404)  # a '/' never reaches the route: no route matches
    if "/" not in name:
        assert r.status_code == 400 and "bookmark name must be" in r.json()["error"]


def test_bad_bookmark_states_are_refused(served):
    server, run_id, _, _ = served
    base = f"{server.api}/runs/{run_id}/bookmarks/b1"
    r = requests.put(base, json={"state": []}, timeout=10)
    assert r.status_code == 400 and "non-empty map" in r.json()["error"]
    r = requests.put(base, json={"state": {"Color": "x"}}, timeout=10)
    assert r.status_code == 400 and "lowercase" in r.json()["error"]
    r = requests.put(base, json={"state": {"sel": "x" * 20000}}, timeout=10)
    assert r.status_code == 413 and "limit is 16384" in r.json()["error"]
    r = requests.put(f"{server.api}/runs/{'0' * 32}/bookmarks/b1", json={"state": {"a": "b"}}, timeout=10)
    assert r.status_code == 404


def test_projection_job_runs_in_the_background_and_is_stored(served):
    server, run_id, run_dir, ids = served
    r = requests.post(f"{server.api}/runs/{run_id}/projections", timeout=10,
                      json={"embedding_id": ids[1], "method": "pca", "params": {"n_components": 2}, "scope": "group"})
    assert r.status_code == 202 and r.json()["state"] in ("queued", "running", "done")
    job = _wait(server.api, run_id, r.json()["id"])
    assert job["state"] == "done", job
    assert len(job["reduction_ids"]) == 2
    reds = [red for emb in open_run(run_dir).embeddings for red in emb.reductions]
    assert sorted(red.id for red in reds) == sorted(job["reduction_ids"])
    assert len({red.timeline for red in reds}) == 1 and all(red.n_components == 2 for red in reds)
    listing = requests.get(f"{server.api}/runs/{run_id}/embeddings", timeout=10).json()
    assert all(len(e["reductions"]) == 1 for e in listing)  # every client sees it now
    assert [j["id"] for j in requests.get(f"{server.api}/runs/{run_id}/projections", timeout=10).json()] == [job["id"]]


def test_a_failing_projection_job_reports_the_reducers_error(tmp_path, start_server):
    run_id, run_dir, ids = _log(tmp_path / "store", dim=2, steps=(0,))
    server = start_server(tmp_path / "store")
    r = requests.post(f"{server.api}/runs/{run_id}/projections", timeout=10,
                      json={"embedding_id": ids[0], "method": "pca", "params": {"n_components": 3}})
    assert r.status_code == 202
    job = _wait(server.api, run_id, r.json()["id"])
    assert job["state"] == "failed" and "n_components must be at most" in job["error"]
    assert not [red for emb in open_run(run_dir).embeddings for red in emb.reductions]


@pytest.mark.parametrize("body, message", [
    ({"embedding_id": "0" * 32, "method": "isomap"}, "method must be one of"),
    ({"embedding_id": "0" * 32, "method": "umap", "params": {"n_neighbors": -1}}, "between 0 and 500"),
    ({"embedding_id": "0" * 32, "method": "tsne", "params": {"learning_rate": 5}}, "cannot be set from the viewer"),
    ({"embedding_id": "0" * 32, "method": "tsne", "params": {"n_components": 1}}, "n_components must be 2 or 3"),
    ({"embedding_id": "0" * 32, "method": "pca", "scope": "everything"}, "scope must be"),
    ({"method": "pca"}, "embedding_id"),
])
def test_bad_projection_requests_are_refused_before_anything_runs(served, body, message):
    server, run_id, _, _ = served
    r = requests.post(f"{server.api}/runs/{run_id}/projections", json=body, timeout=10)
    assert r.status_code == 400 and message in r.json()["error"], r.text


def test_unknown_embedding_and_job_answer_404(served):
    server, run_id, _, _ = served
    r = requests.post(f"{server.api}/runs/{run_id}/projections", json={"embedding_id": "0" * 32, "method": "pca"},
                      timeout=10)
    assert r.status_code == 404 and "no embedding" in r.json()["error"]
    r = requests.get(f"{server.api}/runs/{run_id}/projections/{'1' * 32}", timeout=10)
    assert r.status_code == 404 and "no projection job" in r.json()["error"]
