"""Seconds from ``end()`` to the reported error when the reduction worker fails.

Two real failures, no mocks: the worker cannot start (``sys.executable`` points to a missing
interpreter, so ``WorkerProcess`` raises ``OSError``), and the worker is SIGKILLed one second
into ``end()``'s wait, in the middle of a job (what the OOM killer does).

    python benchmarks/reduce_failures.py [--keep-warm 0|60] [--repeat 3]

``--keep-warm 0`` uses private workers, 60 the shared warm worker.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reduce"))


def cannot_start(root, X, labels) -> float:
    from tracker_sdk import Experiment
    from tracker_sdk.reduce import get_reducer

    real = sys.executable
    sys.executable = os.path.join(root, "missing-python")
    try:
        exp = Experiment(project_name="failures", url=root)
        exp.log_embedding(X, labels, reduce=get_reducer("pacmap"), reduce_background=True)
        start = time.monotonic()
        exp.end()
        seconds = time.monotonic() - start
    finally:
        sys.executable = real
    assert exp._reduction_session.failures, "the failure was not reported"
    return seconds


def killed_mid_job(root, X, labels) -> float:
    from reduce_helpers import SlowReducer

    from tracker_sdk import Experiment

    exp = Experiment(project_name="failures", url=root)
    exp.log_embedding(X, labels, reduce=SlowReducer(), reduce_background=True)
    executor = exp._reduction_session.process
    while executor.running() is None or executor.worker_pid is None:
        time.sleep(0.01)
    threading.Timer(1.0, os.kill, (executor.worker_pid, signal.SIGKILL)).start()
    start = time.monotonic()
    exp.end()
    assert exp._reduction_session.failures, "the failure was not reported"
    return time.monotonic() - start - 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-warm", default="0", help="TRACKER_REDUCE_KEEP_WARM for the run (0: private workers)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["TRACKER_REDUCE_KEEP_WARM"] = args.keep_warm
    from reduce_helpers import clusters

    X, labels = clusters()
    with tempfile.TemporaryDirectory() as root:
        for _ in range(args.repeat):
            a, b = cannot_start(root, X, labels), killed_mid_job(root, X, labels)
            print(f"keep_warm={args.keep_warm}: worker cannot start: end() returned after {a:.3f} s; "
                  f"worker killed mid-job: end() returned {b:.3f} s after the kill", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
