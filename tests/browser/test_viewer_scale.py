"""Time from navigation to the first rendered frame at 10k, 100k (with and without sprites) and 1M.

Run alone to print the table that the README quotes::

    .venv/bin/python -m pytest -q -p no:cacheprovider -s tests/browser/test_viewer_scale.py

The figures also land in ``test-artifacts/browser/viewer-timings.json``. The bounds asserted
here are loose on purpose (the machine is shared); the numbers are the measurement.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from viewer_runs import ARTIFACTS, Server, log_run

pytestmark = pytest.mark.slow

CASES = [  # (label, n, sprites, dims of the stored projection)
    ("10k, coloured", 10_000, False, 2),
    ("100k, coloured", 100_000, False, 2),
    ("100k, sprites on", 100_000, True, 2),
    ("1M, coloured", 1_000_000, False, 2),
]


@pytest.fixture(scope="module")
def scale_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    runs = {}
    for label, n, sprite, comps in CASES:
        runs[label] = log_run(root, project="scale", name=label, n=n, dim=8 if n > 100_000 else 16, steps=(0,),
                              n_components=comps, sprite=sprite, metrics=False, clusters=10, seed=n)
    with Server(root, tmp_path_factory.mktemp("log") / "server.log") as srv:
        yield srv, runs


def _load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def test_first_frame_timings(playwright_browser, scale_runs):
    server, runs = scale_runs
    rows = []
    for label, n, sprite, _ in CASES:
        run = runs[label]
        context = playwright_browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            load = _load_avg()
            page.goto(server.view_url(run, 0, thumbs="on" if sprite else "off"))
            deadline = time.monotonic() + 180
            ready = "!!(window.__viewer && ['ready', 'error'].includes(window.__viewer.state))"
            if sprite:
                ready += " && (window.__viewer.state === 'error' || !!window.__viewer.spriteFrameMs)"
            while not page.evaluate(ready):
                assert time.monotonic() < deadline, f"{label}: viewer not ready after 180 s"
                time.sleep(0.1)
            v = page.evaluate("({state: __viewer.state, error: __viewer.error, count: __viewer.pointCount,"
                              " first: __viewer.firstFrameMs, ready: __viewer.readyMs, sprite: __viewer.spriteFrameMs,"
                              " spriteOn: __viewer.spriteOn, legend: __viewer.legend, marks: __viewer.marks})")
            assert v["state"] == "ready", v["error"]
            assert v["count"] == n
            assert sum(item["count"] for item in v["legend"]["items"]) == n  # every point coloured
            assert v["spriteOn"] == sprite
            frames = sorted(page.evaluate("__viewer.frameMs()") for _ in range(3))
            xy = page.evaluate("__viewer.screenOf(0)")
            pick = page.evaluate(f"__viewer.pickMs({xy[0]}, {xy[1]})")
            assert pick[1] >= 0
            first = v["sprite"] if sprite else v["first"]
            rows.append({"case": label, "n": n, "coords_ms": round(v["marks"]["coords"]), "first_frame_ms": round(first),
                         "all_coloured_ms": round(v["ready"]),
                         "redraw_ms": round(frames[1]), "hover_index_ms": round(pick[0]), "load_avg": load})
            page.screenshot(path=str(ARTIFACTS / f"scale-{n}{'-sprites' if sprite else ''}.png"))
            assert not errors
        finally:
            context.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "viewer-timings.json").write_text(json.dumps(rows, indent=1))
    print("\n| points | coordinates arrived | first frame | all points coloured | redraw | hover index rebuild | load avg |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['coords_ms'] / 1000:.2f} s | {r['first_frame_ms'] / 1000:.2f} s | {r['all_coloured_ms'] / 1000:.2f} s | "
              f"{r['redraw_ms']} ms | {r['hover_index_ms']} ms | {r['load_avg']} |")
    by_case = {r["case"]: r for r in rows}
    assert by_case["10k, coloured"]["first_frame_ms"] < 30_000
    assert by_case["1M, coloured"]["first_frame_ms"] < 120_000
    assert np.isfinite([r["first_frame_ms"] for r in rows]).all()
