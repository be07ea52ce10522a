"""The one reduction executor: inline, thread and process behind submit(job) -> Future, and how
end() surfaces every way a reduction can fail (real processes, real signals, nothing mocked)."""

import logging
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

from reduce_helpers import KilledReducer, RaisingReducer, SlowReducer, clusters
from tracker_sdk import Experiment, InvalidArgumentError, open_run
from tracker_sdk.errors import ReductionFailedError
from tracker_sdk.reduce import PCAReducer, get_reducer
from tracker_sdk.reduce import session as session_module
from tracker_sdk.reduce.executor import InlineExecutor, ProcessExecutor, ThreadExecutor
from tracker_sdk.reduce.tasks import EmbeddingJob, JobResult
from tracker_sdk.runformat import blob_path, load_npy


def logged(runs_root, X, labels):
    """A run holding one embedding with no reduction yet: (experiment, handle)."""
    exp = Experiment(project_name="p", url=str(runs_root))
    return exp, exp.log_embedding(X, labels, reduce=None)


def job_for(exp, handle, reducer, labels=None):
    sha = open_run(exp.run_dir).embedding(handle.id).record.vectors.sha256
    return EmbeddingJob(run_dir=str(exp.run_dir.absolute()), embedding_id=handle.id, step=handle.step,
                        vectors_sha=sha, labels=labels, reducer=reducer, label=f"{reducer.method} of test")


@pytest.mark.parametrize("make", [InlineExecutor, ThreadExecutor, lambda: ProcessExecutor(keep_warm=0)],
                         ids=["inline", "thread", "process"])
def test_every_executor_returns_a_future_of_the_same_result(runs_root, make):
    X, labels = clusters(d=12)
    exp, handle = logged(runs_root, X, labels)
    executor = make()
    try:
        good = executor.submit(job_for(exp, handle, PCAReducer(n_components=2), labels)).result(timeout=120)
        with pytest.raises(ReductionFailedError, match="MemoryError: pretend the projection ran out of memory"):
            executor.submit(job_for(exp, handle, RaisingReducer())).result(timeout=120)
    finally:
        executor.shutdown()
        exp.end()
    assert isinstance(good, JobResult) and len(good.payloads) == 1
    coords = load_npy(blob_path(exp.run_dir, good.payloads[0].coords.sha256))
    assert np.allclose(coords, PCAReducer(n_components=2).fit_transform(X), atol=1e-4)


def test_a_worker_that_cannot_start_fails_each_job_at_once(runs_root, monkeypatch, caplog):
    monkeypatch.setenv("TRACKER_REDUCE_KEEP_WARM", "0")
    monkeypatch.setattr(sys, "executable", str(runs_root / "no-such-python"))  # Popen raises OSError for real
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root))
    with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
        exp.log_embedding(X, labels, reduce=get_reducer("pacmap", num_iters=60), reduce_background=True)
        start = time.monotonic()
        exp.end()
        seconds = time.monotonic() - start
    assert seconds < 5
    assert "reduction pacmap of 'Embedding' failed: the reduction worker process could not start " \
           "(FileNotFoundError" in caplog.text
    assert "1 reduction(s) failed" in caplog.text
    run = open_run(exp.run_dir)
    assert run.status == "finished" and np.array_equal(run.embeddings[0].vectors, X)


@pytest.mark.parametrize("keep_warm", ["0", "60"], ids=["private", "shared"])
def test_an_out_of_memory_kill_is_reported_and_the_next_job_runs(runs_root, monkeypatch, caplog, keep_warm):
    monkeypatch.setenv("TRACKER_REDUCE_KEEP_WARM", keep_warm)
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root))
    with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
        exp.log_embedding(X, labels, reduce=[KilledReducer(), "pca"], reduce_background=True)
        exp.end()
    expected = "died (killed by signal 9) (out of memory?)" if keep_warm == "0" else \
        "died during the job (a crash, or out of memory?)"
    assert expected in caplog.text
    (emb,) = open_run(exp.run_dir).embeddings
    assert [r.method for r in emb.reductions] == ["pca"] and np.array_equal(emb.vectors, X)
    if keep_warm == "60":
        from tracker_sdk.reduce.shared_worker import stop_workers
        stop_workers()


