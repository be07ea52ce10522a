"""Benchmark: fair service under load (a real ``tracker-server`` on loopback).

``--uploaders`` clients (default 16) upload embeddings with sprites as fast as the server
takes them (vectors, metadata and a sprite PNG as blob PUTs, then the embedding record),
while ``--meta-clients`` clients (default 64) each send ``--rate`` small requests per second
(default 5), alternating a records POST of one metric and a GET of their run's summary.
Clients run in worker processes, so their own GIL does not add to the latencies measured.

Printed and written to ``benchmarks/results/load.json``: p50/p99 latency per request class,
the count of 5xx answers, records acknowledged but missing from the server's journal (lost)
or present twice (duplicated), and the server's RSS at start and end, with the core count,
load average and versions (``benchmarks/_harness.py``). Every loop is bounded by
``--seconds`` (default 120); everything listens on 127.0.0.1 only.

Usage: python benchmarks/load.py [--seconds 120] [--uploaders 16] [--meta-clients 64] [--rate 5]
"""

from __future__ import annotations

import collections
import hashlib
import http.client
import json
import multiprocessing
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from pathlib import Path

from _harness import REPO, Bench, stop_process  # benchmarks/ is on sys.path when run as a script; it adds the repository

META_CLASSES = ("records", "run summary")
UPLOAD_CLASSES = ("blob PUT", "embedding record")
P99_TARGET_S = 0.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (Linux /proc)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    """``python -m server_stub`` in a child process; its RSS is sampled until ``stop``."""

    def __init__(self, root: Path, log_path: Path, *options: str):
        self.port = _free_port()
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "server_stub", "--root", str(root), "--create",
                                      "--port", str(self.port), *options], cwd=REPO, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"the server did not start; see {log_path}") from None
                time.sleep(0.1)
        self.rss_start = _rss(self.proc.pid)
        self.rss_peak = self.rss_start

    def sample(self) -> int:
        rss = _rss(self.proc.pid)
        self.rss_peak = max(self.rss_peak, rss)
        return rss

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


