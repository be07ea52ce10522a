"""A run whose journal is corrupt in the middle of a segment, against a real server process.

Every read and every write of it answers 422 naming the segment file and the byte offset,
never 500; no writer lock is left behind, so once the byte is repaired the same server
process accepts writes again.
"""

from __future__ import annotations

import requests


def _flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_journal_is_422_with_file_and_offset_for_reads_and_writes(start_server, helpers):
    server = start_server()
    run = helpers.RemoteRun(server, project="proj")
    run.create()
    records = [run.record("parameter", name="lr", value=0.1)]
    records += [run.record("metric", name="loss", value=1.0 / (i + 1), step=i, epoch=None) for i in range(4)]
    records.append(run.record("end", status="finished"))  # the server closes its writer: the next write reopens it
    assert run.post(records).json() == {"next_seq": 6}
    segment = sorted((server.root / "proj" / run.run_id / "journal").glob("*.seg"))[0]
    _flip(segment, 20)  # inside the first frame; valid frames follow, so this is corruption, not a torn tail
    relative = f"proj/{run.run_id}/journal/{segment.name}"

    def expect_422(response):
        assert response.status_code == 422, (response.status_code, response.text)
        body = response.json()
        assert body["file"] == relative and body["offset"] == 0, body
        assert f"run {run.run_id} cannot be read: corrupt journal record in {relative}" in body["error"]
        assert str(server.root) not in response.text

    base = f"{server.api}/runs/{run.run_id}"
    for path in ("", "/metrics", "/embeddings"):
        expect_422(requests.get(base + path, timeout=10))
    later = run.record("metric", name="loss", value=0.1, step=9, epoch=None)
    for _ in range(2):  # the second write is 422 again, not a false 409 "being written by another process"
        expect_422(run.post([later]))
    expect_422(requests.put(f"{server.api}/projects/proj/runs/{run.run_id}", json={"name": "again"}, timeout=10))
    listed = requests.get(f"{server.api}/projects/proj/runs", timeout=10).json()
    assert [(r["run_id"], r["status"]) for r in listed] == [(run.run_id, "unreadable")]

    _flip(segment, 20)  # repaired: the same server process writes to the run again
    assert run.post([later]).json() == {"next_seq": 7}
    assert requests.get(base, timeout=10).json()["next_seq"] == 7
    assert "Traceback" not in server.output()
