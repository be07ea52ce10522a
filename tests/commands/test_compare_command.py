"""`tracker compare RUN_A RUN_B --title T`: agreement, CKA and the classes that differ most."""

import numpy as np
from sklearn.datasets import load_digits

from tracker_sdk import Experiment
from tracker_sdk.cli import main as cli


def _digits():
    x, y = load_digits(return_X_y=True)
    return x[:500].astype(np.float32), y[:500]


def _log(root, vectors, labels, **metadata):
    with Experiment(project_name="p", url=str(root), quiet=True) as exp:
        exp.log_embedding(vectors, labels, title="h", step=3, reduce=None, metadata=metadata or None)
    return exp.run_dir


def _agreement_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("k-NN agreement"))


def test_a_run_compared_with_itself_agrees_everywhere(tmp_path, capsys):
    x, y = _digits()
    run_dir = _log(tmp_path, x, y.tolist())
    assert cli(["compare", str(run_dir), str(run_dir), "--title", "h"]) == 0
    out = capsys.readouterr().out
    assert "500 shared points, k=10" in out
    assert _agreement_line(out) == "k-NN agreement: mean 1.000, median 1.000, 100.0% of points with the same neighbours"
    assert "linear CKA: 1.000" in out


def test_merged_classes_are_listed_first(tmp_path, capsys):
    x, y = _digits()
    merged = x.copy()
    both = np.isin(y, [3, 5])
    for c in (3, 5):  # both classes moved onto their common centre
        merged[y == c] += x[both].mean(axis=0) - x[y == c].mean(axis=0)
    run_a = _log(tmp_path / "a", x, y.tolist())
    run_b = _log(tmp_path / "b", merged, y.tolist())
    assert cli(["compare", str(run_a), str(run_b), "--title", "h", "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    listed = out[out.index("classes whose neighbourhoods differ most ('label', mean agreement, points):") + 1:]
    assert len(listed) == 3 and {int(line.split()[0]) for line in listed[:2]} == {3, 5}


def test_runs_joined_on_an_id_column(tmp_path, capsys):
    x, y = _digits()
    order = np.random.default_rng(0).permutation(500)
    run_a = _log(tmp_path / "a", x, y.tolist(), sid=[f"s{i}" for i in range(500)])
    run_b = _log(tmp_path / "b", x[order], y[order].tolist(), sid=[f"s{i}" for i in order])
    assert cli(["compare", str(run_a), str(run_b), "--title", "h"]) == 0
    shuffled = _agreement_line(capsys.readouterr().out)
    assert cli(["compare", str(run_a), str(run_b), "--title", "h", "--id-column", "sid"]) == 0
    joined = _agreement_line(capsys.readouterr().out)
    assert joined.startswith("k-NN agreement: mean 1.000") and not shuffled.startswith("k-NN agreement: mean 1.000")


def test_unknown_title_and_step_are_named(tmp_path, capsys):
    x, y = _digits()
    run_dir = _log(tmp_path, x, y.tolist())
    assert cli(["compare", str(run_dir), str(run_dir), "--title", "nope"]) == 2
    assert "has no embedding titled 'nope'; its titles are ['h']" in capsys.readouterr().err
    assert cli(["compare", str(run_dir), str(run_dir), "--title", "h", "--step", "7"]) == 2
    assert "has 'h' at steps [3], not at step 7" in capsys.readouterr().err
