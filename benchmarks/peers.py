"""Benchmark: the same work through tracker_sdk, Comet's offline SDK and TensorBoard, side by side.

Each run is a fresh Python process that imports its library, then times the work until it is
on disk: tracker_sdk ``log_embedding(reduce=None)`` + ``end()``; comet_ml
``OfflineExperiment.log_embedding`` + ``end()`` (until its offline archive is written);
TensorBoard ``SummaryWriter.add_embedding`` + ``close()``. Cases: 100k x 512 + labels;
10k x 784 + labels + 28x28 sprite; an empty run. Reported: seconds of the work (imports
excluded, interleaved with the order rotated), peak RSS of the process and bytes on disk.
The peers are optional (``pip install comet_ml tensorboard torch``) and skipped with a message
when absent; Comet runs offline with every auto-logger off and is never given an API key.

    .venv/bin/python benchmarks/peers.py --repeat 3
    .venv/bin/python benchmarks/peers.py --quick      # 10k x 784 + sprite and the empty run
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import Bench, Candidate

TOOLS = {"tracker_sdk": "tracker_sdk", "comet_ml offline": "comet_ml", "tensorboard": "torch.utils.tensorboard"}
#: Comet offline, quiet and with error tracking (its only network use in offline mode) off
COMET_ENV = {"COMET_DISABLE_AUTO_LOGGING": "1", "COMET_ERROR_TRACKING_ENABLE": "false"}


def data(case: str):
    import numpy as np
    rng = np.random.default_rng(0)
    if case == "empty":
        return None, None, None
    n, d = (100_000, 512) if case == "100k" else (10_000, 784)
    vectors = rng.standard_normal((n, d), dtype=np.float32)
    labels = [f"class-{i % 10}" for i in range(n)]
    images = rng.random((n, 28, 28), dtype=np.float32) if case == "10k-sprite" else None
    return vectors, labels, images


def child(tool: str, case: str, out: str) -> dict:
    """In a fresh process: import the tool, then time its work until it is on disk."""
    vectors, labels, images = data(case)
    if tool == "tracker_sdk":
        from tracker_sdk import Experiment
        start = time.perf_counter()
        exp = Experiment(project_name="bench", url=out)
        if vectors is not None:
            exp.log_embedding(vectors, labels, image_data=images, image_size=(28, 28) if images is not None else None,
                              reduce=None)
        exp.end()
    elif tool == "comet_ml offline":
        import comet_ml
        start = time.perf_counter()
        exp = comet_ml.OfflineExperiment(
            project_name="bench", offline_directory=out, log_code=False, log_graph=False, auto_param_logging=False,
            auto_metric_logging=False, auto_output_logging=False, log_env_details=False, log_git_metadata=False,
            log_git_patch=False, log_env_gpu=False, log_env_host=False, log_env_cpu=False, display_summary_level=0)
        if vectors is not None:
            exp.log_embedding(vectors, labels, image_data=images, image_size=(28, 28) if images is not None else None)
        exp.end()
    else:
        import torch
        from torch.utils.tensorboard import SummaryWriter
        start = time.perf_counter()
        writer = SummaryWriter(out)
        if vectors is not None:
            writer.add_embedding(vectors, metadata=labels,
                                 label_img=torch.from_numpy(images[:, None]) if images is not None else None)
        writer.close()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "bytes": sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())}


def main() -> int:
    bench = Bench("peers", __doc__)
    bench.parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = bench.parse()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    available = {}
    for name, module in TOOLS.items():
        if importlib.util.find_spec(module.split(".")[0]) is None:
            print(f"skipping {name}: {module.split('.')[0]} is not installed (pip install {module.split('.')[0]})")
        else:
            available[name] = module
    root = Path(tempfile.mkdtemp(prefix="bench-peers-", dir=os.environ.get("BENCH_TMP")))
    env = dict(os.environ, **COMET_ENV, COMET_OFFLINE_DIRECTORY=str(root))
    try:
        for case in (["10k-sprite", "empty"] if args.quick else ["100k", "10k-sprite", "empty"]):
            facts = {name: [] for name in available}

            def run(tool, case=case, facts=facts):
                out = tempfile.mkdtemp(dir=root)
                try:
                    proc = subprocess.run([sys.executable, __file__, "--child", tool, case, out], env=env,
                                          capture_output=True, text=True, timeout=1800)
                    if proc.returncode:
                        raise RuntimeError(f"{tool} {case} failed: {proc.stderr[-2000:]}")
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
                finally:
                    shutil.rmtree(out, ignore_errors=True)
                facts[tool].append(result)
                return result["seconds"]

            bench.compare(case, {name: Candidate(lambda name=name: run(name), reports_seconds=True)
                                 for name in available}, baseline="tracker_sdk", warmup=0)
            case_result = bench.cases[-1]
            for name, runs in facts.items():
                case_result["extra"][f"{name} peak RSS MB (max)"] = round(max(r["peak_rss_mb"] for r in runs))
                case_result["extra"][f"{name} MB on disk"] = round(runs[-1]["bytes"] / 1e6, 1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    bench.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