def test_a_worker_killed_mid_job_during_end_is_reported_within_seconds(runs_root, monkeypatch, caplog):
    monkeypatch.setenv("TRACKER_REDUCE_KEEP_WARM", "0")
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root))
    exp.log_embedding(X, labels, title="slow", reduce=SlowReducer(), reduce_background=True)
    process = exp._reduction_session.process
    deadline = time.monotonic() + 60
    while (process.running() is None or process.worker_pid is None) and time.monotonic() < deadline:
        time.sleep(0.02)
    killer = threading.Timer(1.0, os.kill, (process.worker_pid, signal.SIGKILL))
    killer.start()
    with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
        start = time.monotonic()
        exp.end()
        seconds = time.monotonic() - start
    assert seconds < 1.0 + 5
    assert "reduction pca of 'slow' failed: the reduction worker process died (killed by signal 9)" in caplog.text
    assert open_run(exp.run_dir).status == "finished"


def test_end_stops_waiting_for_a_job_that_makes_no_progress(runs_root, monkeypatch, caplog):
    monkeypatch.setenv("TRACKER_REDUCE_KEEP_WARM", "0")
    monkeypatch.setattr(session_module, "STALL_SECONDS", 1.5)
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root))
    exp.log_embedding(X, labels, title="stuck", reduce=SlowReducer(), reduce_background=True)  # sleeps: no CPU
    with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
        start = time.monotonic()
        exp.end()
        seconds = time.monotonic() - start
    assert seconds < 15
    assert "pca of 'stuck' made no progress (no CPU time used) for 1.5 s; its worker was stopped" in caplog.text
    assert open_run(exp.run_dir).status == "finished"


def test_end_timeout_bounds_the_wait_and_names_the_command_that_finishes_it(runs_root, monkeypatch, caplog, capsys):
    monkeypatch.setenv("TRACKER_REDUCE_KEEP_WARM", "0")
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root), end_timeout=1.0)
    handle = exp.log_embedding(X, labels, title="slow", reduce=SlowReducer(n_components=2), reduce_background=True)
    with caplog.at_level(logging.INFO, logger="tracker_sdk"):
        start = time.monotonic()
        exp.end()
        seconds = time.monotonic() - start
    assert seconds < 1.0 + 5
    command = f"tracker reduce {exp.run_dir.absolute()} --embedding {handle.id} --method pca --n-components 2"
    assert command in capsys.readouterr().err and command in caplog.text
    assert "end_timeout=1.0 s passed before this reduction finished" in caplog.text
    run = open_run(exp.run_dir)
    assert run.status == "finished" and run.embeddings[0].reductions == []
    from tracker_sdk.cli import main as cli
    assert cli(command.split()[1:]) == 0  # the printed command does the work later
    (red,) = open_run(exp.run_dir).embeddings[0].reductions
    assert red.method == "pca" and red.n_components == 2


def test_a_fitted_state_is_adopted_only_from_the_same_kind_of_reducer():
    X, _ = clusters(d=8)
    fitted = PCAReducer(n_components=2).fit(X)
    mine = PCAReducer(n_components=2)
    assert mine.adopt_fitted(fitted) is mine and np.array_equal(mine.transform(X), fitted.transform(X))
    with pytest.raises(InvalidArgumentError, match="fitted must be a fitted PCAReducer; got an unfitted PCAReducer"):
        PCAReducer(n_components=2).adopt_fitted(PCAReducer(n_components=2))
    with pytest.raises(InvalidArgumentError, match="fitted has parameters .*'n_components': 2.* but this reducer has"):
        PCAReducer(n_components=3).adopt_fitted(fitted)


def test_the_background_fit_reaches_the_callers_instance_on_the_callers_thread(runs_root, monkeypatch):
    monkeypatch.setenv("TRACKER_REDUCE_KEEP_WARM", "0")
    X, labels = clusters()
    reducer = get_reducer("pca", n_components=2)
    exp = Experiment(project_name="p", url=str(runs_root))
    exp.log_embedding(X, labels, reduce=reducer, reduce_background=True)
    assert all(item.stored.wait(120) for item in exp._reduction_session.submitted)
    assert not reducer.is_fitted  # the worker finished, but nothing touched the caller's object meanwhile
    exp.log_embedding(X + 1, labels, reduce=None)  # the caller's next call adopts it
    assert reducer.is_fitted and np.allclose(reducer.embedding_, open_run(exp.run_dir).embeddings[0].reductions[0].coords,
                                             atol=1e-5)
    exp.end()
