"""Benchmark: log_embedding + end() until durable, against np.save + fsync of the same array.

Each case runs in a fresh child process so peak RSS is its own. Prints a markdown table.
Usage: python benchmarks/log_embedding.py [--quick] [--reduce default|none|METHOD]

Each case runs twice: with reduce=None (what it costs to make the vectors durable, the
target of the run format) and with the chosen reduce (default: log_embedding's default
3-D PCA and its quality scores, which end() waits for).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = [(10_000, 128), (10_000, 784), (100_000, 512)]


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_case(n: int, d: int, reduce: str) -> dict:
    import numpy as np

    from tracker_sdk import Experiment

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, d), dtype=np.float32)
    labels = [f"label-{i % 1000}" for i in range(n)]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        # baseline: np.save + fsync of the same array
        start = time.perf_counter()
        with open(tmp / "baseline.npy", "wb") as fh:
            np.save(fh, vectors)
            fh.flush()
            os.fsync(fh.fileno())
        baseline_s = time.perf_counter() - start
        (tmp / "baseline.npy").unlink()
        rss_before = _rss_mb()
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        kwargs = {} if reduce == "default" else {"reduce": None if reduce == "none" else reduce}
        start = time.perf_counter()
        exp = Experiment(project_name="bench", url=str(tmp / "runs"))
        exp.log_embedding(vectors, labels, title="bench", **kwargs)
        exp.end()
        elapsed = time.perf_counter() - start
        peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        disk = _dir_bytes(tmp / "runs")
        start = time.perf_counter()
        empty = Experiment(project_name="bench", url=str(tmp / "runs"))
        t_open = time.perf_counter()
        empty.end()
        empty_end = time.perf_counter() - t_open
    array_mb = vectors.nbytes / 2**20
    return {"n": n, "d": d, "seconds": elapsed, "baseline": baseline_s, "disk": disk, "array_mb": array_mb,
            "peak_over_baseline_mb": max(peak_after, rss_before) - rss_before if peak_after > peak_before else 0.0,
            "peak_rss_mb": peak_after, "empty_end_ms": empty_end * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="only the two small cases")
    parser.add_argument("--reduce", default="default", help="reduce= for log_embedding: default, none or a method")
    args = parser.parse_args()
    if args.case:
        n, d = map(int, args.case.split("x"))
        print(json.dumps(run_case(n, d, args.reduce)))
        return
    rows = []
    for n, d in CASES[:2] if args.quick else CASES:
        row = {}
        for mode in ("none", args.reduce):
            out = subprocess.run([sys.executable, __file__, "--case", f"{n}x{d}", "--reduce", mode],
                                 check=True, capture_output=True, text=True)
            row[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((row["none"], row[args.reduce]))
    print("log_embedding + end() until durable, string labels, one fresh process per case and mode\n")
    print(f"| n × d | durable s (reduce=None) | np.save+fsync s | ratio | MB on disk | peak RSS over baseline "
          f"| × array | end() s with reduce={args.reduce} | its peak RSS × array | empty end() ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r, full in rows:
        print(f"| {r['n']:,} × {r['d']} | {r['seconds']:.3f} | {r['baseline']:.3f} | {r['seconds'] / r['baseline']:.2f}× "
              f"| {r['disk'] / 2**20:.1f} | {r['peak_over_baseline_mb']:.1f} MB "
              f"| {r['peak_over_baseline_mb'] / r['array_mb']:.2f} | {full['seconds']:.3f} "
              f"| {full['peak_over_baseline_mb'] / full['array_mb']:.2f} | {r['empty_end_ms']:.1f} |")

if __name__ == "__main__":
    main()
