"""A full disk on the server is a 507 with Retry-After for every kind of write, never a 500,
and the same requests succeed once space frees (a real tmpfs, mounted when run as root)."""

from __future__ import annotations

import base64
import hashlib
import os

import requests
from serverprocess import ServerProcess  # tests/ is on sys.path
from smallfs import fill, small_filesystem

from tracker_sdk.runformat import open_run, verify_blob


def _checksum(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_every_write_on_a_full_disk_is_507_with_retry_after_then_succeeds(tmp_path, helpers):
    with small_filesystem(tmp_path / "mnt", "8m") as mnt:
        server = ServerProcess(mnt / "store", log_path=tmp_path / "server.log").start()
        try:
            run = helpers.RemoteRun(server)
            run.create(name="before")
            blob = os.urandom(200_000)
            digest = helpers.sha(blob)
            chunk_url = f"{server.api}/runs/{run.run_id}/uploads/{digest}"
            chunk_headers = {"Upload-Offset": "0", "Upload-Length": str(len(blob)), "Upload-Checksum": _checksum(blob)}
            metric = run.record("metric", name="loss", value=0.5, step=0)
            run_url = f"{server.api}/projects/{run.project}/runs/{run.run_id}"
            run_body = {"run_id": run.run_id, "project": run.project, "name": "renamed", "format_version": 1}

            filler = fill(mnt)
            answers = {
                "journal append": run.post([metric]),
                "run.json write": requests.put(run_url, json=run_body, timeout=30),
                "blob": requests.put(f"{server.api}/runs/{run.run_id}/blobs/{digest}", data=blob, timeout=30),
                "chunk": requests.patch(chunk_url, data=blob, headers=chunk_headers, timeout=30),
            }
            for what, answer in answers.items():
                assert answer.status_code == 507, (what, answer.status_code, answer.text)
                assert answer.headers["Retry-After"] == "60" and answer.json()["retry_after"] == 60, what
                assert "disk is full" in answer.json()["error"], what
            assert requests.get(f"{server.api}/projects/{run.project}/runs", timeout=30).status_code == 200
            assert requests.get(chunk_url, timeout=30).json()["offset"] == 0  # the failed chunk was cut off

            filler.unlink()
            assert run.post([metric]).json() == {"next_seq": 1}
            assert requests.put(run_url, json=run_body, timeout=30).status_code == 200
            assert requests.patch(chunk_url, data=blob, headers=chunk_headers, timeout=30).json() == {
                "offset": len(blob), "complete": True}
            assert requests.put(f"{server.api}/runs/{run.run_id}/blobs/{digest}", data=blob,
                                timeout=30).status_code == 200
            run_dir = mnt / "store" / run.project / run.run_id
            stored = open_run(run_dir)
            assert stored.name == "renamed" and [m.value for m in stored.metrics] == [0.5]
            assert verify_blob(run_dir, digest)
        finally:
            server.stop()
        assert " 500 " not in server.output() and "Traceback" not in server.output()
