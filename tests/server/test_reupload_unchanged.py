"""Re-uploading an unchanged run changes nothing in the server's store: not one file, size or
mtime (the SQLite index included), even when the client lost its marker and sends it all again."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import requests

from tracker_sdk.sync.http import HTTPBackend
from tracker_sdk.sync.uploader import SYNC_STATE, Uploader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sync"))
from synchelpers import assert_same_run, make_run


def _snapshot(root: Path) -> list[tuple]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out.append((os.path.relpath(os.path.join(dirpath, name), root), st.st_size, st.st_mtime_ns))
    return sorted(out)


def test_reuploading_an_unchanged_run_touches_no_file(start_server, tmp_path):
    server = start_server()
    run_dir = make_run(tmp_path / "local", embeddings=2, metrics=20)
    backend = HTTPBackend(server.url)
    try:
        assert Uploader(backend, run_dir).sync_once(final=True)
        assert requests.get(f"{server.api}/projects/proj/runs", timeout=10).status_code == 200
        before = _snapshot(server.root)
        assert Uploader(backend, run_dir).sync_once(final=True)  # the marker says everything is there
        (run_dir / SYNC_STATE).unlink()
        assert Uploader(backend, run_dir).sync_once(final=True)  # no marker: every record and blob is offered
        assert requests.get(f"{server.api}/projects/proj/runs", timeout=10).status_code == 200
    finally:
        backend.close()
    assert _snapshot(server.root) == before
    assert_same_run(run_dir, server.root)
