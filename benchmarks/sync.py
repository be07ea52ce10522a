"""Benchmark: sync to a local tracking server.

1. Throughput: a run holding ``--gb`` of embedding blobs uploaded by ``tracker upload``'s code
   path, next to raw ``requests.put`` of the same blobs with the uploader's parallelism, each
   on a fresh server, interleaved with the order rotated (``--repeat``, default 5).
2. Concurrency: ``--clients`` processes, each an ``Experiment(url=...)`` logging
   ``--embeddings`` embeddings of 10k x 128 with labels and a sprite while its background
   thread syncs; total time, p99 latency of record POSTs, server peak RSS, 5xx count, and a
   check that every run arrived whole with each record once.

Usage: python benchmarks/sync.py [--gb 1] [--clients 16] [--embeddings 20] [--quick] [--repeat N]
Writes benchmarks/results/sync.json. Scratch files go under ``BENCH_TMP`` (default: the system temp dir).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``python -m server_stub`` in a child process, with its peak RSS sampled."""

    def __init__(self, root: Path, max_body_mb: int = 256):
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(root.parent / f"server-{self.port}.log", "wb")
        command = [sys.executable, "-m", "server_stub", "--root", str(root), "--create", "--port", str(self.port),
                   "--max-body-mb", str(max_body_mb)]
        self.proc = subprocess.Popen(command, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        self.peak_rss = 0
        self._stop = threading.Event()
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/api/v1/projects", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        import psutil
        proc = psutil.Process(self.proc.pid)
        while not self._stop.wait(0.05):
            try:
                self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> None:
        self._stop.set()
        from _harness import stop_process
        stop_process(self.proc)
        self.log.close()


def compare_runs(local_dir: Path, server_root: Path) -> str | None:
    """None when the server's copy has every local record exactly once and every blob intact."""
    from tracker_sdk.runformat import journal, open_run
    local = open_run(local_dir)
    remote_dir = server_root / local.project / local.run_id
    try:
        remote = open_run(remote_dir)
    except Exception as exc:  # report, do not crash the benchmark
        return f"{local.run_id}: {exc}"
    seqs = [r.seq for r in journal.read_journal(remote_dir / "journal")]
    if seqs != list(range(len(local.records))):
        return f"{local.run_id}: server seqs {len(seqs)} (unique {len(set(seqs))}) vs {len(local.records)} local"
    if remote.records != local.records:
        return f"{local.run_id}: records differ"
    try:
        remote.verify()
    except Exception as exc:
        return f"{local.run_id}: {exc}"
    if set(remote.blob_refs()) != set(local.blob_refs()):
        return f"{local.run_id}: blob sets differ"
    return None


# -- 1. throughput ---------------------------------------------------------------------------
def throughput(bench, tmp: Path, gb: float) -> dict:
    """``tracker upload`` against raw PUTs of the same blobs with the same parallelism, on fresh servers."""
    import concurrent.futures

    import numpy as np
    import requests

    from _harness import Candidate
    from tracker_sdk import OfflineExperiment
    from tracker_sdk.commands.upload import upload_runs
    from tracker_sdk.runformat import open_run
    from tracker_sdk.sync.http import HTTPBackend
    from tracker_sdk.sync.uploader import Uploader

    parallel = inspect.signature(Uploader).parameters["parallel_blobs"].default
    rows, dim = 131072, 256  # 128 MiB of float32 per embedding
    count = max(1, round(gb * 1024 / 128))
    rng = np.random.default_rng(0)
    exp = OfflineExperiment(project_name="throughput", offline_directory=str(tmp / "local"))
    labels = [f"c{i % 10}" for i in range(rows)]
    for step in range(count):
        exp.log_embedding(rng.standard_normal((rows, dim), dtype=np.float32), labels, step=step, reduce=None)
    exp.end()
    run = open_run(exp.run_dir)
    blobs = sorted(set(run.blob_refs()))
    nbytes = sum(run.blob_path(s).stat().st_size for s in blobs)
    servers, problems = iter(range(10_000)), []

    def start_server():
        server = Server(tmp / f"server-throughput-{next(servers)}", max_body_mb=int(nbytes / 2 ** 20) + 64)
        raw_run = f"{server.port:032x}"
        requests.put(f"{server.url}/api/v1/projects/raw/runs/{raw_run}", json={"run_id": raw_run}).raise_for_status()
        return server

    def stop_server(server):
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)

    def sync(server):
        client = HTTPBackend(server.url)
        try:
            result = upload_runs([exp.run_dir], client)
        finally:
            client.close()
        if result["failed"]:
            raise RuntimeError(f"upload failed: {result['failed']}")
        problems.append(compare_runs(exp.run_dir, server.root))

    def raw(server):
        raw_run = f"{server.port:032x}"

        def put(sha):
            with open(run.blob_path(sha), "rb") as body:
                requests.put(f"{server.url}/api/v1/runs/{raw_run}/blobs/{sha}", data=body,
                             headers={"Content-Type": "application/octet-stream"}).raise_for_status()

        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            list(pool.map(put, blobs))

    baseline = f"raw requests.put per blob, {parallel} in parallel"
    result = bench.compare(f"sync of {nbytes / 1e9:.2f} GB in {len(blobs)} blobs", {
        baseline: Candidate(raw, start_server, stop_server),
        "tracker upload": Candidate(sync, start_server, stop_server),
    }, baseline=baseline, warmup=0, bytes=nbytes, blobs=len(blobs), parallel_blobs=parallel)
    return {"problem": next((p for p in problems if p), None), "result": result}


