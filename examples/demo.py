"""`make demo`: train a small CNN on scikit-learn's digits, log its embeddings, serve the viewer.

Runs examples/digits_cnn.py (penultimate layer every epoch, sprites, one reducer fitted on the
last epoch for the whole group, the group's dynamics), lists the run and prints its dynamics, then serves the run directory with the
tracking server and prints the URL of the embedding view. Ctrl-C stops the server.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import digits_cnn  # noqa: E402  (the example next to this file)

from tracker_sdk.cli import main as tracker  # noqa: E402
from tracker_sdk.runformat import open_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default="./tracker-runs")
    parser.add_argument("--port", type=int, default=8470)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--no-serve", action="store_true", help="log and list the run, do not start the server")
    args = parser.parse_args()
    run_dir = digits_cnn.run(args.root, epochs=args.epochs, project_name="digits-demo")
    tracker(["ls", args.root])
    tracker(["dynamics", str(run_dir), "--group", digits_cnn.GROUP, "--top", "5"])  # stored by run(): only printed
    run = open_run(run_dir)
    last = max((e for e in run.embeddings if e.reductions), key=lambda e: e.step or 0, default=run.embeddings[-1])
    url = f"http://127.0.0.1:{args.port}/view?run={run.run_id}&emb={last.id}"
    print(f"\nembedding view: {url}\n", flush=True)
    if args.no_serve:
        return 0
    from server_stub.app import main as serve
    return serve(["--root", args.root, "--port", str(args.port)])


if __name__ == "__main__":
    sys.exit(main())
