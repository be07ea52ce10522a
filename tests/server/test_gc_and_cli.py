"""Expired partial uploads and temporary files are collected (at start, periodically, and by
``tracker-server gc``, a dry run unless ``--apply``); the command refuses a missing root
without ``--create`` and reports a busy port before it says it is serving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from serverprocess import REPO, ServerProcess, free_port

from server_stub.store import Collector, Store

RUN_ID = "ab" * 16
DAY = 24 * 3600


def _age(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def _leftovers(root: Path) -> tuple[list[Path], list[Path]]:
    """(expired partial files, fresh ones) as a killed client or server leaves them."""
    store = Store(root)
    store.put_run("proj", RUN_ID, {"name": "gc"})
    store.close()
    run_dir = root / "proj" / RUN_ID
    uploads = root / ".uploads" / RUN_ID
    uploads.mkdir(parents=True)
    (run_dir / "blobs" / "cd").mkdir(parents=True)
    (run_dir / "blobs" / "tmp").mkdir(parents=True)  # where temporary blobs went before the one blob commit
    old = [uploads / ("1" * 64 + ".part"), uploads / ("1" * 64 + ".length"), run_dir / "blobs" / "cd" / ".x1.part",
           run_dir / "blobs" / ".x2.part", run_dir / ".run.json.x3.tmp", run_dir / "blobs" / "tmp" / "x5.part"]
    fresh = [uploads / ("2" * 64 + ".part"), uploads / ("2" * 64 + ".length"), run_dir / "blobs" / "cd" / ".x4.part"]
    for path in old + fresh:
        path.write_bytes(b"x" * 100)
    for path in old:
        _age(path, DAY + 60)
    return old, fresh


def _server_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server_stub", *args], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=60)


def test_gc_command_is_a_dry_run_unless_applied(tmp_path):
    root = tmp_path / "store"
    old, fresh = _leftovers(root)
    dry = _server_command("gc", "--root", str(root))
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {len(old)} files, {100 * len(old)} bytes; run again with --apply" in dry.stdout
    for path in old:
        assert f"would remove {path.relative_to(root)} (100 bytes, 24.0 h old)" in dry.stdout
        assert path.exists()
    applied = _server_command("gc", "--root", str(root), "--apply")
    assert applied.returncode == 0 and f"removed {len(old)} files, {100 * len(old)} bytes" in applied.stdout
    assert not any(p.exists() for p in old) and all(p.exists() for p in fresh)
    # --older-than is in hours
    shorter = _server_command("gc", "--root", str(root), "--older-than", "0.0001")
    assert f"would remove {len(fresh)} files" in shorter.stdout
    bad = _server_command("gc", "--root", str(root), "--older-than", "-1")
    assert bad.returncode == 2 and "must be a positive number of hours; got '-1'" in bad.stderr


def test_the_server_collects_at_start_and_then_periodically(tmp_path):
    root = tmp_path / "store"
    old, fresh = _leftovers(root)
    with ServerProcess(root, log_path=tmp_path / "server.log"):
        deadline = time.monotonic() + 20
        while any(p.exists() for p in old) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(p.exists() for p in old) and all(p.exists() for p in fresh)

    store = Store(root)
    collector = Collector(store, max_age_s=3600, interval=0.05)
    collector.start()
    try:
        late = _age(fresh[0], 2 * 3600)  # a partial upload that expires while the server runs
        deadline = time.monotonic() + 10
        while late.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not late.exists() and fresh[2].exists()
    finally:
        collector.stop()
        store.close()


def test_missing_root_needs_create(tmp_path):
    missing = tmp_path / "nowhere"
    answer = _server_command("--root", str(missing), "--port", str(free_port()))
    assert answer.returncode == 2 and "is not a directory; pass --create to create it" in answer.stderr
    assert not missing.exists()
    with ServerProcess(missing, log_path=tmp_path / "server.log"):  # ServerProcess passes --create
        assert missing.is_dir()


def test_a_busy_port_is_one_clear_error_before_serving(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        answer = _server_command("--root", str(tmp_path), "--port", str(port))
    assert answer.returncode == 1
    assert answer.stderr.strip() == (f"tracker-server: port {port} on 127.0.0.1 is already in use; stop the other "
                                     "server or pass another --port")
