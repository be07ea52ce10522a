"""Benchmark: the exact k-NN graph behind ``tracker analyze`` against scikit-learn's brute force.

``knn_graph(x, k, method="exact")`` (blocked matrix products) and
``NearestNeighbors(n_neighbors=k + 1, algorithm="brute", n_jobs=-1).kneighbors(x)`` (parallel
against parallel), interleaved with the order rotated, on 50 Gaussian clusters; the scores on
top of the graph (outliers, label disagreement, split shift) are timed on their own, and the
graph is checked against a per-query search of 200 rows.

    .venv/bin/python benchmarks/analysis.py                  # 100k x 512, k=10
    .venv/bin/python benchmarks/analysis.py --quick          # 20k x 512
    .venv/bin/python benchmarks/analysis.py --n 50000 --repeat 3 --approximate
"""

from __future__ import annotations

import numpy as np

from _harness import Bench


def main() -> None:
    bench = Bench("analysis", __doc__)
    bench.parser.add_argument("--n", type=int, default=None, help="rows (default 100000; --quick 20000)")
    bench.parser.add_argument("--dim", type=int, default=512)
    bench.parser.add_argument("--k", type=int, default=10)
    bench.parser.add_argument("--approximate", action="store_true", help="also time pynndescent on the same data")
    args = bench.parse()
    n = args.n or (20_000 if args.quick else 100_000)
    from sklearn.neighbors import NearestNeighbors

    from tracker_sdk.analysis import exact_knn, knn_graph, label_disagreement, outlier_score, split_shift

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, args.dim)).astype(np.float32) * 3
    labels = rng.integers(0, 50, n)
    x = centres[labels] + rng.standard_normal((n, args.dim), dtype=np.float32)
    splits = np.where(rng.random(n) < 0.8, "train", "test").tolist()
    graph = {}

    def ours():
        graph["idx"], graph["dist"] = knn_graph(x, args.k, method="exact")

    candidates = {
        "scikit-learn NearestNeighbors brute, n_jobs=-1":
            lambda: NearestNeighbors(n_neighbors=args.k + 1, algorithm="brute", n_jobs=-1).fit(x).kneighbors(x),
        "knn_graph exact": ours,
    }
    if args.approximate:
        candidates["knn_graph approximate (pynndescent)"] = lambda: knn_graph(x, args.k, method="approximate")
    rows = rng.choice(n, 200, replace=False)
    bench.compare(f"exact {args.k}-NN graph, {n:,} x {args.dim} float32", candidates,
                  baseline="scikit-learn NearestNeighbors brute, n_jobs=-1", warmup=0)
    idx, dist = graph["idx"], graph["dist"]
    _, ref_dist = exact_knn(x, rows, args.k)
    bench.note("max distance difference to a per-query search of 200 rows", float(np.abs(dist[rows] - ref_dist).max()))

    def scores():
        outlier_score(idx, dist)
        outlier_score(idx, dist, method="lof")
        label_disagreement(idx, labels.tolist())
        split_shift(idx, splits)

    bench.compare("scores on the graph (outlier knn + lof, label disagreement, split shift)",
                  {"scores": scores}, baseline="scores")
    bench.save()


if __name__ == "__main__":
    main()
