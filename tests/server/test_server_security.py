"""Hostile input against a real server: traversal, oversized and malformed bodies, bad blobs, auth."""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import uuid

import msgpack
import numpy as np
import pytest
import requests

SECRET = b"canary-secret-3f9a"
TRAVERSALS = [
    "../../canary.txt", "..%2f..%2fcanary.txt", "%2e%2e%2f%2e%2e%2fcanary.txt", "%252e%252e%252fcanary.txt",
    "..\\..\\canary.txt", "%2e%2e%5c%2e%2e%5ccanary.txt", "..", "%2e%2e", "....//....//canary.txt",
    "%2fetc%2fpasswd", "/etc/passwd", "C:%5cWindows%5cwin.ini", "%00", "a%00b", "ab" * 32 + "%00",
    "x" * 5000, "A" * 32, "0" * 31, "0" * 65,
]


def _raw(server, method, path, body=b"", headers=None):
    """Send the path byte for byte (requests/urllib3 would normalise dot segments away)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            conn.putheader(key, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


@pytest.fixture
def hostile(tmp_path, start_server, helpers):
    """A server with one real run, and a canary file next to (outside) its store."""
    canary = tmp_path / "canary.txt"
    canary.write_bytes(SECRET)
    (tmp_path / "store").mkdir()
    server = start_server(tmp_path / "store", "--max-body-mb", "1")
    run = helpers.RemoteRun(server)
    run.create()
    emb = run.embedding_record(np.eye(4, dtype=np.float32), list("abcd"))
    red = run.record("reduction", id=uuid.uuid4().hex, embedding_id=emb["id"], method="pca", n_components=2,
                     coords={"sha256": run.put_blob(helpers.npy_bytes(np.zeros((4, 2), np.float32))),
                                 "shape": [4, 2]})
    assert run.post([emb, red]).json() == {"next_seq": 2}
    return server, run, emb, red, canary


def _outside_store(tmp_path):
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                  if "store" not in p.relative_to(tmp_path).parts[:1] and not p.name.endswith(".log"))


def test_traversal_matrix_reads_and_writes(tmp_path, hostile):
    server, run, emb, red, canary = hostile
    before = (_outside_store(tmp_path), canary.stat().st_mtime_ns)
    rid, eid, sha = run.run_id, emb["id"], emb["vectors"]["sha256"]
    api = "/api/v1"
    templates = [
        ("GET", api + "/projects/{x}/runs"), ("GET", api + "/runs/{x}"), ("GET", api + "/runs/{x}/metrics"),
        ("GET", api + "/runs/{x}/embeddings"), ("GET", api + f"/runs/{rid}/embeddings/{{x}}/vectors"),
        ("GET", api + f"/runs/{rid}/embeddings/{{x}}/metadata"), ("GET", api + f"/runs/{rid}/embeddings/{{x}}/sprite"),
        ("GET", api + f"/runs/{rid}/embeddings/{{x}}/neighbors?index=0"),
        ("GET", api + f"/runs/{{x}}/embeddings/{eid}/vectors"),
        ("GET", api + f"/runs/{rid}/reductions/{{x}}/coords"), ("GET", api + f"/runs/{rid}/blobs/{{x}}"),
        ("HEAD", api + f"/runs/{rid}/blobs/{{x}}"), ("GET", api + f"/runs/{{x}}/blobs/{sha}"),
        ("GET", api + f"/runs/{rid}/uploads/{{x}}"), ("GET", api + f"/runs/{{x}}/uploads/{sha}"),
        ("GET", "/static/{x}"), ("GET", "/static/vendor/{x}"),
        ("PUT", api + f"/projects/{{x}}/runs/{rid}"), ("PUT", api + "/projects/proj/runs/{x}"),
        ("PUT", api + f"/runs/{rid}/blobs/{{x}}"), ("PUT", api + f"/runs/{{x}}/blobs/{helpers_sha(SECRET)}"),
        ("PATCH", api + f"/runs/{rid}/uploads/{{x}}"), ("PATCH", api + f"/runs/{{x}}/uploads/{helpers_sha(SECRET)}"),
        ("POST", api + "/runs/{x}/records"),
    ]
    checked = 0
    for method, template in templates:
        for payload in TRAVERSALS:
            path = template.replace("{x}", payload)
            body = b"" if method in ("GET", "HEAD") else (json.dumps({"records": []}).encode()
                                                          if method != "PATCH" and "records" in path or "projects" in path
                                                          else SECRET)
            headers = {"Upload-Offset": "0", "Upload-Length": str(len(SECRET))} if method == "PATCH" else {}
            status, resp_headers, content = _raw(server, method, path, body, headers)
            assert 400 <= status < 500, (method, path, status, content[:200])
            assert SECRET not in content and b"Traceback" not in content
            if method != "HEAD" and resp_headers.get("content-type") == "application/json":
                assert "error" in json.loads(content)
            checked += 1
    assert checked == len(templates) * len(TRAVERSALS)
    assert (_outside_store(tmp_path), canary.stat().st_mtime_ns) == before
    assert canary.read_bytes() == SECRET
    assert "Traceback" not in server.output()


def helpers_sha(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()


def test_oversized_bodies_are_refused_with_413(hostile, helpers):
    server, run, *_ = hostile
    big = os.urandom(1024 * 1024 + 10)
    r = requests.put(f"{server.api}/runs/{run.run_id}/blobs/{helpers.sha(big)}", data=big, timeout=30)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    assert requests.head(f"{server.api}/runs/{run.run_id}/blobs/{helpers.sha(big)}", timeout=10).status_code == 404
    r = requests.post(f"{server.api}/runs/{run.run_id}/records", data=big,
                      headers={"Content-Type": "application/msgpack"}, timeout=30)
    assert r.status_code == 413
    r = requests.patch(f"{server.api}/runs/{run.run_id}/uploads/{helpers.sha(big)}", data=big,
                       headers={"Upload-Offset": "0", "Upload-Length": str(len(big))}, timeout=30)
    assert r.status_code == 413
    # a chunked (no Content-Length) body is counted as it streams
    r = requests.put(f"{server.api}/runs/{run.run_id}/blobs/{helpers.sha(big)}",
                     data=(big[i:i + 65536] for i in range(0, len(big), 65536)), timeout=30)
    assert r.status_code == 413
    assert not list((server.root / "proj" / run.run_id / "blobs").rglob("*.part"))  # no temp file left behind


def test_malformed_and_deep_bodies_are_400(hostile):
    server, run, *_ = hostile
    url = f"{server.api}/runs/{run.run_id}/records"
    cases = [
        (b"{not json", "application/json", "not valid JSON"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json", "nests deeper"),
        (b"\xc1\xc1\xc1", "application/msgpack", "not valid msgpack"),
        (b"\x91" * 5000 + b"\x90", "application/msgpack", "msgpack|nests deeper"),
        (msgpack.packb({"records": "nope"}), "application/msgpack", "records"),
        (msgpack.packb({"records": [{"seq": "0", "kind": "metric"}]}), "application/msgpack", "`$.seq`"),
        (msgpack.packb({"records": [{"seq": 2, "t": 1.0, "kind": "evil"}]}), "application/msgpack", "`$.kind`"),
        (msgpack.packb({"records": [{"seq": 2, "t": 1.0, "kind": "metric", "name": "x", "value": "high"}]}),
         "application/msgpack", "`$.value`"),
        (msgpack.packb({"records": [{"seq": 2, "t": 1.0, "kind": "embedding", "id": "../x", "title": "t"}]}),
         "application/msgpack", "`$.id`"),
    ]
    for body, ctype, message in cases:
        r = requests.post(url, data=body, headers={"Content-Type": ctype}, timeout=30)
        assert r.status_code == 400, (body[:40], r.text)
        assert any(m in r.json()["error"] for m in message.split("|")), r.json()
    r = requests.put(f"{server.api}/projects/proj/runs/{run.run_id}", data=b"[1, 2]", timeout=10)
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
    r = requests.patch(f"{server.api}/runs/{run.run_id}/uploads/{'a' * 64}", data=b"x",
                       headers={"Upload-Offset": "-1", "Upload-Length": "1"}, timeout=10)
    assert r.status_code == 400 and "Upload-Offset" in r.json()["error"]
    assert "Traceback" not in server.output()


def _embedding_with(run, helpers, *, vectors_blob: bytes, sprite: bytes | None = None, n=4, dim=4):
    from tracker_sdk.runformat import encode_metadata, make_column

    rec = run.record("embedding", id=uuid.uuid4().hex, title="t", group=None, step=None, n=n, dim=dim,
                     vectors={"sha256": run.put_blob(vectors_blob), "dtype": "float32", "shape": [n, dim]},
                     metadata={"sha256": run.put_blob(encode_metadata([make_column("l", list(range(n)))], n))},
                     sprite={"sha256": run.put_blob(sprite), "tile_size": [2, 2], "grid": [2, 2], "n": n} if sprite else None)
    run.seq -= 1  # a refused record does not use up its seq
    return rec


def test_pickled_and_mismatched_npy_blobs_are_refused(hostile, helpers):
    server, run, *_ = hostile
    run.seq = 2
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"x": 1}] * 4, dtype=object), allow_pickle=True)
    wrong_dtype = io.BytesIO()
    np.save(wrong_dtype, np.zeros((4, 4), np.float64))
    cases = [(pickled.getvalue(), "float32"), (wrong_dtype.getvalue(), "float32"),
             (helpers.npy_bytes(np.zeros((4, 3), np.float32)), "shape"),
             (helpers.npy_bytes(np.zeros((4, 4), np.float32))[:-8], "bytes but its header"),
             (b"<html>not npy</html>", "not a valid .npy")]
    for blob, message in cases:
        r = run.post([_embedding_with(run, helpers, vectors_blob=blob)])
        assert r.status_code == 400 and message in r.json()["error"], r.text
    assert requests.get(f"{server.api}/runs/{run.run_id}", timeout=10).json()["next_seq"] == 2


def test_html_and_oversized_sprites_are_refused(hostile, helpers):
    server, run, *_ = hostile
    run.seq = 2
    vectors = helpers.npy_bytes(np.eye(4, dtype=np.float32))
    html = b"<!doctype html><script>alert(1)</script>"
    r = run.post([_embedding_with(run, helpers, vectors_blob=vectors, sprite=html)])
    assert r.status_code == 400 and "not a PNG" in r.json()["error"]
    r = run.post([_embedding_with(run, helpers, vectors_blob=vectors, sprite=helpers.png_bytes(8200, 2))])
    assert r.status_code == 400 and "at most 8192x8192" in r.json()["error"]
    truncated = helpers.png_bytes(64, 64)[:60]
    r = run.post([_embedding_with(run, helpers, vectors_blob=vectors, sprite=truncated)])
    assert r.status_code == 400 and "not a valid PNG" in r.json()["error"]
    ok = run.post([_embedding_with(run, helpers, vectors_blob=vectors, sprite=helpers.png_bytes(8, 8))])
    assert ok.json() == {"next_seq": 3}


def test_api_key_origin_and_host_checks(tmp_path, start_server, helpers):
    server = start_server(tmp_path / "keyed", "--api-key", "s3cret-key")
    run_id = uuid.uuid4().hex
    url = f"{server.api}/projects/p/runs/{run_id}"
    r = requests.put(url, json={}, timeout=10)
    assert r.status_code == 401 and "Bearer" in r.json()["error"]
    r = requests.put(url, json={}, headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert r.status_code == 401
    good = {"Authorization": "Bearer s3cret-key"}
    r = requests.put(url, json={}, headers={**good, "Origin": "http://evil.example"}, timeout=10)
    assert r.status_code == 403 and "Origin" in r.json()["error"]
    r = requests.put(url, json={}, headers={**good, "Origin": "null"}, timeout=10)
    assert r.status_code == 403
    r = requests.put(url, json={}, headers={**good, "Host": f"evil.example:{server.port}"}, timeout=10)
    assert r.status_code == 421
    assert requests.get(f"{server.api}/projects", headers={"Host": "rebind.evil.example"}, timeout=10).status_code == 421
    assert requests.put(url, json={}, headers={**good, "Origin": server.url}, timeout=10).json()["next_seq"] == 0
    assert requests.put(url, json={}, headers=good, timeout=10).status_code == 200
    # reads stay open; the blob write path needs the key too
    assert requests.get(f"{server.api}/runs/{run_id}", timeout=10).status_code == 200
    assert requests.put(f"{server.api}/runs/{run_id}/blobs/{helpers.sha(b'x')}", data=b"x",
                        timeout=10).status_code == 401
    assert not (tmp_path / "keyed" / "p" / run_id / "blobs" / helpers.sha(b"x")[:2]).exists()


def test_non_loopback_bind_requires_an_api_key(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "server_stub", "--root", str(tmp_path / "r"), "--create", "--host", "0.0.0.0",
                           "--port", "1"], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "TRACKER_API_KEY"})
    assert proc.returncode == 2 and "needs an API key" in proc.stderr
