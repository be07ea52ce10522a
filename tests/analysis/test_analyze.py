"""exp.analyze and `tracker analyze`: scores stored as metadata columns that every reader sees."""

import numpy as np
import pytest

from tracker_sdk import Experiment, InvalidArgumentError, RunLockedError, open_run
from tracker_sdk.analysis import analyze
from tracker_sdk.cli import main
from tracker_sdk.runformat.records import ColumnsRecord


def _data(seed=0, n=300):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, 10)) * 8
    labels = rng.integers(0, 3, n)
    x = centres[labels] + rng.standard_normal((n, 10))
    return x.astype(np.float32), labels, rng


def test_exp_analyze_stores_columns_while_the_run_is_open(runs_root):
    x, labels, rng = _data()
    labels = labels.tolist()
    labels[5] = (labels[5] + 1) % 3
    x[7] += 60
    exp = Experiment(project_name="a", url=str(runs_root))
    handle = exp.log_embedding(x, [["label", "split"]] + [[v, "train" if i % 2 else "test"] for i, v in enumerate(labels)],
                               title="feats", step=3)
    [result] = exp.analyze(handle, k=8, split_column="split")
    exp.end()
    emb = open_run(exp.run_dir).embeddings[0]
    columns = emb.columns
    assert list(columns)[:2] == ["label", "split"]
    assert {"outlier_score", "label_disagreement", "split_shift"} <= set(columns)
    assert all(isinstance(v, float) for v in columns["outlier_score"])
    assert int(np.argmax(columns["outlier_score"])) == 7
    assert int(np.argmax(columns["label_disagreement"])) == 5
    np.testing.assert_allclose(columns["split_shift"], result.columns["split_shift"])
    record = [r for r in open_run(exp.run_dir).records if isinstance(r, ColumnsRecord)][0]
    assert record.analysis["k"] == 8 and record.analysis["method"] == "exact"
    assert record.analysis["split_pairs"][0][:2] in (["train", "test"], ["test", "train"])
    assert abs(record.analysis["split_pairs"][0][2]) < 0.2


def test_cli_analyze_on_an_ended_run_and_reanalysis_replaces_columns(runs_root, capsys):
    x, labels, _ = _data(1)
    exp = Experiment(project_name="a", url=str(runs_root))
    exp.log_embedding(x, labels.tolist(), title="one")
    exp.end()
    assert main(["analyze", str(exp.run_dir), "--k", "5"]) == 0
    first = open_run(exp.run_dir).embeddings[0].columns["outlier_score"]
    assert main(["analyze", str(exp.run_dir), "--k", "20", "--outlier", "lof"]) == 0
    out = capsys.readouterr().out
    assert "exact k=20" in out and "outlier_score, label_disagreement" in out
    emb = open_run(exp.run_dir).embeddings[0]
    assert [c["name"] for c in emb.metadata["columns"]] == ["label", "outlier_score", "label_disagreement"]
    assert np.median(emb.columns["outlier_score"]) == pytest.approx(1.0, abs=0.2)  # LOF, not distances
    assert emb.columns["outlier_score"] != first
    assert open_run(exp.run_dir).status == "finished"


def test_cli_asks_which_embedding_when_there_are_several(runs_root, capsys):
    x, labels, _ = _data(2)
    exp = Experiment(project_name="a", url=str(runs_root))
    first = exp.log_embedding(x, labels.tolist(), title="one", step=0)
    exp.log_embedding(x + 1, labels.tolist(), title="two", step=1)
    exp.end()
    assert main(["analyze", str(exp.run_dir)]) == 2
    assert "pick with --embedding ID or use --all" in capsys.readouterr().err
    assert main(["analyze", str(exp.run_dir), "--embedding", first.id[:8], "--split-column", "label"]) == 0
    out = capsys.readouterr().out
    assert first.id in out and out.count("  split ") == 3  # three label values, three pairs
    run = open_run(exp.run_dir)
    assert "split_shift" in run.embeddings[0].columns and "outlier_score" not in run.embeddings[1].columns
    assert main(["analyze", str(exp.run_dir), "--all"]) == 0
    assert all("outlier_score" in e.columns for e in open_run(exp.run_dir).embeddings)


def test_analyze_errors_name_the_problem(runs_root):
    x, labels, _ = _data(3)
    exp = Experiment(project_name="a", url=str(runs_root))
    exp.log_embedding(x, labels.tolist())
    with pytest.raises(RunLockedError, match="being written by another process"):
        analyze(exp.run_dir)  # the live experiment holds the writer: use exp.analyze instead
    with pytest.raises(InvalidArgumentError, match="label_column 'kind' is not a metadata column"):
        exp.analyze(label_column="kind")
    with pytest.raises(InvalidArgumentError, match="embedding 'ffffffff' is not an embedding of this run"):
        exp.analyze("ffffffff")
    exp.end()
    with pytest.raises(RuntimeError, match="has ended"):
        exp.analyze()
    run = open_run(exp.run_dir)
    [result] = analyze(run.embeddings[0], label_column=None, k=4)
    assert list(result.columns) == ["outlier_score"]
