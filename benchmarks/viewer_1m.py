"""Benchmark: the viewer at 1M points, metadata as binary columns against the JSON answers.

Builds a run of 1M points (a stored 2-D PCA) with 3 metadata columns (a string label, a float,
an int), serves it with a real ``tracker-server`` on loopback and loads its embedding view in
headless Chromium (Playwright, ``/usr/bin/chromium``, WebGL on SwiftShader), each load in a
fresh browser context (nothing cached). The page reports its own times under ``?debug=1``
(``window.__viewer``), in seconds from navigation:

- first coloured frame: the first frame drawn with the colour column's colours (``colouredMs``);
- full metadata usable: every column in the hover card, search and filter (``usableMs``),
  given as seconds after the first coloured frame.

Candidates, interleaved and rotated by benchmarks/_harness.py: ``binary columns`` (the viewer:
coordinates and the colour column first, then the other columns fetched by a worker while the
first frame is drawn, typed arrays viewed in place) and ``JSON (before)`` (``?meta=json``: the
JSON answers, requested after the first frame at this size and parsed on the main thread, as
the viewer did before). The timed loads find the server warm (the harness's untimed warm-up
load read the run); one more load right after a server restart is recorded as
``cold_server``. Payload sizes of both answers are recorded too.

    .venv/bin/python benchmarks/viewer_1m.py              # 1M points, 5 page loads per candidate
    .venv/bin/python benchmarks/viewer_1m.py --quick      # 200k points
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from _harness import REPO, Bench, Candidate, Target, stop_process

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking"]
FIRST_FRAME_TARGET_S = 2.5
USABLE_AFTER_TARGET_S = 2.0
LOAD_TIMEOUT_S = 300


def log_run(root: Path, n: int) -> tuple[str, str]:
    """A run of n points with a stored 2-D PCA and columns label (str), score (float), count (int)."""
    from tracker_sdk import Experiment
    from tracker_sdk.reduce import get_reducer

    rng = np.random.default_rng(0)
    cluster = rng.integers(0, 10, n)
    centres = rng.normal(0, 6, (10, 8)).astype(np.float32)
    vectors = centres[cluster] + rng.normal(0, 1, (n, 8)).astype(np.float32)
    labels = np.array([f"class_{c}" for c in range(10)])[cluster]
    exp = Experiment(url=str(root), project_name="viewer-1m", experiment_name=f"{n:,} points")
    emb = exp.log_embedding(vectors, labels, title="penultimate", reduce=get_reducer("pca", n_components=2),
                            reduce_background=False,
                            metadata={"score": rng.random(n), "count": rng.integers(0, 1000, n)})
    exp.end()
    return exp.run_id, emb.id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TrackerServer:
    """``tracker-server --root ROOT`` on a free loopback port, stopped on exit."""

    def __init__(self, root: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "server_stub", "--root", str(root), "--port", str(self.port)],
                                     cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/api/v1/health", timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"tracker-server did not start; its log is {log}")
                time.sleep(0.1)

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + "/api/v1" + path, timeout=300) as resp:
            return resp.read()

    def stop(self) -> None:
        stop_process(self.proc, grace_s=10)
        self.log.close()


def load_page(browser, url: str) -> dict:
    """One page load in a fresh context: the page's own times (ms from navigation)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(url)
        done = "!!(window.__viewer && ['ready', 'error'].includes(window.__viewer.state) && window.__viewer.colouredMs)"
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while not page.evaluate(done) and page.evaluate("!(window.__viewer && window.__viewer.state === 'error')"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the view was not ready after {LOAD_TIMEOUT_S} s: {url}")
            time.sleep(0.05)
        v = page.evaluate("({state: __viewer.state, error: __viewer.error, n: __viewer.pointCount,"
                          " coloured: __viewer.colouredMs, usable: __viewer.usableMs, first: __viewer.firstFrameMs,"
                          " legend: __viewer.legend})")
        if v["state"] != "ready":
            raise RuntimeError(f"the view failed: {v['error']}")
        if sum(item["count"] for item in v["legend"]["items"]) != v["n"]:
            raise RuntimeError("not every point was coloured")
        return v
    finally:
        context.close()


def main(argv=None) -> int:
    bench = Bench("viewer_1m", __doc__)
    args = bench.parse(argv)
    if not Path(CHROMIUM).exists():
        print(f"skipping: Chromium not found at {CHROMIUM} (set $CHROMIUM)")
        return 0
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("skipping: playwright is not installed (pip install playwright; the browser is Debian's chromium)")
        return 0
    n = 200_000 if args.quick else 1_000_000
    root = Path(tempfile.mkdtemp(prefix="bench-viewer-", dir=os.environ.get("BENCH_TMP")))
    server = None
    try:
        print(f"logging {n:,} points with 3 metadata columns and a 2-D PCA...", file=sys.stderr, flush=True)
        run_id, emb_id = log_run(root / "runs", n)
        server = TrackerServer(root / "runs", root / "server.log")
        red_id = json.loads(server.get(f"/runs/{run_id}/embeddings"))[0]["reductions"][0]["id"]
        json_bytes = len(server.get(f"/runs/{run_id}/embeddings/{emb_id}/metadata")) + \
            len(server.get(f"/runs/{run_id}/reductions/{red_id}/columns"))
        binary_bytes = len(server.get(f"/runs/{run_id}/embeddings/{emb_id}/columns?reduction={red_id}"))
        base = f"{server.url}/view?" + urlencode({"run": run_id, "emb": emb_id, "thumbs": "off", "debug": "1"})
        urls = {"binary columns": base, "JSON (before)": base + "&meta=json"}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                facts = {name: [] for name in urls}

                def first_coloured(name):
                    v = load_page(browser, urls[name])
                    facts[name].append(v)
                    return v["coloured"] / 1000

                case = bench.compare(f"{n:,} points, 3 columns: first coloured frame, s from navigation",
                                     {name: Candidate(lambda name=name: first_coloured(name), reports_seconds=True)
                                      for name in urls}, baseline="JSON (before)",
                                     target=Target("binary columns", seconds=FIRST_FRAME_TARGET_S))
                for name, loads in facts.items():  # the timed loads (the warm-up's come first)
                    usable = sorted(v["usable"] / 1000 for v in loads[case["warmup"]:])
                    case["extra"][f"{name}: full metadata usable, s from navigation (median, min..max)"] = \
                        f"{statistics.median(usable):.2f} ({usable[0]:.2f}..{usable[-1]:.2f})"
                case["extra"]["metadata bytes: JSON answers / binary columns"] = \
                    f"{json_bytes / 1e6:.1f} MB / {binary_bytes / 1e6:.1f} MB"
                for key, value in case["extra"].items():
                    print(f"  {key}: {value}")

                def usable_after_first(_=None):
                    v = load_page(browser, urls["binary columns"])
                    return max(0.0, v["usable"] - v["coloured"]) / 1000

                bench.compare(f"{n:,} points, 3 columns: full metadata usable (hover, search), s after the first "
                              "coloured frame", {"binary columns": Candidate(usable_after_first, reports_seconds=True)},
                              baseline="binary columns", target=Target("binary columns", seconds=USABLE_AFTER_TARGET_S))
                server.stop()  # a server that has not read the run yet: the first load pays for it
                old, server = server.url, TrackerServer(root / "runs", root / "server.log")
                v = load_page(browser, urls["binary columns"].replace(old, server.url))
                cold = {"first_coloured_frame_s": round(v["coloured"] / 1000, 3),
                        "usable_after_first_frame_s": round(max(0.0, v["usable"] - v["coloured"]) / 1000, 3)}
                bench.note("cold_server", cold)
                print(f"  binary columns, server just started: {cold}")
            finally:
                browser.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    bench.note("metadata_bytes", {"json": json_bytes, "binary": binary_bytes})
    bench.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
