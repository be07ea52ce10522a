"""The binary columns answer (server_stub/columns_binary.py) against a real server: the same values
as the stored metadata and the JSON answers, exactly, for every kind of cell."""

from __future__ import annotations

import json
import math
import struct
import time
import uuid

import msgpack
import numpy as np
import pytest
import requests

from server_stub.columns_binary import decode
from tracker_sdk import Experiment
from tracker_sdk.runformat import open_run

N = 600
UNICODE = ["", "plain", "naïve café", "日本語", "😀 emoji", "\ufeffstarts with a BOM", "e\u0301 combining",
           "tab\tnew\nline", "\u202eright-to-left", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "nul\x00inside", "a" * 300]


def _cells(n: int) -> dict:
    """Metadata with every kind of cell: ints (64-bit, negative), floats (NaN, inf), bools, Unicode, missing."""
    rng = np.random.default_rng(3)
    floats = rng.normal(size=n).tolist()
    floats[1], floats[2], floats[3], floats[4] = math.nan, math.inf, -math.inf, -0.0
    floats[5] = 5e-324
    big = [int(v) for v in rng.integers(-2 ** 62, 2 ** 62, size=n)]
    return {
        "text": [UNICODE[i % len(UNICODE)] if i % 7 else None for i in range(n)],
        "count": [i - 300 for i in range(n)],
        "count_missing": [None if i % 11 == 0 else i * 3 for i in range(n)],
        "big": big,
        "unsigned": [2 ** 64 - 1 - i for i in range(n)],
        "score": floats,
        "score_missing": [None if i % 13 == 0 else 0.5 * i for i in range(n)],
        "flag": [bool(i % 3) for i in range(n)],
        "flag_missing": [None if i % 5 == 0 else i % 2 == 0 for i in range(n)],
        "mixed": [[1, 1.0, True, "1", None, 2.5, "😀", 7][i % 8] for i in range(n)],
        "ids": [f"id-{i:05d}" for i in range(n)],  # as many distinct values as rows
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory, module_server):
    """One run with two steps, a shared projection and its per-point trust columns, served from disk."""
    root = module_server.root
    rng = np.random.default_rng(0)
    exp = Experiment(url=str(root), project_name="binary", experiment_name="columns")
    meta = _cells(N)
    labels = [f"class_{i % 4}" for i in range(N)]
    ids = []
    for step in (0, 1):
        x = (rng.normal(size=(N, 8)) + np.arange(N)[:, None] % 4 * 3).astype(np.float32)
        ids.append(exp.log_embedding(x, labels, title="t", group="g", step=step, metadata=meta, reduce=None).id)
    exp.reduce_group("g", title="t", method="pca", n_components=2, background=False)
    exp.analyze_dynamics("g", k=5)
    exp.end()
    module_server.stop()
    module_server.start()  # reads the finished run from disk
    run = open_run(exp.run_dir)
    emb = run.embedding(ids[-1])
    return {"api": module_server.api, "run": exp.run_id, "emb": emb, "server": module_server}


def _binary(served, **params):
    r = requests.get(f"{served['api']}/runs/{served['run']}/embeddings/{served['emb'].id}/columns", params=params,
                     timeout=30)
    return r


