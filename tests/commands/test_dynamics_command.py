"""`tracker dynamics RUN --group G`: computes once, stores, then prints from what is stored."""

import numpy as np
from sklearn.datasets import load_digits

from tracker_sdk import Experiment
from tracker_sdk.cli import main as cli
from tracker_sdk.runformat import open_run


def _run_with_planted_change(root):
    x, y = load_digits(return_X_y=True)
    x, y = x[:300].astype(np.float32), y[:300]
    moved = x.copy()
    moved[:5] = x[y == 0][-5:] + 0.01  # rows 0..4 jump onto the last five zeros at step 2
    with Experiment(project_name="p", url=str(root), quiet=True) as exp:
        for step, vectors in enumerate([x, x, moved]):
            exp.log_embedding(vectors, y.tolist(), title="h", group="g", step=step, reduce="pca",
                              reduce_background=False)
    return exp.run_dir, y


def test_dynamics_computes_stores_and_prints_the_summary(tmp_path, capsys):
    run_dir, y = _run_with_planted_change(tmp_path)
    assert cli(["dynamics", str(run_dir), "--group", "g", "--k", "8", "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "dynamics of group 'g': 3 steps, 300 shared points, k=8" in out
    lines = out.splitlines()
    pair = lines[lines.index("changed most from step 1 to 2 (row (label) Jaccard):") + 1]
    listed = [int(item.split()[0]) for item in pair.strip().split(", ")]
    assert sorted(listed) == [0, 1, 2, 3, 4]
    assert pair.strip().split(", ")[0] == f"{listed[0]} ({y[listed[0]]}) 0.00"  # none of its neighbours kept
    assert "   0 -> 1     1.000     1.000  (1.000)" in out  # identical steps
    assert "class separation per step" in out
    run = open_run(run_dir)
    record = run.dynamics("g")
    assert record.k_neighbors == 8 and record.steps == [0, 1, 2]
    for emb in run.embeddings:  # each projection's stored global scores are printed per step
        scores = emb.reductions[0].trust_scores
        assert (f"  step {emb.step}: pca 3d {scores['trustworthiness']:.3f} / {scores['continuity']:.3f}"
                in lines)

    # a second call prints the stored record without computing again
    assert cli(["dynamics", str(run_dir), "--group", "g", "--k", "8", "--top", "5"]) == 0
    assert capsys.readouterr().out == out
    assert len(open_run(run_dir).dynamics_records) == 1
    # other settings compute again
    assert cli(["dynamics", str(run_dir), "--group", "g", "--k", "5"]) == 0
    assert "k=5" in capsys.readouterr().out and len(open_run(run_dir).dynamics_records) == 2


def test_dynamics_of_a_missing_group_names_the_groups(tmp_path, capsys):
    run_dir, _ = _run_with_planted_change(tmp_path)
    assert cli(["dynamics", str(run_dir), "--group", "nope"]) == 2
    err = capsys.readouterr().err
    assert "group 'nope' has no embeddings" in err and "its groups are ['g']" in err


def test_dynamics_given_a_project_lists_its_runs(tmp_path, capsys):
    run_dir, _ = _run_with_planted_change(tmp_path)
    assert cli(["dynamics", str(run_dir.parent), "--group", "g"]) == 2
    assert f"tracker dynamics {run_dir} --group g" in capsys.readouterr().err
