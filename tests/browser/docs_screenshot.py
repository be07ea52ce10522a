"""Take docs/viewer.png from a real run: the digits CNN example, PCA shared by all epochs, analysed.

    .venv/bin/python tests/browser/docs_screenshot.py [--out docs/viewer.png]

Logs examples/digits_cnn.py into a temporary directory, adds the analysis scores with
``tracker analyze``, serves it with ``tracker-server`` and photographs the embedding view in
headless Chromium with a neighbour query and the top label-disagreement points selected.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/: serverprocess
from viewer_runs import CHROMIUM, CHROMIUM_ARGS, REPO, Server  # noqa: E402

from tracker_sdk.runformat import iter_run_dirs, open_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "docs" / "viewer.png"))
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
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
