"""Fixtures of the sync tests (helpers live in synchelpers.py)."""

import pytest
from synchelpers import ServerProcess


@pytest.fixture
def server(tmp_path):
    proc = ServerProcess(tmp_path / "server-root").start()
    yield proc
    proc.stop()
