"""The backend contract on the directory backend (``file://`` or a path as the destination)."""

from pathlib import Path

import pytest

from tracker_sdk.runformat import open_run
from tracker_sdk.sync.directory import DirectoryBackend

from backend_contract import BackendContract


class DirectoryDestination:
    resumable = False  # a blob is copied whole; a killed copy leaves only a temporary file

    def __init__(self, spec: dict):
        self.spec = spec
        self.root = Path(spec["root"])

    def backend(self) -> DirectoryBackend:
        return DirectoryBackend(self.root.as_uri())

    def read_back(self, project: str, run_id: str):
        return open_run(self.root / project / run_id)

    def snapshot(self):
        return sorted((str(p.relative_to(self.root)), p.stat().st_size, p.stat().st_mtime_ns)
                      for p in self.root.rglob("*") if p.is_file())


def make_destination(spec: dict) -> DirectoryDestination:
    return DirectoryDestination(spec)


class TestDirectoryBackend(BackendContract):
    @pytest.fixture
    def destination(self, tmp_path):
        return make_destination({"root": str(tmp_path / "copy")})
