"""Per-chunk checksums (tus's Upload-Checksum), ASCII-only numeric headers, finite record
times, and the server's own receive time of every record batch, against a real server."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import time

import requests


def _checksum(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_a_chunk_that_fails_its_checksum_is_dropped_with_460_and_can_be_sent_again(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server)
    run.create()
    data = os.urandom(300_000)
    url = f"{server.api}/runs/{run.run_id}/uploads/{helpers.sha(data)}"
    first, second = data[:150_000], data[150_000:]

    def patch(offset, body, checksum_of):
        return requests.patch(url, data=body, timeout=30, headers={
            "Upload-Offset": str(offset), "Upload-Length": str(len(data)), "Upload-Checksum": _checksum(checksum_of)})

    assert patch(0, first, first).json() == {"offset": 150_000, "complete": False}
    corrupted = bytearray(second)
    corrupted[1000] ^= 0xFF
    answer = patch(150_000, bytes(corrupted), second)
    assert answer.status_code == 460 and "does not match its Upload-Checksum" in answer.json()["error"]
    assert requests.get(url, timeout=10).json()["offset"] == 150_000  # nothing of the bad chunk was kept
    assert patch(150_000, second, second).json() == {"offset": len(data), "complete": True}
    blob = requests.get(f"{server.api}/runs/{run.run_id}/blobs/{helpers.sha(data)}", timeout=30).content
    assert blob == data


def test_malformed_checksum_and_non_ascii_digits_are_400_not_500(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server)
    run.create()
    url = f"{server.api}/runs/{run.run_id}/uploads/{helpers.sha(b'abc')}"
    cases = [
        ({"Upload-Offset": "\u00b2", "Upload-Length": "3"}, "Upload-Offset must be a non-negative integer in ASCII"),
        ({"Upload-Offset": "0", "Upload-Length": "\u00b9\u00b2"}, "Upload-Length must be a non-negative integer"),
        ({"Upload-Offset": "0", "Upload-Length": "\u0663"}, "Upload-Length must be a non-negative integer"),
        ({"Upload-Offset": "0", "Upload-Length": "3", "Upload-Checksum": "md5 AAAA"}, "algorithm 'md5' is not"),
        ({"Upload-Offset": "0", "Upload-Length": "3", "Upload-Checksum": "sha256 not-base64!"},
         "must carry a base64 sha256 digest"),
    ]
    for headers, message in cases:
        encoded = {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}  # raw UTF-8 bytes on the wire
        answer = requests.patch(url, data=b"abc", headers=encoded, timeout=10)
        assert answer.status_code == 400 and message in answer.json()["error"], (headers, answer.text)
    assert "Traceback" not in server.output()


def test_record_times_must_be_finite(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server)
    run.create()
    for bad in (math.nan, math.inf):
        record = {**run.record("metric", name="loss", value=1.0, step=0), "t": bad}
        run.seq = 0
        as_json = requests.post(f"{server.api}/runs/{run.run_id}/records", data=json.dumps({"records": [record]}),
                                headers={"Content-Type": "application/json"}, timeout=10)  # NaN / Infinity literals
        for answer in (run.post([record]), as_json):
            assert answer.status_code == 400 and "finite" in answer.json()["error"], answer.text
    assert requests.get(f"{server.api}/runs/{run.run_id}", timeout=10).json()["next_seq"] == 0


def test_every_appended_batch_gets_the_servers_receive_time(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server)
    run.create()
    client_clock = 1_000_000.0  # a client whose clock is far off
    batches = [[{**run.record("metric", name="loss", value=float(i), step=i), "t": client_clock} for i in range(3)],
               [{**run.record("metric", name="loss", value=9.0, step=9), "t": client_clock}]]
    before = time.time()
    for batch in batches:
        assert run.post(batch).status_code == 200
    assert run.post(batches[1]).json() == {"next_seq": 4}  # a duplicate appends nothing and notes nothing
    after = time.time()
    lines = (server.root / "proj" / run.run_id / "received.jsonl").read_text().splitlines()
    notes = [json.loads(line) for line in lines]
    assert [(n["first_seq"], n["last_seq"], n["n"]) for n in notes] == [(0, 2, 3), (3, 3, 1)]
    assert all(before <= n["received"] <= after for n in notes)
