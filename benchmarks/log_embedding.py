"""Benchmark: log_embedding + end() until durable, against np.save + fsync of the same vectors;
and what log_embedding's default projection (3-D PCA) adds to it.

Durable path: both sides write into the same scratch directory (``BENCH_TMP``, default the
system temp dir), interleaved in this one process with the order rotated each round;
``reduce=None``, so what is timed is making the vectors and their labels durable (string
labels, one per row).

Default projection: ``log_embedding(vectors, labels)`` (default 3-D PCA) + ``end()`` against
``log_embedding(..., reduce=None)`` + ``end()``, each run in a fresh process (interleaved and
rotated by the same harness), timing only the two calls and reading the process's peak RSS
(``VmHWM``) above what it held just before them (the vectors and labels already built).
Targets from issue 14: time <= 2x the reduce=None time, RSS added <= 0.3x the array.

    .venv/bin/python benchmarks/log_embedding.py             # 10k x 128, 100k x 512, 1M x 128; projection at 100k x 512
    .venv/bin/python benchmarks/log_embedding.py --quick     # 10k x 128, 100k x 128; projection at 20k x 128
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from _harness import Bench, Candidate, Target

#: (n, d, target ratio to np.save + fsync) from issue 14
CASES = [(10_000, 128, 3.0), (100_000, 512, 1.3), (1_000_000, 128, 1.5)]
QUICK = [(10_000, 128, 3.0), (100_000, 128, None)]
#: (n, d) of the default-projection comparison, and its targets (issue 14, item 4)
PROJECTION, QUICK_PROJECTION = (100_000, 512), (20_000, 128)
TIME_RATIO, RSS_RATIO = 2.0, 0.3


def data(n: int, d: int):
    return np.random.default_rng(0).standard_normal((n, d), dtype=np.float32), [f"label-{i % 1000}" for i in range(n)]


def peak_rss() -> int:
    """This process's peak resident bytes: VmHWM (ru_maxrss would also count the parent's
    memory that the fork copied before exec)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child(mode: str, n: int, d: int, tmp: str) -> None:
    """In a fresh process: time log_embedding + end() and print seconds and peak RSS added (JSON)."""
    from tracker_sdk import Experiment

    vectors, labels = data(n, d)
    before = peak_rss()
    start = time.perf_counter()
    exp = Experiment(project_name="bench", url=os.path.join(tmp, "runs"))
    exp.log_embedding(vectors, labels, title="bench", **({} if mode == "default" else {"reduce": None}))
    exp.end()
    seconds = time.perf_counter() - start
    added = peak_rss() - before
    print(json.dumps({"seconds": seconds, "rss_added_bytes": added}))


def projection(bench: Bench, n: int, d: int, root: str, targets: bool) -> None:
    rss: dict[str, list[int]] = {"reduce=None": [], "default PCA": []}

    def run(mode, name):
        def fn(tmp):
            out = subprocess.run([sys.executable, __file__, "--child", mode, str(n), str(d), tmp],
                                 check=True, capture_output=True, text=True, env=dict(os.environ, TRACKER_QUIET="1"))
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rss[name].append(result["rss_added_bytes"])
            return result["seconds"]
        return Candidate(fn, lambda: tempfile.mkdtemp(dir=root), shutil.rmtree, reports_seconds=True)

    array_bytes = n * d * 4
    result = bench.compare(f"{n:,} x {d} + labels, log_embedding + end(): default 3-D PCA vs reduce=None",
                           {"reduce=None": run("none", "reduce=None"), "default PCA": run("default", "default PCA")},
                           baseline="reduce=None", target=Target("default PCA", ratio=TIME_RATIO) if targets else None, n=n, d=d,
                           array_mb=round(array_bytes / 2**20, 1))
    for name, values in rss.items():
        timed = values[-result["repeat"]:]  # the warm-up run is left out, as for the times
        ratios = [v / array_bytes for v in timed]
        result["extra"][f"{name} peak RSS added / array"] = (
            f"median {statistics.median(ratios):.2f}x ({min(ratios):.2f}..{max(ratios):.2f}; "
            f"{statistics.median(timed) / 2**20:.0f} MiB)")
    added = statistics.median(rss["default PCA"][-result["repeat"]:]) / array_bytes
    if targets:
        result["extra"]["RSS target"] = f"default PCA adds <= {RSS_RATIO:g}x the array: {'met' if added <= RSS_RATIO else 'NOT met'}"
    print("  peak RSS: " + "; ".join(f"{k}: {v}" for k, v in result["extra"].items() if "RSS" in k))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    bench = Bench("log_embedding", __doc__)
    bench.parser.add_argument("--sizes", nargs="*", help="NxD cases instead of the defaults, e.g. 100000x512")
    bench.parser.add_argument("--no-projection", action="store_true", help="skip the default-projection comparison")
    args = bench.parse()
    from tracker_sdk import Experiment

    cases = [tuple(map(int, s.split("x"))) + (None,) for s in args.sizes] if args.sizes else QUICK if args.quick else CASES
    root = tempfile.mkdtemp(prefix="bench-log-", dir=os.environ.get("BENCH_TMP"))
    try:
        for n, d, target in cases:
            vectors, labels = data(n, d)

            def scratch():
                return tempfile.mkdtemp(dir=root)

            def np_save(tmp):
                with open(os.path.join(tmp, "x.npy"), "wb") as fh:
                    np.save(fh, vectors)
                    fh.flush()
                    os.fsync(fh.fileno())

            def log(tmp):
                exp = Experiment(project_name="bench", url=os.path.join(tmp, "runs"))
                exp.log_embedding(vectors, labels, title="bench", reduce=None)
                exp.end()

            bench.compare(f"{n:,} x {d} + {n:,} string labels", {
                "np.save+fsync": Candidate(np_save, scratch, shutil.rmtree),
                "log_embedding": Candidate(log, scratch, shutil.rmtree),
            }, baseline="np.save+fsync", target=Target("log_embedding", ratio=target) if target else None,
                n=n, d=d, array_mb=round(vectors.nbytes / 2**20, 1))
        if not args.no_projection:
            projection(bench, *(QUICK_PROJECTION if args.quick else PROJECTION), root, targets=not args.quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    bench.save()


if __name__ == "__main__":
    main()
