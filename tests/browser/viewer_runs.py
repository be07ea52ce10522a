"""Real logged runs for the browser tests, and a real ``tracker-server`` process to serve them.

Runs are logged through ``tracker_sdk.Experiment`` only: ``log_embedding`` (with sprites),
``reduce_group`` (one PCA shared by every step) and ``analyze`` (score columns); what the
tests compare against is read back with ``open_run``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracker_sdk import Experiment
from tracker_sdk.runformat import open_run

from serverprocess import REPO, ServerProcess  # tests/ is on sys.path

ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Never --disable-gpu or --disable-software-rasterizer: those turn WebGL (SwiftShader) off.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking"]

XSS_LABELS = [
    "<img src=x onerror=window.__xss=1>",
    "<script>window.__xss=2</script>",
    '"><svg onload="window.__xss=3">',
    "plain & <b>bold</b>",
]


@dataclass
class LoggedRun:
    run_id: str
    project: str
    run_dir: Path
    embedding_ids: list = field(default_factory=list)  # one per step
    reduction_ids: list = field(default_factory=list)  # one per step, same timeline
    steps: list = field(default_factory=list)
    vectors: list = field(default_factory=list)  # (n, dim) per step
    coords: list = field(default_factory=list)  # (n, c) per step
    labels: list = field(default_factory=list)
    quality: list = field(default_factory=list)  # the reduction's quality, per step
    columns: list = field(default_factory=list)  # {name: values} per step, analysis columns included
    extra_timelines: list = field(default_factory=list)
    raw_embedding_id: str | None = None


def _sprite_images(n: int, cluster: np.ndarray, size: int = 8) -> np.ndarray:
    """One small RGB image per point: the cluster's colour with a row-dependent bar."""
    base = np.array([[230, 60, 60], [60, 170, 60], [60, 90, 230], [220, 180, 40], [160, 60, 200]], np.uint8)
    img = np.empty((n, size, size, 3), np.uint8)
    img[:] = base[cluster % len(base)][:, None, None, :]
    bar = np.arange(n) % size
    img[np.arange(n), bar, :, :] = 255
    return img


def log_run(root: Path, *, project="viewer", name="demo run", n=600, dim=16, steps=(0, 1, 2), n_components=3,
            clusters=4, labels=None, sprite=False, seed=0, metrics=True, title="penultimate", group="mlp",
            analyze=False, extra_reductions=(), raw_embedding=False) -> LoggedRun:
    """Log one embedding per step, then one PCA fitted on the last step and shared by every step
    (``reduce_group``), and with ``analyze`` the analysis score columns."""
    rng = np.random.default_rng(seed)
    cluster = np.arange(n) % clusters
    centres = rng.normal(0, 1, (clusters, dim)).astype(np.float32)
    centres[:, :3] = 0
    for c in range(clusters):  # well separated in the first three dimensions
        centres[c, c % 3] = 12.0 * (1 if c < 3 else -1)
    noise = rng.normal(0, 1.0, (n, dim)).astype(np.float32)
    label_names = labels or [f"class_{c}" for c in range(clusters)]
    label_list = [label_names[c % len(label_names)] for c in cluster]
    exp = Experiment(url=str(root), project_name=project, experiment_name=name)
    exp.log_parameters({"lr": 0.01, "epochs": len(steps), "optimizer": "adam", "note": name})
    out = LoggedRun(exp.run_id, project, exp.run_dir, steps=list(steps), labels=label_list)
    images = _sprite_images(n, cluster) if sprite else None
    metadata = {"cluster": cluster.tolist(), "noise_norm": np.linalg.norm(noise, axis=1).tolist(),
                "split": ["train" if i % 5 else "test" for i in range(n)]}
    for s_i, step in enumerate(steps):
        drift = (s_i - (len(steps) - 1)) * 0.35  # clusters contract towards their centres over steps
        x = (centres[cluster] * (1.0 + drift * 0.5) + noise * (1.0 - 0.2 * s_i)).astype(np.float32)
        if metrics:
            exp.log_metric("loss", float(1.0 / (s_i + 1)), step=step)
            exp.log_metric("accuracy", float(0.5 + 0.1 * s_i), step=step)
        handle = exp.log_embedding(x, label_list, image_data=images, title=title, group=group, step=step,
                                   metadata=metadata)
        out.embedding_ids.append(handle.id)
        out.vectors.append(x)
    if raw_embedding:  # one more embedding, outside the group, with no projection at all
        out.raw_embedding_id = exp.log_embedding(out.vectors[-1][:50], label_list[:50], title="raw", reduce=None,
                                                metadata={k: v[:50] for k, v in metadata.items()}).id
    timeline = exp.reduce_group(group, title=title, method="pca", fit_on="last", n_components=n_components,
                                background=False)
    for method, comps in extra_reductions:
        out.extra_timelines.append(exp.reduce_group(group, title=title, method=method, fit_on="last",
                                                    n_components=comps, background=False))
    if analyze:
        exp.analyze(label_column="label", split_column="split")
    exp.end()
    run = open_run(out.run_dir)
    run.verify()
    for emb_id in out.embedding_ids:
        emb = run.embedding(emb_id)
        red = next(r for r in emb.reductions if r.timeline == timeline)
        out.reduction_ids.append(red.id)
        out.coords.append(np.array(red.coords))
        out.quality.append(red.quality)
        out.columns.append(emb.columns)
    return out


class Server(ServerProcess):
    """The tracking server serving the browser tests' runs."""

    def __init__(self, root: Path, log_path: Path):
        super().__init__(root, log_path=log_path)

    def view_url(self, run: LoggedRun, step_index: int = 0, **params) -> str:
        from urllib.parse import urlencode
        q = {"run": run.run_id, "emb": run.embedding_ids[step_index], "debug": "1", **params}
        return f"{self.url}/view?{urlencode(q)}"  # debug=1: the page installs window.__viewer
