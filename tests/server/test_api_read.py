"""The viewer's read API against a real server pointed at an offline directory (no import step)."""

from __future__ import annotations

import re

import numpy as np
import requests

from tracker_sdk import Experiment
from tracker_sdk.analysis.neighbors import exact_knn


def _offline_run(root, project="digits", n=200, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    labels = [f"c{i % 4}" for i in range(n)]
    exp = Experiment(project_name=project, url=str(root), experiment_name="offline run")
    exp.log_parameters({"lr": 0.01, "layers": 3})
    exp.log_other("note", "hello <b>world</b>")
    for step in range(3):
        exp.log_metric("loss", 1.0 / (step + 1), step=step, epoch=0)
    exp.log_metric("acc", float("nan"), step=0)
    exp.log_embedding(vectors, labels, title="penultimate", group="cnn", step=2)
    return exp, vectors, labels


def test_serves_offline_directory_without_import(tmp_path, start_server):
    root = tmp_path / "offline"
    exp, vectors, labels = _offline_run(root)
    exp.end()
    server = start_server(root)
    api = server.api

    projects = requests.get(f"{api}/projects", timeout=10).json()
    assert projects == [{"name": "digits", "n_runs": 1, "last_created": projects[0]["last_created"]}]
    runs = requests.get(f"{api}/projects/digits/runs", timeout=10).json()
    assert [r["run_id"] for r in runs] == [exp.run_id]
    assert runs[0]["status"] == "finished" and runs[0]["n_embeddings"] == 1
    assert runs[0]["parameters"] == {"lr": 0.01, "layers": 3}

    run = requests.get(f"{api}/runs/{exp.run_id}", timeout=10).json()
    assert run["name"] == "offline run" and run["others"] == {"note": "hello <b>world</b>"}
    assert run["metric_names"] == ["acc", "loss"]
    assert run["next_seq"] == 10  # 2 parameters, 1 other, 4 metrics, 1 embedding, its default PCA, 1 end

    metrics = requests.get(f"{api}/runs/{exp.run_id}/metrics", timeout=10).json()
    assert [m["value"] for m in metrics["loss"]] == [1.0, 0.5, 1.0 / 3]
    assert metrics["acc"][0]["value"] is None  # NaN travels as null, never as a bare NaN literal

    embeddings = requests.get(f"{api}/runs/{exp.run_id}/embeddings", timeout=10).json()
    assert len(embeddings) == 1
    emb = embeddings[0]
    assert (emb["title"], emb["group"], emb["step"], emb["n"], emb["dim"]) == ("penultimate", "cnn", 2, 200, 16)
    assert emb["columns"] == [{"name": "label", "type": "str"}] and emb["sprite"] is None

    r = requests.get(f"{api}/runs/{exp.run_id}/embeddings/{emb['id']}/vectors", timeout=10)
    assert r.headers["X-Shape"] == "200,16" and r.headers["X-Dtype"] == "float32"
    assert r.headers["Content-Type"] == "application/octet-stream"
    np.testing.assert_array_equal(np.frombuffer(r.content, dtype="<f4").reshape(200, 16), vectors)

    meta = requests.get(f"{api}/runs/{exp.run_id}/embeddings/{emb['id']}/metadata", timeout=10).json()
    assert meta["n"] == 200 and meta["columns"][0]["values"] == labels

    r = requests.get(f"{api}/runs/{exp.run_id}/embeddings/{emb['id']}/sprite", timeout=10)
    assert r.status_code == 404 and "no sprite" in r.json()["error"]


def test_neighbors_match_exact_knn(tmp_path, start_server):
    root = tmp_path / "offline"
    exp, vectors, _ = _offline_run(root, n=500, dim=24, seed=3)
    exp.end()
    server = start_server(root)
    emb_id = requests.get(f"{server.api}/runs/{exp.run_id}/embeddings", timeout=10).json()[0]["id"]
    for metric in ("cosine", "euclidean"):
        for index in (0, 17, 499):
            got = requests.get(f"{server.api}/runs/{exp.run_id}/embeddings/{emb_id}/neighbors",
                               params={"index": index, "k": 7, "metric": metric}, timeout=10).json()
            idx, dist = exact_knn(vectors, [index], k=7, metric=metric)
            assert got["index"] == index and got["metric"] == metric and got["k"] == 7
            assert got["neighbors"] == idx[0].tolist()
            np.testing.assert_allclose(got["distances"], dist[0], rtol=1e-4, atol=1e-5)
    r = requests.get(f"{server.api}/runs/{exp.run_id}/embeddings/{emb_id}/neighbors",
                     params={"index": 500}, timeout=10)
    assert r.status_code == 400 and "index must be in [0, 500)" in r.json()["error"]
    r = requests.get(f"{server.api}/runs/{exp.run_id}/embeddings/{emb_id}/neighbors",
                     params={"index": 1, "metric": "manhattan"}, timeout=10)
    assert r.status_code == 400 and "metric" in r.json()["error"]


def test_live_run_changes_are_seen(tmp_path, start_server):
    """A run a local process is still writing is re-read when its journal grows."""
    root = tmp_path / "offline"
    exp, _, _ = _offline_run(root)
    server = start_server(root)
    first = requests.get(f"{server.api}/runs/{exp.run_id}", timeout=10).json()
    assert first["status"] == "running"
    exp.log_metric("loss", 0.1, step=3)
    exp.log_embedding(np.ones((5, 2), np.float32), list("abcde"), title="late")
    exp._writer.sync()
    runs = requests.get(f"{server.api}/projects/digits/runs", timeout=10).json()
    assert runs[0]["n_embeddings"] == 2
    metrics = requests.get(f"{server.api}/runs/{exp.run_id}/metrics", timeout=10).json()
    assert [m["step"] for m in metrics["loss"]] == [0, 1, 2, 3]
    exp.end()
    assert requests.get(f"{server.api}/runs/{exp.run_id}", timeout=10).json()["status"] == "finished"


def test_hardening_headers_on_every_kind_of_response(module_server):
    api = module_server.api
    for url in (f"{api}/projects", f"{api}/runs/{'0' * 32}", module_server.url + "/",
                module_server.url + "/static/nothing.js", f"{api}/no-such-endpoint"):
        r = requests.get(url, timeout=10)
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        if r.status_code >= 400:
            assert r.headers["Content-Type"] == "application/json" and "error" in r.json()


def test_viewer_pages_are_the_single_page_app(module_server):
    for path in ("/", "/projects/digits", "/runs/" + "a" * 32):
        r = requests.get(module_server.url + path, timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
        assert b"<html" in r.content.lower()


def test_openapi_documents_every_route(module_server):
    from server_stub.app import create_app

    schema = requests.get(f"{module_server.api}/openapi.json", timeout=10).json()
    assert schema["openapi"].startswith("3.")
    app = create_app(module_server.root / "unused-openapi-check")
    documented = {(path, method) for path, ops in schema["paths"].items() for method in ops}
    for route in app.routes:
        if route.path.startswith("/api/v1"):
            for method in route.methods - {"HEAD"} if "GET" in route.methods else route.methods:
                assert (route.path, method.lower()) in documented, (route.path, method)
    assert re.fullmatch(r"\^\[0-9a-f\]\{64\}\$",
                        schema["paths"]["/api/v1/runs/{run_id}/blobs/{sha256}"]["put"]["parameters"][1]["schema"]["pattern"])


def test_corrupt_run_is_a_json_4xx_and_the_others_still_list(tmp_path, start_server):
    root = tmp_path / "offline"
    good, _, _ = _offline_run(root, seed=1)
    good.end()
    bad, _, _ = _offline_run(root, seed=2)
    bad.end()
    segment = sorted((bad.run_dir / "journal").glob("*.seg"))[0]
    data = bytearray(segment.read_bytes())
    data[20] ^= 0xFF  # flip a byte inside the first frame: valid frames follow, so this is corruption
    segment.write_bytes(bytes(data))
    server = start_server(root)
    r = requests.get(f"{server.api}/runs/{bad.run_id}", timeout=10)
    assert r.status_code == 422 and "corrupt journal record" in r.json()["error"]
    assert str(root) not in r.text  # no server paths in errors
    runs = {r["run_id"]: r["status"] for r in requests.get(f"{server.api}/projects/digits/runs", timeout=10).json()}
    assert runs == {good.run_id: "finished", bad.run_id: "unreadable"}
    assert "Traceback" not in server.output()