class Client:
    """One keep-alive connection; ``send`` returns (status, body, seconds)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def send(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        started = time.perf_counter()
        try:
            self.conn.request(method, "/api/v1" + path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            return None, b"", time.perf_counter() - started
        return status, data, time.perf_counter() - started


def _create_run(client: Client, project: str) -> str:
    run_id = uuid.uuid4().hex
    body = json.dumps({"name": f"load {run_id[:6]}", "created": time.time(), "format_version": 1}).encode()
    status, data, _ = client.send("PUT", f"/projects/{project}/runs/{run_id}", body,
                                  {"Content-Type": "application/json"})
    if status != 200:
        raise RuntimeError(f"creating a run answered {status}: {data[:200]!r}")
    return run_id


def _png_with_text(base: bytes, text: bytes) -> bytes:
    """``base`` (a PNG) with a tEXt chunk before IEND: a new sprite blob without re-encoding."""
    payload = b"tEXt" + b"load\x00" + text
    chunk = (len(payload) - 4).to_bytes(4, "big") + payload + zlib.crc32(payload).to_bytes(4, "big")
    return base[:-12] + chunk + base[-12:]


def _uploader(port: int, deadline: float, rows: int, dim: int, sprite_side: int, seed: int, out) -> None:
    """Upload embeddings with sprites until ``deadline``; reports latencies, statuses and records sent."""
    import io

    import msgpack
    import numpy as np
    from PIL import Image

    from tracker_sdk.runformat import encode_metadata, make_column, npy_bytes

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((rows, dim)).astype(np.float32)
    labels = [make_column("label", [f"c{i % 10}" for i in range(rows)])]
    metadata = encode_metadata(labels, rows)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (sprite_side, sprite_side, 3), dtype=np.uint8)).save(buf, format="PNG")
    sprite = buf.getvalue()
    side = max(1, int(np.ceil(np.sqrt(rows))))
    client = Client(port)
    run_id = _create_run(client, "load-upload")
    latencies, statuses, seq = collections.defaultdict(list), collections.Counter(), 0
    while time.monotonic() < deadline:
        vectors[0, 0] = seq  # a new vectors blob each time
        vec = npy_bytes(vectors)
        sprite_now = _png_with_text(sprite, f"{seed}-{seq}".encode())
        shas = {}
        for what, data in (("vectors", vec), ("metadata", metadata), ("sprite", sprite_now)):
            sha = hashlib.sha256(data).hexdigest()
            status, _, seconds = client.send("PUT", f"/runs/{run_id}/blobs/{sha}", data,
                                             {"Content-Type": "application/octet-stream"})
            latencies["blob PUT"].append(seconds)
            statuses[status] += 1
            shas[what] = sha
        record = {"seq": seq, "t": time.time(), "kind": "embedding", "id": uuid.uuid4().hex, "title": "load",
                  "group": None, "step": seq, "n": rows, "dim": dim,
                  "vectors": {"sha256": shas["vectors"], "dtype": "float32", "shape": [rows, dim]},
                  "metadata": {"sha256": shas["metadata"], "columns": ["label"], "types": [labels[0]["type"]],
                               "header": False},
                  "sprite": {"sha256": shas["sprite"], "tile_size": [max(1, sprite_side // side)] * 2,
                             "grid": [side, side], "n": rows}}
        status, _, seconds = client.send("POST", f"/runs/{run_id}/records", msgpack.packb({"records": [record]}),
                                         {"Content-Type": "application/msgpack"})
        latencies["embedding record"].append(seconds)
        statuses[status] += 1
        if status == 200:
            seq += 1
    out.put({"kind": "upload", "latencies": dict(latencies), "statuses": dict(statuses),
             "runs": {run_id: seq}})


def _meta_thread(port: int, deadline: float, rate: float, offset: float, result: dict) -> None:
    """One metadata client: alternate a one-record POST and a run summary GET, ``rate`` per second."""
    import msgpack

    client = Client(port)
    run_id = _create_run(client, "load-meta")
    interval, seq, n = 1.0 / rate, 0, 0
    start = time.monotonic() + offset
    while True:
        due = start + n * interval
        now = time.monotonic()
        if due >= deadline:
            break
        if due > now:
            time.sleep(due - now)
        if n % 2 == 0:
            record = {"seq": seq, "t": time.time(), "kind": "metric", "name": "loss", "value": 1.0 / (seq + 1),
                      "step": seq}
            status, data, seconds = client.send("POST", f"/runs/{run_id}/records",
                                                msgpack.packb({"records": [record]}),
                                                {"Content-Type": "application/msgpack"})
            result["latencies"]["records"].append(seconds)
            if status == 200:
                seq = json.loads(data)["next_seq"]
        else:
            status, _, seconds = client.send("GET", f"/runs/{run_id}")
            result["latencies"]["run summary"].append(seconds)
        result["statuses"][status] += 1
        n += 1
    result["runs"][run_id] = seq


def _meta_process(port: int, deadline: float, clients: int, rate: float, out) -> None:
    result = {"latencies": collections.defaultdict(list), "statuses": collections.Counter(), "runs": {}}
    threads = [threading.Thread(target=_meta_thread, args=(port, deadline, rate, i / (clients * rate), result))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put({"kind": "meta", "latencies": dict(result["latencies"]), "statuses": dict(result["statuses"]),
             "runs": result["runs"]})


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered))) - 1))] if ordered else float("nan")


def _check_journals(root: Path, acknowledged: dict[str, int]) -> tuple[int, int]:
    """(records acknowledged but missing, records stored twice) over every run of the benchmark."""
    from tracker_sdk.runformat import journal

    lost = duplicated = 0
    for project in ("load-upload", "load-meta"):
        for run_id, acked in acknowledged.items():
            run_dir = root / project / run_id
            if not run_dir.is_dir():
                continue
            seqs = collections.Counter(r.seq for r in journal.read_journal(run_dir / "journal"))
            lost += sum(1 for seq in range(acked) if seqs[seq] == 0)
            duplicated += sum(count - 1 for count in seqs.values() if count > 1)
    return lost, duplicated


def main() -> int:
    bench = Bench("load", __doc__)
    bench.parser.add_argument("--seconds", type=float, default=120.0, help="length of the load (default 120)")
    bench.parser.add_argument("--uploaders", type=int, default=16)
    bench.parser.add_argument("--meta-clients", type=int, default=64)
    bench.parser.add_argument("--rate", type=float, default=5.0, help="requests per second per metadata client")
    bench.parser.add_argument("--rows", type=int, default=10_000, help="rows of each uploaded embedding")
    bench.parser.add_argument("--dim", type=int, default=128)
    bench.parser.add_argument("--sprite-side", type=int, default=1024, help="side of each sprite PNG in pixels")
    bench.parser.add_argument("--concurrent-bodies", type=int, default=None,
                              help="the server's --concurrent-bodies (default: the server's default)")
    args = bench.parse()
    args.repeat = 1  # one load run; --repeat does not apply
    if args.quick:
        args.seconds, args.rows, args.sprite_side = min(args.seconds, 15.0), 2000, 256
    for name in ("seconds", "uploaders", "meta_clients", "rate", "rows", "dim", "sprite_side"):
        if not getattr(args, name) > 0:
            bench.parser.error(f"--{name.replace('_', '-')} must be positive; got {getattr(args, name)}")
    tmp = Path(tempfile.mkdtemp(prefix="tracker-load-", dir=os.environ.get("BENCH_TMP")))
    options = ["--concurrent-bodies", str(args.concurrent_bodies)] if args.concurrent_bodies else []
    server = Server(tmp / "root", tmp / "server.log", *options)
    try:
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        meta_procs = max(1, min(4, args.meta_clients // 16))
        split = [args.meta_clients // meta_procs + (i < args.meta_clients % meta_procs) for i in range(meta_procs)]
        deadline = time.monotonic() + 5 + args.seconds  # CLOCK_MONOTONIC is shared by the worker processes
        procs = [ctx.Process(target=_uploader, args=(server.port, deadline, args.rows, args.dim, args.sprite_side,
                                                     seed, out)) for seed in range(args.uploaders)]
        procs += [ctx.Process(target=_meta_process, args=(server.port, deadline, n, args.rate, out)) for n in split]
        for proc in procs:
            proc.start()
        print(f"[load] {args.uploaders} uploaders and {args.meta_clients} metadata clients at {args.rate:g}/s "
              f"for {args.seconds:g} s", file=sys.stderr, flush=True)
        reports = []
        while len(reports) < len(procs):
            try:
                reports.append(out.get(timeout=5))
            except queue.Empty:  # print progress while the load runs
                left = max(0.0, deadline - time.monotonic())
                if left == 0 and not any(p.is_alive() for p in procs):
                    raise RuntimeError("a client process died without reporting") from None
                print(f"[load] {left:.0f} s left, server RSS {server.sample() / 2**20:.0f} MB", file=sys.stderr,
                      flush=True)
        for proc in procs:
            proc.join(60)
        rss_end = server.sample()
    finally:
        server.stop()
    latencies, statuses, acknowledged = collections.defaultdict(list), collections.Counter(), {}
    for report in reports:
        for kind, values in report["latencies"].items():
            latencies[kind].extend(values)
        statuses.update({(int(k) if k is not None else None): v for k, v in report["statuses"].items()})
        acknowledged.update(report["runs"])
    lost, duplicated = _check_journals(tmp / "root", acknowledged)
    shutil.rmtree(tmp, ignore_errors=True)

    errors_5xx = sum(v for k, v in statuses.items() if k is not None and k >= 500)
    print(f"\n{'request class':<18} {'count':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in META_CLASSES + UPLOAD_CLASSES:
        values = latencies.get(kind, [])
        p50, p99 = _percentile(values, 50), _percentile(values, 99)
        print(f"{kind:<18} {len(values):>7} {p50 * 1000:>8.1f} {p99 * 1000:>8.1f}")
        case = {"case": kind, "baseline": "p99", "order": ["p99"], "repeat": 1, "warmup": 0,
                "candidates": {"p99": {"min": p99, "median": p99, "max": p99, "times": [p99]}}, "ratios": {},
                "extra": {"requests": len(values), "p50 ms": round(p50 * 1000, 1)}}
        if kind in META_CLASSES:
            case["target"] = {"candidate": "p99", "ratio": None, "speedup": None, "seconds": P99_TARGET_S,
                              "describe": f"<= {P99_TARGET_S:g} s under upload load", "met": p99 <= P99_TARGET_S}
        bench.cases.append(case)
    summary = {"5xx answers": errors_5xx, "connection errors": statuses.get(None, 0),
               "records lost": lost, "records duplicated": duplicated,
               "server RSS at start MB": round(server.rss_start / 2**20, 1),
               "server RSS at end MB": round(rss_end / 2**20, 1),
               "server RSS peak MB": round(server.rss_peak / 2**20, 1),
               "embeddings uploaded": sum(v for k, v in acknowledged.items() if k in
                                          {r for rep in reports if rep["kind"] == "upload" for r in rep["runs"]}),
               "load": f"{args.uploaders} uploaders ({args.rows}x{args.dim} + {args.sprite_side}px sprite), "
                       f"{args.meta_clients} metadata clients at {args.rate:g}/s, {args.seconds:g} s"}
    for key, value in summary.items():
        print(f"{key}: {value}")
        bench.note(key, value)
    bench.save()
    return 0 if errors_5xx == 0 and lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
