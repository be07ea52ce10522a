"""Feedback while a person waits: a bar on a terminal, plain lines elsewhere, silence when quiet."""

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
import time

import pytest

from tracker_sdk import _progress
from tracker_sdk._progress import Progress, is_quiet, say, track


class Plain(io.StringIO):
    def isatty(self):
        return False


def test_off_a_terminal_a_slow_loop_prints_running_counts_and_a_final_line(monkeypatch, capsys):
    monkeypatch.setattr(_progress, "PLAIN_INTERVAL", 0.05)
    for _ in track(range(4), desc="collecting activations", unit="batch"):
        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("collecting activations: ") and "/4 batch after" in line for line in lines)
    assert lines[-1].startswith("collecting activations: 4 batch in ")


def test_quiet_by_argument_or_environment_prints_nothing(monkeypatch, capsys):
    monkeypatch.setattr(_progress, "PLAIN_INTERVAL", 0.0)
    with Progress(3, "waiting", quiet=True) as progress:
        progress.update()
        progress.step_done("one job done")
    say("summary", quiet=True)
    monkeypatch.setenv("TRACKER_QUIET", "1")
    assert is_quiet() and not is_quiet(False)
    say("summary")
    list(track(range(3), desc="x"))
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TRACKER_QUIET", "0")
    assert not is_quiet()


def test_step_done_and_byte_counts_on_a_plain_stream(monkeypatch):
    monkeypatch.setattr(_progress, "PLAIN_INTERVAL", 0.0)
    stream = Plain()
    with Progress(4 << 20, "upload 1 runs", unit="B", scale_bytes=True, stream=stream) as progress:
        progress.update(2 << 20)
        progress.step_done("run p/abc uploaded")
    text = stream.getvalue()
    assert "upload 1 runs: 2.0 MB/4.0 MB after" in text and "run p/abc uploaded\n" in text


def test_on_a_terminal_the_bar_is_drawn():
    code = ("import time; from tracker_sdk._progress import track\n"
            "for _ in track(range(3), desc='training', unit='epoch'):\n    time.sleep(0.05)\n")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal of 100 columns
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=follower, stdout=follower, stderr=follower,
                            env={**os.environ, "TRACKER_QUIET": ""})
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    assert proc.wait(timeout=60) == 0
    text = output.decode(errors="replace")
    assert "training" in text and "3/3" in text and "epoch" in text


@pytest.mark.parametrize("value, quiet", [("yes", True), ("false", False), ("", False)])
def test_quiet_values(monkeypatch, value, quiet):
    monkeypatch.setenv("TRACKER_QUIET", value)
    assert is_quiet() is quiet
