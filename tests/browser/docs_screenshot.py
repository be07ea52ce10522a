"""Take the docs' screenshots from real runs of the digits CNN example.

    .venv/bin/python tests/browser/docs_screenshot.py [--out docs/viewer.png]
    .venv/bin/python tests/browser/docs_screenshot.py --dynamics [--docs docs]

The first logs examples/digits_cnn.py into a temporary directory, adds the analysis scores with
``tracker analyze``, serves it with ``tracker-server`` and photographs the embedding view in
headless Chromium with a neighbour query and the top label-disagreement points selected.

``--dynamics`` runs the demo (examples/demo.py --no-serve: two seeds, the group's dynamics,
aligned fits, the comparison) and writes docs/dynamics.png (the view coloured by trust_point,
torn regions shaded, a torn point's true and false neighbours, the dynamics panel with the CKA
heatmap, the rows that changed most and the separation sparklines) and docs/compare.png (the two
runs side by side, coloured by agreement). ``shoot_dynamics`` and ``shoot_compare`` check that
the page shows those panels before they photograph it (tests/browser/test_viewer_compare.py
runs them on small runs).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/: serverprocess
from viewer_runs import CHROMIUM, CHROMIUM_ARGS, REPO, Server  # noqa: E402

from tracker_sdk.runformat import iter_run_dirs, open_run  # noqa: E402


def wait_for(page, expr: str, what: str, timeout: float = 120.0):
    """Poll a JS expression until truthy; AssertionError naming ``what`` (and the page's error) if never."""
    deadline = time.monotonic() + timeout
    while not (value := page.evaluate(expr)):
        if time.monotonic() > deadline:
            error = page.evaluate("(window.__viewer && window.__viewer.error) || "
                                  "(window.__compare && window.__compare.error) || null")
            raise AssertionError(f"the page does not show {what} after {timeout:.0f} s (page error: {error})")
        time.sleep(0.1)
    return value


def shoot_dynamics(page, base_url: str, run_id: str, embedding_id: str, out, *, method: str | None = None) -> None:
    """The embedding view coloured by trust_point with torn regions shaded, a torn point hovered (its
    true and false neighbours ringed) and the dynamics panel (CKA heatmap, changed most, sparklines)."""
    q = {"run": run_id, "emb": embedding_id, "color": "trust_point", "torn": "1", "thumbs": "off",
         "metric": "euclidean", "debug": "1", **({"method": method} if method else {})}
    page.goto(f"{base_url}/view?{urlencode(q)}")
    wait_for(page, "window.__viewer && window.__viewer.state === 'ready'", "the embedding view")
    wait_for(page, "window.__viewer.colorBy === 'trust_point' && window.__viewer.torn", "the trust_point colouring")
    for selector, what in (("#sec-dynamics:not(.hidden) #dyn-cka", "the CKA heatmap"),
                           ("#sec-dynamics #dyn-changed li", "the changed-most list"),
                           ("#sec-dynamics #dyn-sparks .spark-row", "the separation sparklines")):
        wait_for(page, f"!!document.querySelector({selector!r})", what)
    torn = page.evaluate("window.__viewer.torn")
    x, y = page.evaluate(f"__viewer.screenOf({torn.index(1)})")
    page.mouse.move(x, y)
    wait_for(page, "window.__viewer.hoverNeighbours && window.__viewer.hoverNeighbours.falseIds.length",
             "a torn point's false neighbours")
    page.evaluate("document.getElementById('sec-dynamics').scrollIntoView()")  # the panel shows all of it
    page.wait_for_timeout(400)
    page.screenshot(path=str(out))


def shoot_compare(page, base_url: str, run_a: str, run_b: str, title: str, out, **extra) -> None:
    """Two runs side by side coloured by agreement, the summary (CKA, classes differing most) above,
    a point of the least agreeing class hovered in A and marked in B."""
    page.goto(f"{base_url}/view?{urlencode({'a': run_a, 'b': run_b, 'title': title, 'debug': '1', **extra})}")
    wait_for(page, "window.__compare && window.__compare.a.state === 'ready' && window.__compare.b.state === 'ready' "
                   "&& window.__compare.answer", "the two views and their comparison")
    wait_for(page, "window.__compare.a.colorBy === 'agreement' && window.__compare.b.colorBy === 'agreement'",
             "the agreement colouring")
    wait_for(page, "!!document.querySelector('#compare-summary #compare-cka')", "the CKA in the summary")
    wait_for(page, "!!document.querySelector('#compare-summary #compare-classes')", "the classes that differ most")
    answer = page.evaluate("({rows: window.__compare.answer.rows_a, agreement: window.__compare.answer.agreement})")
    row = min(zip(answer["agreement"], answer["rows"]))[1]
    x, y = page.evaluate(f"__compare.a.screenOf({row})")
    page.mouse.move(x, y)
    wait_for(page, "window.__compare.a.hovered >= 0 && Array.from(window.__compare.b.flags).some((f) => f & 4)",
             "the hovered sample marked in the other view")
    page.wait_for_timeout(400)
    page.screenshot(path=str(out))


def dynamics_shots(docs: Path, epochs: int) -> None:
    """Run the demo into a temporary directory and write docs/dynamics.png and docs/compare.png from it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        subprocess.run([sys.executable, str(REPO / "examples" / "demo.py"), "--root", str(root), "--epochs",
                        str(epochs), "--no-serve"], check=True, cwd=REPO)
        runs = [open_run(d) for d in iter_run_dirs(root)]
        # the demo's seed 0 holds the aligned fits (Procrustes); seed 1 does not
        first = next(r for r in runs if any(red.quality.get("align") for e in r.embeddings for red in e.reductions))
        second = next(r for r in runs if r.run_id != first.run_id)
        last = max((e for e in first.embeddings if e.reductions), key=lambda e: e.step)
        title = last.title
        from playwright.sync_api import sync_playwright
        with Server(root, Path(tmp) / "server.log") as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 860})
            shoot_dynamics(page, server.url, first.run_id, last.id, docs / "dynamics.png", method="pacmap")
            page = browser.new_page(viewport={"width": 1440, "height": 760})
            shoot_compare(page, server.url, first.run_id, second.run_id, title, docs / "compare.png", thumbs="off")
            browser.close()
    print(f"wrote {docs / 'dynamics.png'} and {docs / 'compare.png'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "docs" / "viewer.png"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dynamics", action="store_true", help="write dynamics.png and compare.png instead")
    parser.add_argument("--docs", default=str(REPO / "docs"), help="where --dynamics writes its images")
    args = parser.parse_args()
    if args.dynamics:
        dynamics_shots(Path(args.docs), args.epochs)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        subprocess.run([sys.executable, str(REPO / "examples" / "digits_cnn.py"), "--root", str(root),
                        "--epochs", str(args.epochs), "--method", "pca"], check=True, cwd=REPO)
        run_dir = next(iter_run_dirs(root))
        subprocess.run([sys.executable, "-m", "tracker_sdk.cli", "analyze", str(run_dir), "--all",
                        "--split-column", "split"], check=True, cwd=REPO)
        run = open_run(run_dir)
        last = max(run.embeddings, key=lambda e: e.step)
        from playwright.sync_api import sync_playwright
        with Server(root, Path(tmp) / "server.log") as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 860})
            page.goto(f"{server.url}/view?run={run.run_id}&emb={last.id}&color=label&thumbs=on&top=label_disagreement&topn=15&debug=1")
            deadline = time.monotonic() + 120
            while not page.evaluate("!!(window.__viewer && window.__viewer.state === 'ready' && window.__viewer.spriteOn)"):
                if time.monotonic() > deadline:
                    raise SystemExit(f"viewer not ready: {page.evaluate('window.__viewer && window.__viewer.error')}")
                time.sleep(0.1)
            page.click("#top-select")
            x, y = page.evaluate("__viewer.screenOf(__viewer.topIndices[0])")
            page.mouse.click(x, y)
            page.wait_for_timeout(800)
            page.mouse.move(x, y)
            page.wait_for_timeout(600)
            page.screenshot(path=args.out)
            browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
