"""Time the analysis of one embedding: k-NN graph and scores for 100k x 512 float32 vectors.

Run: ``.venv/bin/python benchmarks/analysis.py [--n 100000] [--dim 512] [--k 10] [--approximate]``.
Prints the wall time of the exact graph (blocked matrix products), of the scores on top of it,
and a check of the graph against a brute-force search of a few rows.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--approximate", action="store_true", help="also time pynndescent on the same data")
    args = parser.parse_args()

    from tracker_sdk.analysis import exact_knn, knn_graph, label_disagreement, outlier_score, split_shift

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, args.dim)).astype(np.float32) * 3
    labels = rng.integers(0, 50, args.n)
    x = centres[labels] + rng.standard_normal((args.n, args.dim), dtype=np.float32)
    splits = np.where(rng.random(args.n) < 0.8, "train", "test").tolist()
    print(f"{args.n} x {args.dim} float32, k={args.k}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start")

    start, cpu = time.perf_counter(), time.process_time()
    idx, dist = knn_graph(x, args.k, method="exact")
    graph_s, graph_cpu = time.perf_counter() - start, time.process_time() - cpu
    # CPU seconds tell the cost apart from waiting on other processes of a shared machine.
    print(f"exact k-NN graph: {graph_s:.1f} s wall, {graph_cpu:.1f} s CPU (all threads)")

    rows = rng.choice(args.n, 200, replace=False)
    ref_idx, ref_dist = exact_knn(x, rows, args.k)
    print(f"check against per-query search on 200 rows: max distance difference {np.abs(dist[rows] - ref_dist).max():.2e}")

    start = time.perf_counter()
    outlier_score(idx, dist)
    outlier_score(idx, dist, method="lof")
    label_disagreement(idx, labels.tolist())
    comparison = split_shift(idx, splits)
    scores_s = time.perf_counter() - start
    print(f"scores on the graph (outlier knn + lof, label disagreement, split shift): {scores_s:.1f} s; "
          f"train/test summary {comparison.summary():.3f} (same distribution: about 0)")
    print(f"total (what tracker analyze spends computing): {graph_s + scores_s:.1f} s")

    if args.approximate:
        start = time.perf_counter()
        a_idx, _ = knn_graph(x, args.k, method="approximate")
        approx_s = time.perf_counter() - start
        recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(a_idx[rows], idx[rows])])
        print(f"approximate k-NN graph (pynndescent, incl. any numba compilation): {approx_s:.1f} s, "
              f"recall@{args.k} {recall:.3f}")
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
