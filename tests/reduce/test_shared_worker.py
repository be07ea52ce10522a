"""The shared warm worker: real processes, a real Unix socket, real reductions."""

import json
import logging
import os
import stat
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from reduce_helpers import FAST, ExitingReducer, RaisingReducer, clusters
from test_reduce_timeline import drifting, log_group

from tracker_sdk import Experiment
from tracker_sdk.cli import main as cli
from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.reduce import get_reducer
from tracker_sdk.reduce.shared_worker import (KEEP_WARM_ENV, SharedWorker, attach, environment_key, list_workers,
                                              socket_path, stop_workers, worker_dir)
from tracker_sdk.runformat import open_run

SCRIPT = """
import json, sys
import numpy as np
from tracker_sdk import Experiment
from tracker_sdk.cli import main as cli
from tracker_sdk.reduce import get_reducer
rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(size=(60, 16)) + 8 * i for i in range(3)]).astype(np.float32)
exp = Experiment(project_name="p", url=sys.argv[1])
exp.log_embedding(X, [i // 60 for i in range(180)], reduce=get_reducer("pacmap", num_iters=60, random_state=0))
executor = exp._reduction_session.process
exp.end()
print(json.dumps({"pid": executor.worker_pid, "failures": exp._reduction_session.failures,
                  "run_dir": str(exp.run_dir)}))
"""


def run_script(root, keep_warm="60"):
    env = dict(os.environ, **{KEEP_WARM_ENV: keep_warm})
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failures"] == []
    (emb,) = open_run(result["run_dir"]).embeddings
    assert [r.method for r in emb.reductions] == ["pacmap"]
    return result


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def stop_all():
    for status in stop_workers():
        assert wait_until(lambda: not alive(status["pid"]), timeout=60)


@pytest.fixture(autouse=True)
def _no_workers_left():
    stop_all()
    yield
    stop_all()


def test_a_second_process_reuses_the_warm_shared_worker(runs_root):
    first = run_script(runs_root)
    assert alive(first["pid"])  # outlived the script that started it
    with open(f"/proc/{first['pid']}/stat") as fh:
        assert int(fh.read().rsplit(")", 1)[1].split()[1]) != os.getpid()  # detached, not our child
    second = run_script(runs_root)
    assert second["pid"] == first["pid"]
    (status,) = [w for w in list_workers() if w["pid"] == first["pid"]]
    assert status["clients_served"] == 2 and not status["busy"] and status["libraries"] == ["pacmap"]
    assert [w["pid"] for w in stop_workers()] == [first["pid"]]
    assert wait_until(lambda: not alive(first["pid"]))
    assert not list(worker_dir().glob("*.sock"))


def test_an_idle_shared_worker_exits_and_removes_its_socket(runs_root):
    result = run_script(runs_root, keep_warm="1")
    assert wait_until(lambda: not alive(result["pid"]))
    assert not list(worker_dir().glob("*.sock"))


def test_a_busy_shared_worker_sends_the_next_client_to_a_private_worker(runs_root, monkeypatch):
    monkeypatch.setenv(KEEP_WARM_ENV, "60")
    holder = attach()
    assert isinstance(holder, SharedWorker)
    try:
        X, labels = clusters()
        exp = Experiment(project_name="p", url=str(runs_root))
        exp.log_embedding(X, labels, reduce=get_reducer("pacmap", **FAST["pacmap"]))
        executor = exp._reduction_session.process
        exp.end()
        assert executor.worker_pid not in (None, holder.pid)
        (emb,) = open_run(exp.run_dir).embeddings
        assert [r.method for r in emb.reductions] == ["pacmap"]
    finally:
        holder.close()
    assert alive(holder.pid)  # a goodbye leaves it warm for the next client


def test_keep_warm_zero_uses_a_private_child_and_no_socket(runs_root, monkeypatch):
    monkeypatch.setenv(KEEP_WARM_ENV, "0")
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root))
    exp.log_embedding(X, labels, reduce=get_reducer("pacmap", **FAST["pacmap"]))
    assert exp._reduction_session.wait(60)
    executor = exp._reduction_session.process
    assert executor.worker_pid is not None and not executor.uses_shared_worker
    exp.end()
    assert not list(worker_dir().glob("*.sock"))


