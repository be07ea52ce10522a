"""Benchmark: the embedding-dynamics measures of a synthetic training run, 20 steps x 10k x 128 float32.

    .venv/bin/python benchmarks/dynamics.py                         # 20 x 10k x 128, growth at 50k and 100k
    .venv/bin/python benchmarks/dynamics.py --growth ""             # the 10k case alone
    .venv/bin/python benchmarks/dynamics.py --quick                 # 5 steps x 2k, no growth

Each step holds the same rows (50 classes drifting apart over the steps); a 2-D PCA of each
step stands in for the layout. The timed call is what a group analysis costs: per step the
k-NN graph of the vectors and of the layout, per-point trustworthiness and continuity, the
class separation and exact silhouette (the vectors' graph, ranks and class distance sums come
from one pass over the distance rows); the k-NN Jaccard of consecutive steps; the step x step
CKA matrix (``step_dynamics``); then the Procrustes alignment of the layouts with their
stability (``align_steps``). A breakdown times the pieces of one step on one thread, as
``step_dynamics`` runs them (steps side by side, one per core). The growth cases run
fewer steps (stated) and compare the cost per step. Each case runs once by default (``--repeat``
for more; no warm-up: nothing is compiled) and records its CPU seconds next to the wall time,
as the machine is shared and CPU seconds tell the cost apart from waiting.
"""

from __future__ import annotations

import time

import numpy as np
from _harness import Bench, Candidate, Target

#: the stated goal for the 20 steps x 10k x 128 case
TARGET_S = 30.0


def make_run(n: int, dim: int, steps: int, seed: int = 0) -> tuple[list, np.ndarray]:
    """Steps of one training run: fixed per-sample offsets, class centres that separate over time."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 50, n)
    centres = rng.standard_normal((50, dim)).astype(np.float32)
    offsets = rng.standard_normal((n, dim)).astype(np.float32)
    run = []
    for s in range(steps):
        noise = 0.1 * rng.standard_normal((n, dim), dtype=np.float32)
        run.append(centres[labels] * np.float32(0.3 + 2.0 * s / max(steps - 1, 1)) + offsets + noise)
    return run, labels


def pca_2d(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    return centred @ vectors[:, -2:]


def run_case(bench: Bench, n: int, dim: int, steps: int, k: int, breakdown: bool, target: bool) -> dict:
    from tracker_sdk.analysis import dynamics
    from tracker_sdk.analysis.neighbors import knn_graph

    run, labels = make_run(n, dim, steps)
    layouts = [pca_2d(x) for x in run]  # not timed: the layout is given
    outcome = {}
    cpu = []

    def analyse():
        start = time.process_time()
        outcome["result"] = dynamics.step_dynamics(run, k, labels=labels, layouts=layouts, quiet=True)
        outcome["aligned"] = dynamics.align_steps(layouts)
        cpu.append(time.process_time() - start)

    name = "step_dynamics + align_steps"
    case = bench.compare(f"{steps} steps x {n:,} x {dim}", {name: Candidate(analyse)}, baseline=name,
                         target=Target(name, seconds=TARGET_S) if target else None, warmup=0)
    result, aligned = outcome["result"], outcome["aligned"]
    median = case["candidates"][name]["median"]
    case["extra"].update({
        "per_step_s": round(median / steps, 3), "cpu_s": round(float(np.median(cpu)), 2),
        "exact": bool(result.trust[0].exact),
        "trustworthiness_first_last": [round(result.trust[0].trustworthiness, 4),
                                       round(result.trust[-1].trustworthiness, 4)],
        "cka_first_last": round(float(result.cka[0, -1]), 4),
        "mean_stability": round(float(np.nanmean(aligned.stability)), 4),
    })
    print(f"  per step {median / steps:.2f} s wall, CPU {np.median(cpu):.1f} s in all", flush=True)
    if breakdown:  # one step as step_dynamics runs it: one thread, BLAS included
        x, y = run[-1], layouts[-1]
        z = dynamics._for_ranks(x, "euclidean")
        codes, _, names = dynamics._label_codes(list(labels))
        one_hot = dynamics._one_hot(codes, len(names))
        phases = {}

        def timed(label, fn):
            start = time.perf_counter()
            value = fn()
            phases[label] = round(time.perf_counter() - start, 3)
            return value

        with dynamics.one_blas_thread():
            graph_y = timed("knn_graph layout (KD-tree)", lambda: knn_graph(y, k))
            _, graph_x, sums = timed("vectors' graph + trust/continuity ranks + class distance sums",
                                     lambda: dynamics._trust(z, y, k, "auto", None, graph_y, 0, 1, one_hot))
            timed("separation + silhouette from the sums",
                  lambda: dynamics._separation(z.astype(np.float64), list(labels), sums=sums))
            other = timed("knn_graph vectors alone (a step without layout)", lambda: knn_graph(run[-2], k)[0])
            timed("knn_jaccard of two graphs", lambda: dynamics.graph_jaccard(graph_x, other))
            timed(f"cka_matrix {steps} x {steps}", lambda: dynamics.cka_matrix(run))
        bench.note(f"one step of {n:,} x {dim}, one thread, wall s", phases)
        for label, value in phases.items():
            print(f"    {label}: {value:.2f} s", flush=True)
    return case


def main() -> None:
    bench = Bench("dynamics", __doc__)
    bench.parser.set_defaults(repeat=1)
    bench.parser.add_argument("--steps", type=int, default=None, help="steps (default 20; --quick 5)")
    bench.parser.add_argument("--n", type=int, default=None, help="rows per step (default 10000; --quick 2000)")
    bench.parser.add_argument("--dim", type=int, default=128)
    bench.parser.add_argument("--k", type=int, default=10)
    bench.parser.add_argument("--growth", default=None,
                              help="comma-separated n:steps cases (default 50000:2,100000:2; --quick none)")
    args = bench.parse()
    steps = args.steps or (5 if args.quick else 20)
    n = args.n or (2_000 if args.quick else 10_000)
    growth = args.growth if args.growth is not None else ("" if args.quick else "50000:2,100000:2")
    first = run_case(bench, n, args.dim, steps, args.k, breakdown=True,
                     target=(steps, n, args.dim) == (20, 10_000, 128))
    base = first["extra"]["per_step_s"]
    for item in filter(None, growth.split(",")):
        grown_n, grown_steps = (int(v) for v in item.split(":"))
        case = run_case(bench, grown_n, args.dim, grown_steps, args.k, breakdown=False, target=False)
        case["extra"]["per_step_vs_first"] = round(case["extra"]["per_step_s"] / base, 2)
        case["extra"]["n_squared_vs_first"] = round((grown_n / n) ** 2, 1)
    bench.save()


if __name__ == "__main__":
    main()
