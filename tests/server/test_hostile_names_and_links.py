"""Hostile names are a 400 before anything is written, an unreadable run never breaks the
listings (the health report names it), and no symbolic link under the root is followed."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import requests

from tracker_sdk import Experiment
from tracker_sdk.errors import RunFormatError
from tracker_sdk.runformat import open_run


def _put_raw(server, project, run_id, raw_json: str):
    return requests.put(f"{server.api}/projects/{project}/runs/{run_id}", data=raw_json.encode(),
                        headers={"Content-Type": "application/json"}, timeout=10)


def test_hostile_names_are_400_and_write_nothing(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server)
    surrogate = _put_raw(server, "proj", run.run_id, '{"name": "\\ud800"}')
    assert surrogate.status_code == 400 and "lone surrogate" in surrogate.json()["error"]
    assert not (server.root / "proj").exists()
    control = _put_raw(server, "proj", run.run_id, '{"name": "a\\u0000b"}')
    assert control.status_code == 400 and "control characters" in control.json()["error"]
    for device in ("CON", "nul.txt", "com1"):
        answer = requests.put(f"{server.api}/projects/{device}/runs/{run.run_id}", json={}, timeout=10)
        assert answer.status_code == 400 and "Windows device name" in answer.json()["error"], device
        assert not (server.root / device).exists()
    tag = _put_raw(server, "proj", run.run_id, '{"name": "ok", "tags": ["\\udfff"]}')
    assert tag.status_code == 400 and "run.json holds text that is not valid Unicode" in tag.json()["error"]

    run.create()
    records = [
        ('{"records": [{"seq": 0, "t": 1.0, "kind": "metric", "name": "\\ud800", "value": 1.0}]}', "lone surrogate"),
        ('{"records": [{"seq": 0, "t": 1.0, "kind": "metric", "name": "a\\nb", "value": 1.0}]}', "control characters"),
        ('{"records": [{"seq": 0, "t": 1.0, "kind": "other", "name": "note", "value": "\\udc00"}]}',
         "not valid Unicode"),
    ]
    for body, message in records:
        answer = requests.post(f"{server.api}/runs/{run.run_id}/records", data=body.encode(),
                               headers={"Content-Type": "application/json"}, timeout=10)
        assert answer.status_code == 400 and message in answer.json()["error"], (body, answer.text)
    asset = helpers.sha(b"x")
    run.put_blob(b"x")
    device_asset = run.record("asset", name="CON", sha256=asset, size=1, step=None, metadata=None)
    answer = run.post([device_asset])
    assert answer.status_code == 400 and "record seq 0: name must not be a Windows device name" in answer.json()["error"]
    assert requests.get(f"{server.api}/runs/{run.run_id}", timeout=10).json()["next_seq"] == 0
    assert requests.get(f"{server.api}/projects", timeout=10).status_code == 200
    assert "Traceback" not in server.output()


def test_an_unindexable_run_is_skipped_logged_once_and_reported_by_health(tmp_path, start_server):
    root = tmp_path / "store"
    good = Experiment(project_name="p", url=str(root), experiment_name="good")
    good.end()
    bad = Experiment(project_name="p", url=str(root), experiment_name="bad")
    bad.end()
    info = json.loads((bad.run_dir / "run.json").read_text())
    (bad.run_dir / "run.json").write_text(json.dumps({**info, "name": "\ud800"}))  # written by an old SDK
    server = start_server(root)
    for _ in range(2):
        assert requests.get(f"{server.api}/projects", timeout=10).json()[0]["n_runs"] == 2
        listing = requests.get(f"{server.api}/projects/p/runs", timeout=10)
        assert listing.status_code == 200
        assert {r["run_id"]: r["status"] for r in listing.json()} == {good.run_id: "finished",
                                                                     bad.run_id: "unreadable"}
    for path in ("/api/v1/health", "/healthz"):
        health = requests.get(server.url + path, timeout=10).json()
        assert health["status"] == "degraded" and health["disk_free_bytes"] > 0
        [problem] = health["unreadable_runs"]
        assert problem["run_id"] == bad.run_id and "cannot be indexed: UnicodeEncodeError" in problem["problem"]
    assert server.output().count(f"{bad.run_id} is skipped by the listings") == 1
    assert "Traceback" not in server.output()


def _served_run(tmp_path, start_server):
    root = tmp_path / "store"
    exp = Experiment(project_name="p", url=str(root))
    emb = exp.log_embedding(np.eye(4, dtype=np.float32), ["a", "b", "c", "d"], reduce=None)
    exp.end()
    outside = tmp_path / "outside"
    outside.mkdir()
    return root, exp, emb, outside, start_server(root)


def test_a_symlinked_blob_is_never_served(tmp_path, start_server):
    _, exp, emb, outside, server = _served_run(tmp_path, start_server)
    run = open_run(exp.run_dir)
    secret = outside / "secret"
    secret.write_bytes(b"server secret")
    vectors = run.blob_path(run.embedding(emb.id).record.vectors.sha256)
    vectors.unlink()
    vectors.symlink_to(secret)
    sha = vectors.name
    for method in ("GET", "HEAD"):
        answer = requests.request(method, f"{server.api}/runs/{exp.run_id}/blobs/{sha}", timeout=10)
        assert answer.status_code == 403 and b"server secret" not in answer.content, method
    assert "is a symbolic link" in requests.get(f"{server.api}/runs/{exp.run_id}/blobs/{sha}", timeout=10).text
    vec = requests.get(f"{server.api}/runs/{exp.run_id}/embeddings/{emb.id}/vectors", timeout=10)
    assert vec.status_code == 403 and b"server secret" not in vec.content
    with pytest.raises(RunFormatError, match=f"blobs/{sha[:2]}/{sha} is a symbolic link, which is never followed"):
        _ = open_run(exp.run_dir).embedding(emb.id).vectors  # the SDK's reader refuses it too


def test_symlinked_directories_receive_no_writes(tmp_path, start_server, helpers):
    root, exp, _, outside, server = _served_run(tmp_path, start_server)
    (root / "linked").symlink_to(outside, target_is_directory=True)
    run = helpers.RemoteRun(server, project="linked")
    answer = requests.put(f"{server.api}/projects/linked/runs/{run.run_id}", json={"name": "x"}, timeout=10)
    assert answer.status_code == 403 and "linked is a symbolic link" in answer.json()["error"]
    data = b"payload for a linked blobs directory"
    sha = helpers.sha(data)
    blobs = exp.run_dir / "blobs"
    (outside / "xx").mkdir()
    if (blobs / sha[:2]).exists():
        (blobs / sha[:2]).rmdir()
    (blobs / sha[:2]).symlink_to(outside / "xx", target_is_directory=True)
    put = requests.put(f"{server.api}/runs/{exp.run_id}/blobs/{sha}", data=data, timeout=10)
    assert put.status_code == 403 and "is a symbolic link" in put.json()["error"]
    patch = requests.patch(f"{server.api}/runs/{exp.run_id}/uploads/{sha}", data=data, timeout=10,
                           headers={"Upload-Offset": "0", "Upload-Length": str(len(data))})
    assert patch.status_code == 403
    assert sorted(p.name for p in outside.rglob("*")) == ["xx"]  # nothing was written outside the root


def test_a_symlinked_journal_is_refused_by_the_server_and_the_reader(tmp_path, start_server):
    _, exp, _, outside, server = _served_run(tmp_path, start_server)
    journal = exp.run_dir / "journal"
    os.rename(journal, outside / "journal")
    journal.symlink_to(outside / "journal", target_is_directory=True)
    answer = requests.get(f"{server.api}/runs/{exp.run_id}", timeout=10)
    assert answer.status_code == 403 and "journal is a symbolic link" in answer.json()["error"]
    with pytest.raises(RunFormatError, match="journal is a symbolic link"):
        open_run(exp.run_dir)
