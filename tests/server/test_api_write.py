"""The sync protocol against a real server: runs, blobs, chunked uploads, record replay."""

from __future__ import annotations

import os
import uuid

import numpy as np
import requests

from tracker_sdk.runformat import open_run


def test_run_creation_is_idempotent_and_lands_in_the_run_format(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server, project="vision")
    assert run.create() == {"run_id": run.run_id, "project": "vision", "next_seq": 0}
    assert run.create()["next_seq"] == 0
    r = requests.put(f"{server.api}/projects/other/runs/{run.run_id}", json={}, timeout=10)
    assert r.status_code == 409 and "already exists in project 'vision'" in r.json()["error"]
    stored = open_run(server.root / "vision" / run.run_id)
    assert stored.run_id == run.run_id and stored.project == "vision" and stored.name == "remote"
    assert run.create(name="renamed", status="finished")["next_seq"] == 0  # a resume updates run.json
    listed = requests.get(f"{server.api}/projects/vision/runs", timeout=10).json()
    assert [(r["name"], r["status"]) for r in listed] == [("renamed", "finished")]


def test_records_are_appended_once_in_seq_order(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server)
    run.create()
    recs = [run.record("parameter", name="lr", value=0.1)] + \
        [run.record("metric", name="loss", value=1.0 / (i + 1), step=i, epoch=None) for i in range(5)]
    assert run.post(recs[:4]).json() == {"next_seq": 4}
    # a retry after a lost acknowledgement resends everything: nothing is stored twice
    assert run.post(recs, as_json=True).json() == {"next_seq": 6}
    assert run.post(recs).json() == {"next_seq": 6}
    gap = run.record("metric", name="loss", value=0.0, step=9, epoch=None)
    gap["seq"] = 8
    r = run.post([gap])
    assert r.status_code == 409 and r.json()["next_seq"] == 6
    end = run.record("end", status="finished")
    end["seq"] = 6
    assert run.post([end]).json() == {"next_seq": 7}

    stored = open_run(server.root / "proj" / run.run_id)
    assert [r.seq for r in stored.records] == list(range(7))
    assert [m.value for m in stored.metrics] == [1.0, 0.5, 1.0 / 3, 0.25, 0.2]
    info = requests.get(f"{server.api}/runs/{run.run_id}", timeout=10).json()
    assert info["next_seq"] == 7 and info["status"] == "finished"
    assert requests.put(f"{server.api}/projects/proj/runs/{run.run_id}", json={}, timeout=10).json()["next_seq"] == 7


def test_blobs_are_verified_before_they_become_visible(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server)
    run.create()
    data = os.urandom(100_000)
    digest = helpers.sha(data)
    url = f"{server.api}/runs/{run.run_id}/blobs/{digest}"
    assert requests.head(url, timeout=10).status_code == 404
    bad = requests.put(url, data=data[:-1] + b"x", timeout=10)
    assert bad.status_code == 422 and "hashes to" in bad.json()["error"] and bad.json()["retryable"] is True
    assert requests.head(url, timeout=10).status_code == 404
    assert not [p for p in (server.root / "proj" / run.run_id / "blobs").rglob("*") if p.is_file()]  # no temp left
    assert requests.put(url, data=data, timeout=10).status_code == 201
    assert requests.put(url, data=data, timeout=10).status_code == 200
    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == "100000"
    assert requests.get(url, timeout=10).content == data


