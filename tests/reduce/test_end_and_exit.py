"""end() and interpreter exit: a script that never calls end() gets what end() produces; end()
shows what it waits for; Ctrl-C during the wait keeps everything and names the command that
finishes the work. Real interpreters in subprocesses, real signals."""

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest

from tracker_sdk import open_run
from tracker_sdk.cli import main as cli
from tracker_sdk.runformat.records import EndRecord

HERE = os.path.dirname(__file__)

COMET_STYLE = """
import sys
import numpy as np
from tracker_sdk import Experiment
n, d, call_end = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "end"
X = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
exp = Experiment(project_name="noend", url=sys.argv[1])
exp.log_embedding(X, [i % 7 for i in range(n)])
print(exp.run_dir, flush=True)
if call_end:
    exp.end()
"""


def run_script(script, *args, timeout=300):
    out = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                         timeout=timeout, env=dict(os.environ, TRACKER_REDUCE_KEEP_WARM="0"))
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1], out.stderr


@pytest.mark.parametrize("n, d", [(1000, 300), (100_000, 128)])
def test_a_script_without_end_gets_exactly_what_end_produces(tmp_path, n, d):
    runs = {}
    for variant in ("end", "no-end"):
        run_dir, stderr = run_script(COMET_STYLE, tmp_path / variant, n, d, variant)
        assert "failed" not in stderr and "cannot schedule" not in stderr, stderr
        runs[variant] = open_run(run_dir)
    for run in runs.values():
        assert run.status == "finished" and isinstance(run.records[-1], EndRecord)
        (emb,) = run.embeddings
        (red,) = emb.reductions
        assert red.method == "pca" and red.n_components == 3 and np.asarray(red.coords).shape == (n, 3)
        run.verify()
    (with_end,), (without,) = (r.embeddings[0].reductions for r in runs.values())
    assert without.record.coords.sha256 == with_end.record.coords.sha256  # the same coordinates, byte for byte
    assert without.params == with_end.params


WAITING = """
import sys
sys.path.insert(0, sys.argv[2])
from reduce_helpers import SlowReducer, clusters
from tracker_sdk import Experiment
X, labels = clusters()
exp = Experiment(project_name="p", url=sys.argv[1])
handle = exp.log_embedding(X, labels, title="slow", reduce=SlowReducer(n_components=2), reduce_background=True)
print(exp.run_dir, handle.id, flush=True)
exp.end()
"""


def test_ctrl_c_while_end_waits_keeps_everything_and_prints_the_command(runs_root):
    env = dict(os.environ, TRACKER_REDUCE_KEEP_WARM="0")
    proc = subprocess.Popen([sys.executable, "-c", WAITING, str(runs_root), HERE], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        run_dir, embedding_id = proc.stdout.readline().split()
        line = proc.stderr.readline()  # not a terminal: one plain line says what end() waits for
        assert "waiting for 1 reduction(s)" in line and "pca of 'slow'" in line and "Ctrl-C" in line
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        seconds = time.monotonic() - start
    finally:
        proc.kill()
    assert seconds < 10 and proc.returncode != 0 and "KeyboardInterrupt" in stderr
    command = f"tracker reduce {run_dir} --embedding {embedding_id} --method pca --n-components 2"
    assert command in stderr
    run = open_run(run_dir)
    assert run.status == "finished" and run.embeddings[0].reductions == []
    run.verify()
    assert cli(command.split()[1:]) == 0
    assert [r.method for r in open_run(run_dir).embeddings[0].reductions] == ["pca"]


def test_on_a_terminal_end_shows_a_progress_bar_with_the_job_then_its_summary_line(runs_root):
    script = WAITING.replace("exp.end()", "exp.end_timeout = 2.0\nexp.end()")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 columns wide
    proc = subprocess.Popen([sys.executable, "-c", script, str(runs_root), HERE], stdout=subprocess.PIPE,
                            stderr=follower, text=True, env=dict(os.environ, TRACKER_REDUCE_KEEP_WARM="0"))
    os.close(follower)
    shown = b""
    try:
        proc.wait(timeout=60)
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        proc.kill()
        os.close(leader)
    text = shown.decode(errors="replace")
    assert "tracker_sdk reductions" in text and "pca of 'slow'" in text and "0/1" in text
    assert "tracker reduce " in text  # the timeout still names the command that finishes the work
    assert "ended: 1 embeddings, 0 projections" in text and "view with: tracker-server --root" in text  # end()'s line


NO_END_WORKER = """
import sys
import numpy as np
from tracker_sdk import Experiment
from tracker_sdk.reduce import get_reducer
X = np.random.default_rng(0).normal(size=(300, 20)).astype(np.float32)
exp = Experiment(project_name="noend", url=sys.argv[1])
exp.log_embedding(X, [i % 3 for i in range(300)], reduce=get_reducer("pacmap", num_iters=60, random_state=0))
print(exp.run_dir, flush=True)
"""


def test_a_script_without_end_gets_its_worker_reductions_too(tmp_path):
    run_dir, stderr = run_script(NO_END_WORKER, tmp_path)
    assert "could not" not in stderr and "failed" not in stderr, stderr
    run = open_run(run_dir)
    assert run.status == "finished" and [r.method for r in run.embeddings[0].reductions] == ["pacmap"]
