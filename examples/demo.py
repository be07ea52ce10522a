"""`make demo`: train a small CNN on scikit-learn's digits, log its embeddings, serve the viewer.

Runs examples/digits_cnn.py (penultimate layer every epoch, sprites, one reducer fitted on the
last epoch for the whole group, the group's dynamics: per-point trust of every projection, k-NN
Jaccard and CKA between epochs, class separation), adds PCA fits made at every epoch and aligned
by Procrustes (faithfulness and stability per epoch) and measures their trust too, trains a second
run with another seed and compares the two (per-point k-NN agreement, CKA, classes that differ
most), then serves the run directory with the tracking server and prints the URLs of the
embedding view and of the two runs side by side. Ctrl-C stops the server.
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
    group = digits_cnn.GROUP
    # each epoch fitted on its own, aligned onto the previous one: faithfulness and stability per epoch
    tracker(["reduce", str(run_dir), "--group", group, "--method", "pca", "--fit-on", "each", "--align", "procrustes"])
    tracker(["dynamics", str(run_dir), "--group", group, "--top", "5", "--recompute"])  # trust of the new fits too
    # a second run on the same inputs with another seed: how alike do the two models see the digits?
    other_dir = digits_cnn.run(args.root, epochs=args.epochs, project_name="digits-demo", seed=1)
    tracker(["compare", str(run_dir), str(other_dir), "--title", digits_cnn.LAYER])
    tracker(["ls", args.root])
    run, other = open_run(run_dir), open_run(other_dir)
    last = max((e for e in run.embeddings if e.reductions), key=lambda e: e.step or 0, default=run.embeddings[-1])
    base = f"http://127.0.0.1:{args.port}"
    print(f"\nembedding view:  {base}/view?run={run.run_id}&emb={last.id}&color=trust_point", flush=True)
    print(f"two runs, coloured by agreement: {base}/view?a={run.run_id}&b={other.run_id}&title={digits_cnn.LAYER}\n",
          flush=True)
    if args.no_serve:
        return 0
    from server_stub.app import main as serve
    return serve(["--root", args.root, "--port", str(args.port)])


if __name__ == "__main__":
    sys.exit(main())
