"""Benchmark: PCAReducer's fitting math against scikit-learn's PCA in its best configuration.

``PCA(n_components=3)`` with scikit-learn's default solver (at these shapes its covariance
eigensolver, the fastest it has for tall data) and, for very wide data, its randomized
solver; interleaved in this one process with the order rotated, same repetitions on both
sides, float32 data of 10 Gaussian clusters. Explained-variance ratios are compared to the
default solver's.

    .venv/bin/python benchmarks/pca.py            # 10k x 512, 70k x 784, 100k x 2048
    .venv/bin/python benchmarks/pca.py --quick    # 10k x 512, 70k x 784
"""

from __future__ import annotations

import numpy as np

from _harness import Bench, Target


def clustered(n: int, d: int, k: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)).astype(np.float32) * 3.0
    return centres[rng.integers(0, k, size=n)] + rng.standard_normal((n, d), dtype=np.float32)


def main() -> None:
    bench = Bench("pca", __doc__)
    args = bench.parse()
    from sklearn.decomposition import PCA

    from tracker_sdk.reduce import PCAReducer

    cases = [(10_000, 512, "auto"), (70_000, 784, "auto")] + ([] if args.quick else [(100_000, 2048, "randomized")])
    for n, d, solver in cases:
        X = clustered(n, d)
        ours = PCAReducer(n_components=3)
        theirs = PCA(n_components=3, svd_solver=solver)
        reference = PCA(n_components=3).fit(X)
        ours.fit_transform(X)
        evr_diff = float(np.abs(ours.explained_variance_ratio_ - reference.explained_variance_ratio_).max())
        cosines = np.abs(np.sum(ours.components_.astype(np.float64) * reference.components_, axis=1))
        baseline = f"scikit-learn PCA(3, svd_solver={solver!r})"
        bench.compare(f"{n:,} x {d} float32, 3 components", {
            baseline: lambda: theirs.fit_transform(X),
            "PCAReducer(3)": lambda: ours.fit_transform(X),
        }, baseline=baseline, target=Target("PCAReducer(3)", speedup=1.2 if solver == "auto" else 1.0),
            solver_used=getattr(reference, "_fit_svd_solver", solver), evr_max_abs_diff=evr_diff,
            min_component_cosine=float(cosines.min()))

    bench.save()


if __name__ == "__main__":
    main()
