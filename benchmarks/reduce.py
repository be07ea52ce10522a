"""Reducer speed and quality against the raw libraries, called directly in this same script.

For every dataset and method it times the raw library and the SDK reducer doing the same work
(warm, interleaved with the order rotated, ``--repeat`` runs each; scikit-learn's PCA with its
default solver), their ratio, trustworthiness (k=10, 5,000-point sample)
and 10-NN label accuracy in the projection. ``--cold`` adds, per method, a fresh Python
process with an empty numba cache (cold) and a second fresh process reusing that cache.
``--sdk-flow`` times log_embedding(reduce=...) until the projection is stored in fresh
processes: cold, a second one on the shared warm worker, one with a private worker, and warm.

    .venv/bin/python benchmarks/reduce.py                       # digits + 10k x 512, all methods
    .venv/bin/python benchmarks/reduce.py --sizes 10000x512 70000x784 --methods pca pacmap --cold
    .venv/bin/python benchmarks/reduce.py --methods umap pacmap --flow-only
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from _harness import Bench  # also puts the repository on sys.path

from tracker_sdk.reduce import get_reducer, projection_quality

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

        model = PCA(n_components=n_components)  # scikit-learn's default (fastest) solver for the shape
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


COLD_SNIPPET = """
import sys, time, json
start = time.perf_counter()
import numpy as np
from tracker_sdk.reduce import get_reducer
from tracker_sdk.reduce.base import import_optional
libraries = {"umap": "umap", "pacmap": "pacmap", "tsne": "openTSNE"}
if sys.argv[2] in libraries:
    import_optional(libraries[sys.argv[2]], libraries[sys.argv[2]], sys.argv[2])
X = np.load(sys.argv[1])
imported = time.perf_counter()
get_reducer(sys.argv[2], n_components=int(sys.argv[3]), **json.loads(sys.argv[4])).fit(X)
print(json.dumps([imported - start, time.perf_counter() - imported]))
"""


def fresh_process(method, path, n_components, cache_dir) -> tuple[float, float]:
    """(seconds importing numpy, the SDK and the library; seconds fitting) in a new interpreter."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", COLD_SNIPPET, path, method, str(n_components),
                          json.dumps(sdk_params(method))], env=env, capture_output=True, text=True, check=True)
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


FLOW_SNIPPET = """
import sys, time, json, numpy as np
from tracker_sdk import Experiment
from tracker_sdk.reduce import get_reducer
X = np.load(sys.argv[1])
labels = json.load(open(sys.argv[2]))
exp = Experiment(project_name="bench", url=sys.argv[3])
session, stored, done = None, [], []
for title in ("first", "again"):  # the second call finds the worker warm
    start = time.perf_counter()
    exp.log_embedding(X, labels, title=title, reduce=get_reducer(sys.argv[4], n_components=int(sys.argv[5]),
                                                                 **json.loads(sys.argv[6])))
    session = exp._reduction_session
    while len(session.summaries) + len(session.failures) < len(stored) + 1:  # the reduction record is written
        time.sleep(0.002)
    stored.append(time.perf_counter() - start)
    session.scheduler.wait(progress=False)  # and the fitted reducer is loaded back into the caller's instance
    done.append(time.perf_counter() - start)
exp.end()
print(json.dumps({"first": stored[0], "warm": stored[1], "first_done": done[0], "warm_done": done[1],
                  "pid": session.scheduler.worker_pid, "failures": session.failures}))
"""


