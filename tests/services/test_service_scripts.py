"""What .ci/services/down.sh and up.sh do without starting any service: down.sh signals only the
recorded processes that still name the directory, and up.sh refuses a bad directory before it
installs or starts anything. The services themselves are exercised by test_services_smoke.py."""

import os
import subprocess
import sys
import time

import pytest

from serverprocess import REPO  # tests/ is on sys.path

SCRIPTS = REPO / ".ci" / "services"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _sleeper(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_down_stops_recorded_daemons_naming_the_directory_and_spares_others(tmp_path):
    services = tmp_path / "svc"
    services.mkdir()
    ours = _sleeper("--data", str(services))
    # a recorded PID now held by a process that does not name the directory (a reused PID)
    stranger = _sleeper("--data", str(tmp_path / "elsewhere"))
    # an exited daemon nobody has reaped yet: a zombie counts as stopped, down.sh must not wait on it
    zombie = _sleeper(str(services))
    zombie.kill()
    while _alive(zombie.pid):
        time.sleep(0.01)
    (services / "pids").write_text(f"rgw.a {ours.pid} TERM\nosd.0 {stranger.pid} TERM\nmon.a {zombie.pid} TERM\n")
    try:
        result = subprocess.run([str(SCRIPTS / "down.sh"), str(services)], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert ours.wait(timeout=5) == -15
        assert _alive(stranger.pid)
        assert not services.exists()
        assert "stopped and removed" in result.stderr
        assert "still running" not in result.stderr
    finally:
        for proc in (ours, stranger, zombie):
            proc.kill()
            proc.wait()


def test_down_kills_a_daemon_that_ignores_its_signal_after_the_bounded_wait(tmp_path):
    services = tmp_path / "svc"
    services.mkdir()
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(60)", str(services)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert stubborn.stdout.readline() == "ready\n"
    (services / "pids").write_text(f"mon.a {stubborn.pid} TERM\n")
    try:
        started = time.monotonic()
        result = subprocess.run([str(SCRIPTS / "down.sh"), str(services)], capture_output=True, text=True,
                                env={**os.environ, "TRACKER_SERVICES_STOP_TIMEOUT": "1"}, timeout=60)
        assert result.returncode == 0, result.stderr
        assert stubborn.wait(timeout=5) == -9
        assert "still running after 1 s, killing: mon.a" in result.stderr
        assert 1 <= time.monotonic() - started < 20
        assert not services.exists()
    finally:
        stubborn.kill()
        stubborn.wait()


def test_down_without_a_directory_says_how_to_call_it(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TRACKER_SERVICES_DIR"}
    result = subprocess.run([str(SCRIPTS / "down.sh")], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 2
    assert "usage: down.sh DIR (or set TRACKER_SERVICES_DIR)" in result.stderr


@pytest.mark.parametrize("name, message", [
    ("x" * 80, "DIR must be at most 70 characters"),
    ("full", "DIR must be an empty directory or not exist yet"),
])
def test_up_refuses_a_bad_directory_before_anything_else(tmp_path, name, message):
    target = tmp_path / name
    if name == "full":
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    result = subprocess.run([str(SCRIPTS / "up.sh"), str(target)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert "installing" not in result.stderr
    if name == "full":
        assert (target / "keep.txt").read_text() == "mine"


def test_service_tests_are_skipped_with_a_message_when_the_urls_are_unset(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRACKER_TEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         str(REPO / "tests" / "services" / "test_services_smoke.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 skipped" in result.stdout
    assert "needs PostgreSQL: TRACKER_TEST_POSTGRES_URL is unset" in result.stdout
    assert "needs the S3 service: TRACKER_TEST_S3_ENDPOINT" in result.stdout
    assert ".ci/services/up.sh" in result.stdout
