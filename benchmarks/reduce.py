"""Reducer speed and quality against the raw libraries, called directly in this same script.

For every dataset and method it prints wall seconds of the raw library (warm) and of the SDK
reducer doing the same work (warm), their ratio, trustworthiness (k=10, 5,000-point sample)
and 10-NN label accuracy in the projection. ``--cold`` adds, per method, a fresh Python
process with an empty numba cache (cold) and a second fresh process reusing that cache.

    .venv/bin/python benchmarks/reduce.py                       # digits + 10k x 512, all methods
    .venv/bin/python benchmarks/reduce.py --sizes 10000x512 70000x784 --methods pca pacmap --cold
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tracker_sdk.reduce import get_reducer, projection_quality  # noqa: E402

SEED = 0


def clustered(n: int, d: int, k: int = 10, seed: int = SEED):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3.0
    labels = rng.integers(0, k, size=n)
    return (centres[labels] + rng.normal(size=(n, d))).astype(np.float32), labels.tolist()


def dataset(name: str):
    if name == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        return data.data.astype(np.float32), data.target.tolist()
    n, d = (int(v) for v in name.split("x"))
    return clustered(n, d)


def raw_call(method: str, X, n_components: int):
    """The library called directly, as a user would without the SDK."""
    if method == "pca":
        from sklearn.decomposition import PCA

        model = PCA(n_components=n_components, svd_solver="full")
        return model.fit_transform(X), model
    if method == "umap":
        import umap

        return umap.UMAP(n_components=n_components, random_state=SEED).fit_transform(X), None
    if method == "pacmap":
        import pacmap

        return pacmap.PaCMAP(n_components=n_components, random_state=SEED).fit_transform(X, init="pca"), None
    if method == "tsne":
        import openTSNE

        gradient = "fft" if n_components == 2 and len(X) >= 10_000 else "bh"
        return np.asarray(openTSNE.TSNE(n_components=n_components, random_state=SEED, n_jobs=1,
                                        negative_gradient_method=gradient).fit(X)), None
    raise ValueError(method)


def sdk_params(method: str) -> dict:
    # the same work as raw_call: no extra pre-reduction, library defaults
    params = {"random_state": SEED}
    if method != "pca":
        params["pca_components"] = None
    if method == "tsne":
        params.update(n_iter=500, early_exaggeration_iter=250)
    return params


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


COLD_SNIPPET = """
import sys, time, json, numpy as np
start = time.perf_counter()
from tracker_sdk.reduce import get_reducer
X = np.load(sys.argv[1])
get_reducer(sys.argv[2], n_components=int(sys.argv[3]), **json.loads(sys.argv[4])).fit(X)
print(time.perf_counter() - start)
"""


def fresh_process(method, path, n_components, cache_dir) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", COLD_SNIPPET, path, method, str(n_components),
                          json.dumps(sdk_params(method))], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=["digits", "10000x512"])
    parser.add_argument("--methods", nargs="*", default=["pca", "pacmap", "umap", "tsne"])
    parser.add_argument("--n-components", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="warm timings: best of this many runs")
    parser.add_argument("--cold", action="store_true", help="also time fresh processes (cold and second)")
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes:
        X, labels = dataset(size)
        warm_x = X[:500]
        for method in args.methods:
            nc = 3 if method == "pca" else args.n_components
            raw_call(method, warm_x, nc)  # compile/import once: the warm columns exclude it
            get_reducer(method, n_components=nc, **sdk_params(method)).fit(warm_x)
            raw_s, sdk_s = float("inf"), float("inf")
            for _ in range(args.repeat):  # alternate, so machine load hits both alike
                seconds, (raw_y, raw_model) = timed(lambda: raw_call(method, X, nc))
                raw_s = min(raw_s, seconds)
                reducer = get_reducer(method, n_components=nc, **sdk_params(method))
                seconds, sdk_y = timed(lambda: reducer.fit_transform(X))
                sdk_s = min(sdk_s, seconds)
            q = projection_quality(X, sdk_y, labels)
            row = {"data": f"{size} ({len(X)}x{X.shape[1]})", "method": f"{method} {nc}d", "raw_warm_s": raw_s,
                   "sdk_warm_s": sdk_s, "sdk/raw": sdk_s / raw_s, "trust": q["trustworthiness"],
                   "knn_acc": q["knn_label_accuracy"],
                   "raw_trust": projection_quality(X, raw_y, labels)["trustworthiness"]}
            if method == "pca":
                row["evr_diff"] = float(np.abs(reducer.explained_variance_ratio_ - raw_model.explained_variance_ratio_).max())
            if args.cold:
                with tempfile.TemporaryDirectory() as tmp:
                    path = os.path.join(tmp, "x.npy")
                    np.save(path, X)
                    cache = os.path.join(tmp, "numba")
                    row["cold_s"] = fresh_process(method, path, nc, cache)
                    row["second_s"] = fresh_process(method, path, nc, cache)
                    row["second/warm"] = row["second_s"] / sdk_s
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = ["data", "method", "raw_warm_s", "sdk_warm_s", "sdk/raw", "trust", "raw_trust", "knn_acc"]
    if args.cold:
        cols += ["cold_s", "second_s", "second/warm"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:.3g}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in cols) + " |")
    for row in rows:
        if "evr_diff" in row:
            print(f"PCA {row['data']}: {1 / row['sdk/raw']:.1f}x faster than scikit-learn's full SVD, "
                  f"explained variance ratios within {row['evr_diff']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