@pytest.mark.parametrize("value", ["soon", "-5", "nan"])
def test_a_bad_keep_warm_is_refused_before_anything_is_written(runs_root, monkeypatch, value):
    monkeypatch.setenv(KEEP_WARM_ENV, value)
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root))
    with pytest.raises(InvalidArgumentError, match=f"{KEEP_WARM_ENV} must be a number of seconds >= 0.*{value}"):
        exp.log_embedding(X, labels, reduce="pacmap")
    exp.end()
    assert open_run(exp.run_dir).embeddings == []


def test_a_crash_in_the_shared_worker_is_reported_and_the_next_job_gets_a_new_one(runs_root, monkeypatch, caplog):
    monkeypatch.setenv(KEEP_WARM_ENV, "60")
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root))
    with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
        exp.log_embedding(X, labels, title="a", reduce=[ExitingReducer(), RaisingReducer(), "pca"],
                          reduce_background=True)
        exp.end()
    assert "reduction pca of 'a' failed: the shared reduction worker process (pid" in caplog.text
    assert "died during the job (a crash, or out of memory?)" in caplog.text
    assert "MemoryError: pretend the projection ran out of memory" in caplog.text
    (emb,) = open_run(exp.run_dir).embeddings
    assert [r.method for r in emb.reductions] == ["pca"]  # served by a new shared worker
    assert np.array_equal(emb.vectors, X)
    assert len(list_workers()) == 1


