"""Train a small CNN on scikit-learn's bundled 8x8 digits and log its penultimate layer every epoch.

Each epoch logs the 64-d penultimate activations of all 1,797 digits as one step of the group
"digits-cnn" (true label, predicted label, correctness and train/test split as metadata; the
digits themselves as sprites). At the end one reducer is fitted on the last epoch and reused
for every epoch, so the viewer can scrub through training on a fixed map.

    python examples/digits_cnn.py --root ./tracker-runs --epochs 6
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from tracker_sdk import Experiment
from tracker_sdk.collect import ActivationCollector, list_layers

GROUP = "digits-cnn"
LAYER = "penultimate"


def build_model():
    import torch.nn as nn
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 16, kernel_size=3, padding=1)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(16, 32, kernel_size=3, padding=1)),
        ("relu2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(32 * 4 * 4, 64)),
        (LAYER, nn.ReLU()),
        ("classifier", nn.Linear(64, 10)),
    ]))


def run(root="./tracker-runs", epochs: int = 6, project_name: str = "digits-cnn", method: str | None = "pacmap",
        seed: int = 0, batch_size: int = 64, show_layers: bool = False) -> Path:
    """Train, log every epoch, reduce the group with ``method`` fitted on the last epoch, measure its
    dynamics (``analyze_dynamics``); return the run directory.

    ``method=None`` skips the reduction (the run can be reduced later with ``tracker reduce``).
    """
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this model is tiny: thread hand-offs cost more than they save on a busy CPU
    try:
        return _train_and_log(torch, load_digits(), train_test_split, root, epochs, project_name, method, seed,
                              batch_size, show_layers)
    finally:
        torch.set_num_threads(threads)


def _train_and_log(torch, digits, train_test_split, root, epochs, project_name, method, seed, batch_size, show_layers):
    """The body of run(), with torch limited to one thread."""
    images = digits.images.astype(np.float32) / 16.0          # (1797, 8, 8) in 0-1
    targets = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(np.arange(len(targets)), test_size=0.25, random_state=seed,
                                           stratify=targets)
    split = np.array(["train"] * len(targets), dtype=object)
    split[test_idx] = "test"
    x_all = torch.from_numpy(images).unsqueeze(1)              # (n, 1, 8, 8)
    y_all = torch.from_numpy(targets)

    model = build_model()
    if show_layers:
        list_layers(model, example_input=x_all[:1])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)

    with Experiment(project_name=project_name, url=str(root)) as exp:
        exp.log_parameters({"dataset": "sklearn digits", "n": len(targets), "epochs": epochs, "batch_size": batch_size,
                            "optimizer": "Adam", "lr": 3e-3, "layer": LAYER, "seed": seed})
        started = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            order = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=generator)]
            total = 0.0
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                optimizer.zero_grad()
                loss = loss_fn(model(x_all[batch]), y_all[batch])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            model.eval()
            with ActivationCollector(model, [LAYER], capacity=len(targets)) as collector, torch.no_grad():
                predicted = model(x_all).argmax(dim=1).numpy()
            correct = predicted == targets
            exp.log_metrics({"train_loss": total / len(train_idx),
                             "train_accuracy": float(correct[train_idx].mean()),
                             "test_accuracy": float(correct[test_idx].mean())}, step=epoch, epoch=epoch)
            exp.log_activations(collector, targets.tolist(), image_data=images, image_size=(8, 8), group=GROUP,
                                step=epoch, metadata={"predicted": predicted.tolist(), "correct": correct.tolist(),
                                                      "split": split.tolist()})
            print(f"epoch {epoch + 1}/{epochs}: train loss {total / len(train_idx):.3f}, test accuracy "
                  f"{correct[test_idx].mean():.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
        exp.log_metric("train_seconds", time.perf_counter() - started)
        if method:
            exp.reduce_group(GROUP, method=method, fit_on="last")
        if epochs > 1:  # how the layer changed between epochs, and how far to trust each projection
            change = exp.analyze_dynamics(GROUP, k=10, label_column="label")
            cka = [f"{change.cka[s, s + 1]:.2f}" for s in range(epochs - 1)]
            print(f"CKA of consecutive epochs: {' '.join(cka)} (`tracker dynamics {exp.run_dir} --group {GROUP}`)")
        return exp.run_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="./tracker-runs", help="run directory root (default ./tracker-runs)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--project", default="digits-cnn", help="project name")
    parser.add_argument("--method", default="pacmap", help="reducer fitted on the last epoch ('none' to skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_dir = run(args.root, epochs=args.epochs, project_name=args.project,
                  method=None if args.method.lower() == "none" else args.method, seed=args.seed, show_layers=True)
    print(f"logged {args.epochs} epochs to {run_dir}")


if __name__ == "__main__":
    main()
