"""The backend contract on the HTTP backend, against a real ``tracker-server`` process on loopback."""

import pytest

from tracker_sdk.runformat import open_run
from tracker_sdk.sync.http import MIN_CHUNK, HTTPBackend

from backend_contract import BackendContract
from synchelpers import ServerProcess

SMALL_CHUNKS = 5 << 20  # several chunks for the contract's 16 MB blob


class HTTPDestination:
    resumable = True  # the server keeps a partial upload; the client asks for its offset

    def __init__(self, spec: dict):
        self.spec = spec

    def backend(self) -> HTTPBackend:
        return HTTPBackend(self.spec["url"], chunk_threshold=SMALL_CHUNKS, chunk_size=SMALL_CHUNKS)

    def read_back(self, project: str, run_id: str):
        return open_run(f"{self.spec['root']}/{project}/{run_id}")

    def snapshot(self):
        from pathlib import Path

        root = Path(self.spec["root"])
        return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                      for p in root.rglob("*") if p.is_file() and p.suffix not in (".sqlite3", ".sqlite3-wal", ".sqlite3-shm"))


def make_destination(spec: dict) -> HTTPDestination:
    return HTTPDestination(spec)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("server") / "root").start()
    yield proc
    proc.stop()


class TestHTTPBackend(BackendContract):
    @pytest.fixture
    def destination(self, server):
        assert MIN_CHUNK <= SMALL_CHUNKS
        return make_destination({"url": server.url, "root": str(server.root)})
