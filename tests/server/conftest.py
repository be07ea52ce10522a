"""Fixtures that start a real ``python -m server_stub`` process on a free loopback port."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from pathlib import Path

import msgpack
import numpy as np
import pytest
import requests

from tracker_sdk.runformat import encode_metadata, make_column, npy_bytes

from serverprocess import ServerProcess, free_port  # noqa: F401  (tests/ is on sys.path)


@pytest.fixture
def start_server(tmp_path):
    """``start_server(root, *args)`` -> a running ServerProcess, stopped after the test."""
    servers = []

    def _start(root=None, *args):
        root = Path(root) if root is not None else tmp_path / "store"
        server = ServerProcess(root, *args, log_path=tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        return server.start()

    yield _start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """One server shared by a module's read-only tests, on its own root."""
    base = tmp_path_factory.mktemp("shared-server")
    server = ServerProcess(base / "store", log_path=base / "server.log").start()
    yield server
    server.stop()


# -- building records as the SDK writes them ------------------------------------------------
def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png_bytes(width=16, height=16, color=(200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


class RemoteRun:
    """Drives the write API the way the sync client does: blobs first, then records by seq."""

    def __init__(self, server: ServerProcess, project="proj", run_id=None, headers=None):
        self.server = server
        self.project = project
        self.run_id = run_id or uuid.uuid4().hex
        self.headers = dict(headers or {})
        self.seq = 0

    def create(self, **info):
        body = {"run_id": self.run_id, "project": self.project, "created": time.time(), "name": "remote",
                "format_version": 1, **info}
        r = requests.put(f"{self.server.api}/projects/{self.project}/runs/{self.run_id}", json=body,
                         headers=self.headers, timeout=10)
        r.raise_for_status()
        return r.json()

    def put_blob(self, data: bytes) -> str:
        digest = sha(data)
        r = requests.put(f"{self.server.api}/runs/{self.run_id}/blobs/{digest}", data=data,
                         headers=self.headers, timeout=30)
        assert r.status_code in (200, 201), r.text
        return digest

    def record(self, kind: str, **payload) -> dict:
        rec = {"seq": self.seq, "t": time.time(), "kind": kind, **payload}
        self.seq += 1
        return rec

    def post(self, records, *, as_json=False):
        if as_json:
            return requests.post(f"{self.server.api}/runs/{self.run_id}/records", json={"records": records},
                                 headers=self.headers, timeout=30)
        return requests.post(f"{self.server.api}/runs/{self.run_id}/records",
                             data=msgpack.packb({"records": records}, use_bin_type=True),
                             headers={**self.headers, "Content-Type": "application/msgpack"}, timeout=30)

    def embedding_record(self, vectors: np.ndarray, labels, *, sprite: bytes | None = None, title="emb",
                         step=None, group=None) -> dict:
        vectors = np.asarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        vec = self.put_blob(npy_bytes(vectors))
        columns = [make_column("label", labels)]
        meta = self.put_blob(encode_metadata(columns, n))
        sprite_ref = None
        if sprite is not None:
            sprite_ref = {"sha256": self.put_blob(sprite), "tile_size": [4, 4], "grid": [4, 4], "n": n}
        return self.record("embedding", id=uuid.uuid4().hex, title=title, group=group, step=step, n=n, dim=dim,
                           vectors={"sha256": vec, "dtype": "float32", "shape": [n, dim]},
                           metadata={"sha256": meta, "columns": ["label"], "types": [columns[0]["type"]],
                                     "header": False},
                           sprite=sprite_ref)


@pytest.fixture
def helpers():
    """The builders above, for tests (tests/ has no package to import them from)."""
    class H:
        RemoteRun = RemoteRun
        sha = staticmethod(sha)
        png_bytes = staticmethod(png_bytes)
        npy_bytes = staticmethod(npy_bytes)
    return H