def _same(a, b) -> bool:
    """Cells equal with their types: 1 != 1.0 != True, -0.0 != 0.0, NaN == NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return a == b


def test_every_column_round_trips_exactly(served):
    r = _binary(served)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.tracker.columns"
    got = decode(r.content)
    stored = served["emb"].metadata
    assert got["n"] == N
    assert [c["name"] for c in got["columns"]] == [c["name"] for c in stored["columns"]]
    for want, have in zip(stored["columns"], got["columns"]):
        assert have["type"] == want["type"], want["name"]
        bad = [i for i, (a, b) in enumerate(zip(want["values"], have["values"])) if not _same(a, b)]
        assert not bad, f"{want['name']}: rows {bad[:5]} differ: {[want['values'][i] for i in bad[:3]]} vs " \
                        f"{[have['values'][i] for i in bad[:3]]}"
    kinds = {c["name"]: c["type"] for c in got["columns"]}
    assert kinds["count"] == "int" and kinds["score"] == "float" and kinds["flag"] == "bool" and kinds["mixed"] == "mixed"


def test_same_values_as_the_json_answer(served):
    """The JSON answer says null for infinities (JSON has none); everything else is the same value."""
    got = decode(_binary(served).content)
    answer = requests.get(f"{served['api']}/runs/{served['run']}/embeddings/{served['emb'].id}/metadata",
                          timeout=30).json()
    assert answer["n"] == got["n"]
    assert [c["name"] for c in answer["columns"]] == [c["name"] for c in got["columns"]]
    for j, b in zip(answer["columns"], got["columns"]):
        assert j["type"] == b["type"]
        for i, (x, y) in enumerate(zip(j["values"], b["values"])):
            if isinstance(y, float) and math.isinf(y):
                assert x is None
            else:
                assert _same(x, y) or (isinstance(x, int) and isinstance(y, float) and x == y and b["type"] == "float"), \
                    (j["name"], i, x, y)


def test_layout_is_aligned_typed_and_small(served):
    body = _binary(served).content
    assert body[:4] == b"TCOL"
    (size,) = struct.unpack_from("<I", body, 4)
    assert (8 + size) % 8 == 0
    header = json.loads(body[8:8 + size])
    assert header["layout"] == "tracker-columns/1"
    refs = []
    for col in header["columns"]:
        for key in ("values", "codes", "missing"):
            if col.get(key):
                refs.append(col[key])
        if col["encoding"] == "dictionary":
            refs += [col["dictionary"]["offsets"], col["dictionary"]["data"]]
    assert refs and all((8 + size + ref["offset"]) % 8 == 0 for ref in refs)
    assert all(8 + size + ref["offset"] + ref["length"] * np.dtype(ref["dtype"]).itemsize <= len(body) for ref in refs)
    by_name = {c["name"]: c for c in header["columns"]}
    assert by_name["text"]["encoding"] == "dictionary" and by_name["text"]["codes"]["dtype"] == "uint8"
    assert by_name["text"]["dictionary"]["count"] == len(UNICODE)
    assert by_name["text"]["missing_count"] == len(range(0, N, 7))
    assert by_name["ids"]["codes"]["dtype"] == "uint16"
    assert by_name["count"]["values"]["dtype"] == "int32" and by_name["count"]["missing"] is None
    assert by_name["big"]["values"]["dtype"] == "int64" and by_name["unsigned"]["values"]["dtype"] == "uint64"
    assert by_name["score"]["values"]["dtype"] == "float64" and by_name["flag"]["values"]["dtype"] == "bool"
    assert by_name["mixed"]["encoding"] == "json"
    json_size = len(requests.get(f"{served['api']}/runs/{served['run']}/embeddings/{served['emb'].id}/metadata",
                                 timeout=30).content)
    assert len(body) < json_size / 2


def test_named_columns_in_the_order_asked(served):
    got = decode(_binary(served, name=["score", "text", "score"]).content)
    assert [c["name"] for c in got["columns"]] == ["score", "text"]
    assert got["available"] == [c["name"] for c in served["emb"].metadata["columns"]]


def test_a_projection_adds_its_own_columns_and_scores(served):
    emb = served["emb"]
    red = emb.reductions[0]
    got = decode(_binary(served, reduction=red.id).content)
    own = requests.get(f"{served['api']}/runs/{served['run']}/reductions/{red.id}/columns", timeout=30).json()
    assert own["columns"], "analyze_dynamics stores trust columns"
    names = [c["name"] for c in got["columns"]]
    assert names[-len(own["columns"]):] == [c["name"] for c in own["columns"]]
    assert got["scores"] == own["analysis"] and got["scores"]
    for j in own["columns"]:
        b = next(c for c in got["columns"] if c["name"] == j["name"])
        assert all(_same(x, y) for x, y in zip(j["values"], b["values"]))
    only = decode(_binary(served, reduction=red.id, name="trust_point").content)
    assert [c["name"] for c in only["columns"]] == ["trust_point"] and "trust_point" in only["available"]


def test_bad_requests_name_what_is_wrong(served):
    r = _binary(served, name="nope")
    assert r.status_code == 404 and "'nope'" in r.json()["error"] and "'text'" in r.json()["error"]
    r = _binary(served, reduction="zz")
    assert r.status_code == 400 and "reduction" in r.json()["error"]
    other = open_run(served["emb"].run.path).embeddings[0]
    assert other.id != served["emb"].id
    r = _binary(served, reduction=other.reductions[0].id)
    assert r.status_code == 404 and "not of" in r.json()["error"]
    r = requests.get(f"{served['api']}/runs/{served['run']}/embeddings/{uuid.uuid4().hex}/columns", timeout=10)
    assert r.status_code == 404


def test_foreign_blob_cells_travel_as_json(served, helpers):
    """A client may store any msgpack cells: they come back as the JSON answer shows them."""
    remote = helpers.RemoteRun(served["server"], project="foreign")
    remote.create()
    n = 6
    columns = [{"name": "huge", "type": "int", "values": [2 ** 64 - 1, -1, 0, None, 5, 6]},  # no 64-bit type holds both
               {"name": "nested", "type": "mixed", "values": [[1, 2], {"a": 1}, "x", None, math.nan, b"raw"]},
               {"name": "liar", "type": "float", "values": [1, 2.5, "three", True, None, 0]},
               {"name": "all_missing", "type": "str", "values": [None] * n}]
    meta_sha = remote.put_blob(msgpack.packb({"n": n, "columns": columns}, use_bin_type=True))
    vec_sha = remote.put_blob(helpers.npy_bytes(np.zeros((n, 2), np.float32)))
    emb_id = uuid.uuid4().hex
    record = remote.record("embedding", id=emb_id, title="f", group=None, step=None, n=n, dim=2,
                           vectors={"sha256": vec_sha, "dtype": "float32", "shape": [n, 2]},
                           metadata={"sha256": meta_sha, "columns": [c["name"] for c in columns],
                                     "types": [c["type"] for c in columns], "header": False}, sprite=None)
    assert remote.post([record]).status_code == 200
    base = f"{served['api']}/runs/{remote.run_id}/embeddings/{emb_id}"
    deadline = time.monotonic() + 10
    while (r := requests.get(base + "/columns", timeout=10)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    got = {c["name"]: c for c in decode(r.content)["columns"]}
    assert got["huge"]["values"] == [2 ** 64 - 1, -1, 0, None, 5, 6]
    assert got["nested"]["values"][:4] == [[1, 2], {"a": 1}, "x", None]
    assert math.isnan(got["nested"]["values"][4]) and got["nested"]["values"][5] == "raw"
    assert [type(v) for v in got["liar"]["values"]] == [int, float, str, bool, type(None), int]
    assert got["all_missing"]["values"] == [None] * n
    answer = requests.get(base + "/metadata", timeout=10).json()
    for col in answer["columns"]:
        have = got[col["name"]]["values"]
        assert all(_same(a, b) or (a is None and isinstance(b, float) and math.isnan(b)) for a, b in zip(col["values"], have))