def test_the_socket_directory_and_socket_are_private(monkeypatch, tmp_path):
    monkeypatch.setenv(KEEP_WARM_ENV, "60")
    worker = attach()
    assert isinstance(worker, SharedWorker)
    worker.close()
    assert stat.S_IMODE(os.stat(worker_dir()).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(socket_path()).st_mode) == 0o600
    # a runtime directory others can enter is not used; the private fallback under TMPDIR is
    shared = tmp_path / "runtime"
    (shared / "tracker_sdk").mkdir(parents=True)
    os.chmod(shared / "tracker_sdk", 0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert worker_dir() == tmp_path / "tmp" / f"tracker_sdk-{os.getuid()}"
    os.chmod(worker_dir(), 0o755)  # and when that one is not private either: a private worker, no socket
    assert attach() is None


def test_the_environment_key_separates_settings_but_not_import_paths(monkeypatch):
    key = environment_key()
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    assert environment_key() != key
    monkeypatch.delenv("NUMBA_NUM_THREADS")
    monkeypatch.syspath_prepend("/some/other/project")  # scripts in other directories share the worker
    assert environment_key() == key


def test_tracker_worker_lists_and_stops_the_workers(monkeypatch):
    monkeypatch.setenv(KEEP_WARM_ENV, "60")
    worker = attach(warm=["pacmap"])
    worker.close()
    assert wait_until(lambda: not list_workers()[0]["busy"])  # done importing pacmap for us
    listed = subprocess.run([sys.executable, "-m", "tracker_sdk.cli", "worker"], capture_output=True, text=True,
                            timeout=60, check=True).stdout
    assert f"pid {worker.pid}  idle" in listed and "of 60" in listed
    status = subprocess.run([sys.executable, "-m", "tracker_sdk.cli", "worker", "status"], capture_output=True,
                            text=True, timeout=60, check=True).stdout
    assert f"pid {worker.pid}  idle" in status and "of 60" in status  # `tracker worker` bare is this
    stopped = subprocess.run([sys.executable, "-m", "tracker_sdk.cli", "worker", "stop"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    assert f"pid {worker.pid}  stopping" in stopped
    assert wait_until(lambda: not alive(worker.pid))
    none = subprocess.run([sys.executable, "-m", "tracker_sdk.cli", "worker"], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    assert none.startswith("no shared reduction worker is running")


ABANDONING_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[2])
from reduce_helpers import SlowReducer, clusters
from tracker_sdk import Experiment
X, labels = clusters()
exp = Experiment(project_name="p", url=sys.argv[1])
exp.log_embedding(X, labels, reduce=SlowReducer(), reduce_background=True)
while exp._reduction_session.process.worker_pid is None:
    time.sleep(0.01)
print(exp._reduction_session.process.worker_pid, flush=True)
time.sleep(120)
"""


def test_a_client_killed_mid_job_takes_the_shared_worker_down_with_it(runs_root):
    env = dict(os.environ, **{KEEP_WARM_ENV: "60"})
    client = subprocess.Popen([sys.executable, "-c", ABANDONING_SCRIPT, str(runs_root), os.path.dirname(__file__)],
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(client.stdout.readline())
        assert alive(pid)
        time.sleep(1.0)  # the slow job is running now
        client.kill()
        client.wait()
        # nobody will read the result: the worker does not sit out the job (60 s), it exits
        assert wait_until(lambda: not alive(pid), timeout=10)
    finally:
        client.kill()
        client.stdout.close()
    # the leader thread shows as a zombie while the process's other threads still hold its files
    # (the lock among them) for a moment: the lock is free once the last thread is gone
    assert wait_until(lambda: pid not in [w["pid"] for w in list_workers()], timeout=10)


def test_tracker_reduce_runs_in_the_shared_worker_and_a_second_call_finds_it_warm(runs_root, monkeypatch, caplog):
    monkeypatch.setenv(KEEP_WARM_ENV, "60")
    steps, labels = drifting(steps=3)
    exp = log_group(runs_root, steps, labels)
    exp.end()
    pids = []
    for method_params in (["--random-state", "0"], ["--random-state", "1"]):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="tracker_sdk"):
            assert cli(["reduce", str(exp.run_dir), "--group", "g", "--method", "pacmap", "--param", "num_iters=60",
                        *method_params]) == 0
        (line,) = [r.getMessage() for r in caplog.records if "shared reduction worker" in r.getMessage()]
        pids.append(int(line.rsplit("pid ", 1)[1].rstrip(")")))
    assert pids[0] == pids[1]
    timelines = {}
    for emb in open_run(exp.run_dir).embeddings:
        for red in emb.reductions:
            timelines.setdefault(red.timeline, []).append(red)
    assert sorted(len(v) for v in timelines.values()) == [3, 3]


def test_a_socket_path_too_long_for_unix_sockets_means_a_private_worker_at_once(monkeypatch, tmp_path):
    monkeypatch.setenv(KEEP_WARM_ENV, "60")
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    start = time.monotonic()
    assert attach() is None
    assert time.monotonic() - start < 5  # no wait for a worker that could never listen
    assert not list((deep / "tracker_sdk").glob("*.log"))


TRAIN = """
import sys
import numpy as np
from tracker_sdk import Experiment
from tracker_sdk.reduce import get_reducer
X = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
exp = Experiment(project_name="p", url=sys.argv[1])
exp.log_embedding(X, [i % 4 for i in range(200)], reduce=get_reducer("pca", n_components=2), reduce_background=True)
exp.end()
print(exp._reduction_session.process.worker_pid, exp._reduction_session.process.uses_shared_worker)
"""


def worker_processes() -> list[int]:
    """Live shared-worker processes of this test session, found by their command line (not by asking them)."""
    runtime = os.environ["XDG_RUNTIME_DIR"]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "tracker_sdk.reduce.shared_worker" in argv and any(a.startswith(runtime) for a in argv) and alive(int(entry)):
            found.append(int(entry))
    return found


def test_three_scripts_in_a_row_leave_one_worker_and_none_after_the_idle_time(tmp_path):
    env = dict(os.environ, **{KEEP_WARM_ENV: "3"})
    pids = []
    for i in range(3):  # three projects in three directories: one Python environment, so one worker
        project = tmp_path / f"project{i}"
        project.mkdir()
        (project / "train.py").write_text(TRAIN)
        out = subprocess.run([sys.executable, "train.py", str(tmp_path / "runs")], cwd=project, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        pid, shared = out.stdout.split()
        assert shared == "True"
        pids.append(int(pid))
        assert len(worker_processes()) <= 1 and len(list_workers()) <= 1
    assert worker_processes() == [pids[-1]]
    (status,) = list_workers()
    assert status["pid"] == pids[-1] and status["keep_warm_s"] == 3
    assert wait_until(lambda: not worker_processes(), timeout=3 + 7)  # gone soon after the idle time
    assert wait_until(lambda: list_workers() == [], timeout=5) and not list(worker_dir().glob("*.sock"))