# -- 2. concurrent clients -------------------------------------------------------------------
def client_main(url: str, root: str, seed: int, embeddings: int, rows: int, dim: int) -> None:
    """One client process: log embeddings with a sprite while the background thread syncs."""
    import numpy as np

    os.environ["TRACKER_DIR"] = root
    from tracker_sdk import Experiment

    rng = np.random.default_rng(seed)
    exp = Experiment(url=url, project_name="clients", end_timeout=900)
    images = rng.integers(0, 255, size=(rows, 8, 8), dtype=np.uint8)
    _, image_url = exp.create_embedding_image(images, image_size=(8, 8))
    labels = [f"class-{i % 10}" for i in range(rows)]
    base = rng.standard_normal((rows, dim), dtype=np.float32)
    log_s = []
    for step in range(embeddings):
        start = time.perf_counter()
        exp.log_embedding(base + step, labels, image_data=image_url, image_size=(8, 8), title="layer", step=step,
                          reduce=None)  # measure sync, not the client-side reductions
        log_s.append(time.perf_counter() - start)
        exp.log_metric("loss", 1.0 / (step + 1), step=step)
    start = time.perf_counter()
    exp.end()
    end_s = time.perf_counter() - start
    client = exp._backend.worker.uploader.backend
    print(json.dumps({"run_dir": str(exp.run_dir), "records_s": list(client.latencies["records"]),
                      "statuses": {str(k): v for k, v in client.statuses.items()}, "done": exp._backend.worker.done,
                      "log_s": log_s, "end_s": end_s}))


def concurrent(tmp: Path, clients: int, embeddings: int, rows: int = 10_000, dim: int = 128) -> dict:
    import numpy as np

    server = Server(tmp / "server-clients")
    try:
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, __file__, "--client", server.url, str(tmp / f"client-{i}"), str(i),
                                   str(embeddings), str(rows), str(dim)], stdout=subprocess.PIPE, text=True)
                 for i in range(clients)]
        outputs = [p.communicate()[0] for p in procs]
        total_s = time.perf_counter() - start
    finally:
        server.stop()
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs if out.strip()]
    posts = [s for r in results for s in r["records_s"]]
    statuses: dict[str, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    problems = [p for r in results if (p := compare_runs(Path(r["run_dir"]), server.root))]
    problems += [f"client exited {p.returncode}" for p in procs if p.returncode]
    return {"clients": clients, "embeddings": embeddings, "rows": rows, "dim": dim, "total_s": total_s,
            "posts": len(posts), "post_p50_ms": 1000 * float(np.percentile(posts, 50)),
            "post_p99_ms": 1000 * float(np.percentile(posts, 99)),
            "log_p99_ms": 1000 * float(np.percentile([s for r in results for s in r["log_s"]], 99)),
            "server_peak_rss_mb": server.peak_rss / 2 ** 20, "statuses": statuses,
            "n5xx": sum(v for k, v in statuses.items() if k.isdigit() and int(k) >= 500),
            "all_done": all(r["done"] for r in results) and len(results) == clients, "problems": problems}


def main() -> int:
    from _harness import Bench

    bench = Bench("sync", __doc__)
    parser = bench.parser
    parser.add_argument("--gb", type=float, default=1.0, help="GB of embedding blobs in the throughput run")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--embeddings", type=int, default=20, help="embeddings of 10k x 128 per client")
    parser.add_argument("--only", choices=("throughput", "clients"), help="run one part only")
    parser.add_argument("--client", nargs=6, help=argparse.SUPPRESS)
    args = bench.parse()
    if args.client:
        url, root, seed, embeddings, rows, dim = args.client
        client_main(url, root, int(seed), int(embeddings), int(rows), int(dim))
        return 0
    if args.quick:
        args.gb, args.clients, args.embeddings = 0.25, 4, 4
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP"), prefix="sync-bench-") as tmp:
        tmp = Path(tmp)
        t = throughput(bench, tmp, args.gb) if args.only != "clients" else None
        c = concurrent(tmp, args.clients, args.embeddings) if args.only != "throughput" else None
    ok_t = ok_c = True
    if t is not None:
        ok_t = t["problem"] is None
        bench.note("throughput_run_whole", "yes" if ok_t else t["problem"])
    if c is not None:
        ok_c = c["n5xx"] == 0 and not c["problems"] and c["all_done"]
        bench.note("clients", c)  # one run of many processes: a measurement, not a comparison
        print(f"\n{c['clients']} clients x {c['embeddings']} embeddings of {c['rows'] // 1000}k x {c['dim']} "
              f"+ labels + sprite: {c['total_s']:.1f} s; record POSTs p50 {c['post_p50_ms']:.0f} ms, "
              f"p99 {c['post_p99_ms']:.0f} ms; server peak RSS {c['server_peak_rss_mb']:.0f} MB; "
              f"5xx {c['n5xx']}; every run whole: {'yes' if ok_c else '; '.join(c['problems']) or 'no'}")
    bench.save()
    return 0 if ok_t and ok_c else 1


if __name__ == "__main__":
    sys.exit(main())