def sdk_flow(method, X, labels, n_components) -> dict:
    """A training script's view: from log_embedding(reduce=method) until the projection is stored
    (``*_done_s``: until the fitted reducer is also loaded back into the caller's instance, which
    imports the library in the training process once).

    Three fresh processes share an empty numba cache and a private socket directory: the
    first pays everything (cold); the second finds the first one's shared worker still warm;
    the third runs with TRACKER_REDUCE_KEEP_WARM=0 (a private worker, numba's disk cache only).
    Each also logs the same embedding a second time, with its worker warm: the warm time.
    """
    from tracker_sdk.reduce.shared_worker import KEEP_WARM_ENV

    params = json.dumps(sdk_params(method))
    with tempfile.TemporaryDirectory() as tmp:
        vectors, label_file, runtime = os.path.join(tmp, "x.npy"), os.path.join(tmp, "labels.json"), os.path.join(tmp, "run")
        np.save(vectors, X)
        with open(label_file, "w") as fh:
            json.dump(labels, fh)
        os.mkdir(runtime, 0o700)
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba"), XDG_RUNTIME_DIR=runtime)
        env.pop(KEEP_WARM_ENV, None)

        def process(extra_env):
            out = subprocess.run([sys.executable, "-c", FLOW_SNIPPET, vectors, label_file, os.path.join(tmp, "runs"),
                                  method, str(n_components), params], env=dict(env, **extra_env),
                                 capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if result["failures"]:
                raise RuntimeError(result["failures"])
            return result

        cold = process({})
        second = process({})
        private = process({KEEP_WARM_ENV: "0"})
        subprocess.run([sys.executable, "-m", "tracker_sdk.cli", "worker", "--stop"], env=env, check=True,
                       capture_output=True)
    warm = min(cold["warm"], second["warm"], private["warm"])
    return {"flow_cold_s": cold["first"], "flow_warm_s": warm, "flow_second_shared_s": second["first"],
            "flow_second_shared/warm": second["first"] / warm, "shared_worker_reused": second["pid"] == cold["pid"],
            "flow_second_private_s": private["first"], "flow_second_private/warm": private["first"] / warm,
            "flow_second_shared_done_s": second["first_done"], "flow_warm_done_s": second["warm_done"]}


def against_raw(bench, method, X, labels, nc, size) -> dict:
    """Seconds of the raw library and of the SDK reducer doing the same work (interleaved, warm), and quality."""
    outputs = {}

    def raw():
        outputs["raw"] = raw_call(method, X, nc)

    def sdk():
        reducer = get_reducer(method, n_components=nc, **sdk_params(method))
        outputs["sdk"] = reducer, reducer.fit_transform(X)

    # the harness's untimed warm-up run of each excludes imports and compilation of every code path
    # this size takes (UMAP's neighbour search changes at 4,096 rows)
    result = bench.compare(f"{size} {method} {nc}d", {"raw library": raw, "tracker_sdk": sdk}, baseline="raw library")
    (raw_y, raw_model), (reducer, sdk_y) = outputs["raw"], outputs["sdk"]
    q = projection_quality(X, sdk_y, labels)
    row = {"raw_warm_s": result["candidates"]["raw library"]["median"],
           "sdk_warm_s": result["candidates"]["tracker_sdk"]["median"],
           "sdk/raw": result["ratios"]["tracker_sdk"]["median"], "trust": q["trustworthiness"],
           "raw_trust": projection_quality(X, raw_y, labels)["trustworthiness"], "knn_acc": q["knn_label_accuracy"]}
    if method == "pca":
        row["evr_diff"] = float(np.abs(reducer.explained_variance_ratio_ - raw_model.explained_variance_ratio_).max())
    result["extra"].update({k: v for k, v in row.items() if k in ("trust", "raw_trust", "knn_acc", "evr_diff")})
    return row


def main(argv=None) -> int:
    bench = Bench("reduce", __doc__)
    parser = bench.parser
    parser.add_argument("--sizes", nargs="*", default=None, help="default: digits 10000x512 (--quick: digits)")
    parser.add_argument("--methods", nargs="*", default=None, help="default: pca pacmap umap tsne (--quick: pca pacmap)")
    parser.add_argument("--n-components", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="also time fresh processes (cold and second)")
    parser.add_argument("--sdk-flow", action="store_true",
                        help="also time log_embedding(reduce=...) in fresh processes: cold, second with the shared "
                             "worker, second with a private worker, and warm")
    parser.add_argument("--flow-only", action="store_true", help="only the --sdk-flow columns (no raw-library runs)")
    args = bench.parse(argv)
    args.sizes = args.sizes or (["digits"] if args.quick else ["digits", "10000x512"])
    args.methods = args.methods or (["pca", "pacmap"] if args.quick else ["pca", "pacmap", "umap", "tsne"])
    if args.flow_only and args.cold:
        parser.error("--cold compares with the warm raw-library columns, which --flow-only skips")
    rows = []
    for size in args.sizes:
        X, labels = dataset(size)
        for method in args.methods:
            nc = 3 if method == "pca" else args.n_components
            row = {"data": f"{size} ({len(X)}x{X.shape[1]})", "method": f"{method} {nc}d"}
            if not args.flow_only:
                row.update(against_raw(bench, method, X, labels, nc, size))
            if args.cold:
                with tempfile.TemporaryDirectory() as tmp:
                    path = os.path.join(tmp, "x.npy")
                    np.save(path, X)
                    cache = os.path.join(tmp, "numba")
                    row["cold_s"] = sum(fresh_process(method, path, nc, cache))
                    row["second_import_s"], row["second_fit_s"] = fresh_process(method, path, nc, cache)
                    row["second_fit/warm"] = row["second_fit_s"] / row["sdk_warm_s"]
                    row["second_total/warm"] = (row["second_import_s"] + row["second_fit_s"]) / row["sdk_warm_s"]
            if (args.sdk_flow or args.flow_only) and method != "pca":  # PCA runs in the training process
                row.update(sdk_flow(method, X, labels, nc))
            if args.cold or args.sdk_flow or args.flow_only:  # fresh processes: one run each, recorded as such
                bench.note(f"{size} {method} fresh processes", {k: v for k, v in row.items()
                                                                 if k.startswith(("cold", "second", "flow"))})
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = [c for c in max(rows, key=len) if c != "evr_diff"] if rows else []
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:.3g}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in cols) + " |")
    for row in rows:
        if "evr_diff" in row:
            print(f"PCA {row['data']}: {1 / row['sdk/raw']:.2f}x the speed of scikit-learn's PCA (default solver), "
                  f"explained variance ratios within {row['evr_diff']:.1e}")
    bench.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