def test_embedding_with_sprite_and_reduction_round_trips(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server)
    run.create()
    vectors = np.random.default_rng(0).normal(size=(16, 5)).astype(np.float32)
    emb = run.embedding_record(vectors, [i % 2 for i in range(16)], sprite=helpers.png_bytes(16, 16), step=1)
    coords = vectors[:, :2].copy()
    red = run.record("reduction", id=uuid.uuid4().hex, embedding_id=emb["id"], method="pca", n_components=2,
                     params={}, fitted_on=None, timeline=None, quality={"trustworthiness": 0.9},
                     coords={"sha256": run.put_blob(helpers.npy_bytes(coords)), "dtype": "float32", "shape": [16, 2]})
    missing = run.record("metric", name="x", value=1, step=None, epoch=None)
    lacking_blob = run.record("asset", name="weights.bin", sha256="ab" * 32, size=3, step=None, metadata=None)
    r = run.post([emb, red, missing, lacking_blob])
    assert r.status_code == 409 and r.json()["missing_blobs"] == ["ab" * 32]
    assert run.post([emb, red, missing]).json() == {"next_seq": 3}

    api = f"{server.api}/runs/{run.run_id}"
    listed = requests.get(f"{api}/embeddings", timeout=10).json()
    assert listed[0]["sprite"] == {"sha256": emb["sprite"]["sha256"], "format": "png", "tile_size": [4, 4],
                                   "grid": [4, 4], "n": 16}
    assert listed[0]["reductions"][0]["quality"] == {"trustworthiness": 0.9}
    sprite = requests.get(f"{api}/embeddings/{emb['id']}/sprite", timeout=10)
    assert sprite.headers["Content-Type"] == "image/png" and sprite.content == helpers.png_bytes(16, 16)
    got = requests.get(f"{api}/reductions/{red['id']}/coords", timeout=10)
    assert got.headers["X-Shape"] == "16,2"
    np.testing.assert_array_equal(np.frombuffer(got.content, "<f4").reshape(16, 2), coords)
    meta = requests.get(f"{api}/embeddings/{emb['id']}/metadata", timeout=10).json()
    assert meta["columns"][0]["values"] == [i % 2 for i in range(16)]


def test_chunked_upload_resumes_from_the_server_offset(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server)
    run.create()
    data = os.urandom(3_000_000)
    digest = helpers.sha(data)
    url = f"{server.api}/runs/{run.run_id}/uploads/{digest}"

    def patch(offset, chunk, length=len(data)):
        return requests.patch(url, data=chunk, headers={"Upload-Offset": str(offset), "Upload-Length": str(length)},
                              timeout=30)

    assert requests.get(url, timeout=10).json() == {"offset": 0, "complete": False}
    assert patch(0, data[:1_000_000]).json() == {"offset": 1_000_000, "complete": False}
    stale = patch(0, data[:1_000_000])
    assert stale.status_code == 409 and stale.json()["offset"] == 1_000_000
    assert patch(1_000_000, data[1_000_000:2_000_000], length=5).status_code == 400
    assert requests.get(url, timeout=10).json()["offset"] == 1_000_000
    assert patch(1_000_000, data[1_000_000:]).json() == {"offset": 3_000_000, "complete": True}
    assert requests.get(url, timeout=10).json() == {"offset": 3_000_000, "complete": True}
    blob = requests.get(f"{server.api}/runs/{run.run_id}/blobs/{digest}", timeout=30)
    assert helpers.sha(blob.content) == digest

    wrong = "0" * 64
    bad_url = f"{server.api}/runs/{run.run_id}/uploads/{wrong}"
    r = requests.patch(bad_url, data=b"abc", headers={"Upload-Offset": "0", "Upload-Length": "3"}, timeout=10)
    assert r.status_code == 422 and "partial upload was discarded" in r.json()["error"] and r.json()["retryable"]
    assert requests.get(bad_url, timeout=10).json() == {"offset": 0, "complete": False}
    assert requests.head(f"{server.api}/runs/{run.run_id}/blobs/{wrong}", timeout=10).status_code == 404


def test_reindex_rebuilds_the_index_from_the_journals(tmp_path, start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server, project="p1")
    run.create()
    run.post([run.record("parameter", name="a", value=1)])
    server.stop()
    index_file = server.root / ".tracker-index.sqlite3"
    index_file.write_bytes(b"")  # an emptied index is rebuilt, not trusted
    os.unlink(index_file)
    server2 = start_server(server.root, "--reindex")
    assert "reindexed 1 runs" in server2.output()
    runs = requests.get(f"{server2.api}/projects/p1/runs", timeout=10).json()
    assert [(r["run_id"], r["parameters"]) for r in runs] == [(run.run_id, {"a": 1})]
