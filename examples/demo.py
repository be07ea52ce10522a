"""`make demo`: log a small embedding run offline and list it (grows with each issue)."""

import argparse

import numpy as np
from sklearn.datasets import load_digits

from tracker_sdk import Experiment
from tracker_sdk.cli import main as tracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default="./tracker-runs")
    parser.add_argument("--port", type=int, default=8470)
    args = parser.parse_args()
    digits = load_digits()
    with Experiment(project_name="digits-demo", url=args.root) as exp:
        exp.log_parameters({"dataset": "sklearn digits", "n": len(digits.target)})
        exp.log_embedding(digits.data, digits.target.tolist(), title="pixels", group="raw", step=0)
    tracker(["ls", args.root])


if __name__ == "__main__":
    main()
