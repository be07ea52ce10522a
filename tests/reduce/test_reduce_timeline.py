"""One projection for a whole group: fit on one step, place every other step with it."""

import numpy as np
import pytest

from reduce_helpers import FAST
from tracker_sdk import Experiment, InvalidArgumentError, open_run
from tracker_sdk.cli import main as cli


def drifting(steps=5, k=4, n_per=30, d=24, seed=0):
    """Clusters whose centres drift a little each step; row 0 never changes."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 8
    drift = rng.normal(size=(k, d)) * 0.3
    noise = rng.normal(size=(k * n_per, d))
    labels = [int(i) for i in np.repeat(np.arange(k), n_per)]
    out = []
    for s in range(steps):
        X = (np.repeat(centres + s * drift, n_per, axis=0) + noise).astype(np.float32)
        X[0] = np.arange(d, dtype=np.float32) / d  # a point whose vector is the same at every step
        out.append(X)
    return out, labels


def log_group(root, steps, labels, group="g"):
    exp = Experiment(project_name="t", url=str(root))
    for s, X in enumerate(steps):
        exp.log_embedding(X, labels, title="layer", group=group, step=s, reduce=None)
    return exp


def timeline_coords(run, timeline):
    by_step = {}
    for emb in run.embeddings:
        for red in emb.reductions:
            if red.timeline == timeline:
                by_step[emb.step] = (np.asarray(red.coords), red)
    return [by_step[s] for s in sorted(by_step)]


@pytest.mark.parametrize("method", ["pca", "pacmap"])
def test_unchanged_point_stays_and_clusters_move_smoothly(runs_root, method):
    steps, labels = drifting()
    exp = log_group(runs_root, steps, labels)
    params = FAST[method] if method != "pca" else {}
    timeline = exp.reduce_group("g", method=method, fit_on="last", background=False, **params)
    exp.end()
    coords = timeline_coords(open_run(exp.run_dir), timeline)
    assert len(coords) == 5
    last = [r for _, r in coords][-1]
    assert all(r.fitted_on.step == 4 and r.fitted_on.embedding_id == last.embedding_id for _, r in coords)
    # the unchanged point lands on the same coordinates at every step
    assert all(np.array_equal(c[0], coords[-1][0][0]) for c, _ in coords)
    lab = np.array(labels)
    centres = np.array([[c[lab == k].mean(axis=0) for k in range(4)] for c, _ in coords])  # (step, cluster, xy)
    moves = np.linalg.norm(np.diff(centres, axis=0), axis=2)                                 # (step-1, cluster)
    spread = np.linalg.norm(centres[-1][:, None] - centres[-1][None], axis=2).max()
    assert moves.max() < 0.25 * spread, "centres jump between steps"
    assert moves.max() < 3 * np.median(moves) + 1e-6, "drift is not smooth"


def test_fit_on_all_and_on_a_step(runs_root):
    steps, labels = drifting(steps=3)
    exp = log_group(runs_root, steps, labels)
    all_id = exp.reduce_group("g", method="pca", fit_on="all", background=False)
    one_id = exp.reduce_group("g", method="pca", fit_on=1, background=False)
    exp.end()
    run = open_run(exp.run_dir)
    fitted_all = [r for _, r in timeline_coords(run, all_id)]
    assert {r.fitted_on.step for r in fitted_all} == {"all"} and len(fitted_all[0].fitted_on.embedding_ids) == 3
    assert {r.fitted_on.step for _, r in timeline_coords(run, one_id)} == {1}


def test_bad_timeline_arguments(runs_root):
    steps, labels = drifting(steps=2)
    exp = log_group(runs_root, steps, labels)
    with pytest.raises(InvalidArgumentError, match="fit_on step 9 is not a step of this group; its steps: \\[0, 1\\]"):
        exp.reduce_group("g", method="pca", fit_on=9)
    with pytest.raises(InvalidArgumentError, match="fit_on must be 'last', 'all', 'each' or a step"):
        exp.reduce_group("g", method="pca", fit_on="first")
    with pytest.raises(InvalidArgumentError, match="no embeddings in group 'h'; its groups: \\['g'\\]"):
        exp.reduce_group("h", method="pca")
    exp.end()
    assert not any(e.reductions for e in open_run(exp.run_dir).embeddings)


def test_cli_recomputes_a_group_without_touching_raw_vectors(runs_root, capsys):
    steps, labels = drifting(steps=3)
    exp = log_group(runs_root, steps, labels)
    first = exp.reduce_group("g", method="pca", n_components=3, background=False)
    exp.end()
    before = open_run(exp.run_dir)
    raw = {e.id: (e.record, np.array(e.vectors)) for e in before.embeddings}
    assert cli(["reduce", str(exp.run_dir), "--group", "g", "--method", "pacmap", "--fit-on", "0",
                "--random-state", "0", "--param", "num_iters=60"]) == 0
    out = capsys.readouterr().out
    assert "pacmap 2d of 'layer' step 2 (fitted on step 0)" in out and "3 reductions in timeline" in out
    after = open_run(exp.run_dir)
    for emb in after.embeddings:
        assert emb.record == raw[emb.id][0] and np.array_equal(emb.vectors, raw[emb.id][1])
        methods = sorted((r.method, r.timeline == first) for r in emb.reductions)
        assert methods == [("pacmap", False), ("pca", True)]
    after.verify()


def test_cli_refuses_a_run_being_written(runs_root, capsys):
    steps, labels = drifting(steps=1)
    exp = log_group(runs_root, steps, labels)
    assert cli(["reduce", str(exp.run_dir), "--group", "g", "--method", "pca"]) == 2
    assert "is being written by another process" in capsys.readouterr().err
    exp.end()
