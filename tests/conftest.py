"""Shared fixtures: every test writes under its own tmp_path, never the working directory."""

import os
import shutil
import tempfile

import pytest


@pytest.fixture(autouse=True)
def _isolated_tracker_env(tmp_path, monkeypatch):
    """Keep TRACKER_* settings of the developer's shell out of the tests."""
    for name in ("TRACKER_URL", "TRACKER_API_KEY", "TRACKER_DIR", "TRACKER_PROJECT", "TRACKER_REDUCE_KEEP_WARM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def runs_root(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    return root


def pytest_configure(config):
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "tracker_sdk", "numba"))
    # shared reduction workers of this session (and of the scripts it runs) live in a directory of
    # their own: the developer's warm workers are never used, and none outlives the session
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="tracker-tests-runtime-")


def pytest_unconfigure(config):
    from tracker_sdk.reduce.shared_worker import stop_workers

    stop_workers()
    shutil.rmtree(os.environ["XDG_RUNTIME_DIR"], ignore_errors=True)
