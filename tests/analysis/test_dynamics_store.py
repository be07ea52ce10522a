"""analyze_dynamics through the Experiment API: what it stores (columns, records) says what was planted."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tracker_sdk import Experiment
from tracker_sdk.analysis import dynamics
from tracker_sdk.analysis.dynamics_store import CONTINUITY_COLUMN, JACCARD_COLUMN, TRUST_COLUMN
from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.runformat import open_run

N, MOVED = 400, 30


def _digits():
    x, y = load_digits(return_X_y=True)
    return x[:N].astype(np.float32), y[:N]


def _planted_steps():
    """Four steps of the same rows; at step 2, three points of each class c jump onto points of class c + 5."""
    x, y = _digits()
    rng = np.random.default_rng(0)
    moved = x.copy()
    planted = []
    for c in range(10):
        rows = np.flatnonzero(y == c)[:MOVED // 10]
        targets = rng.choice(np.flatnonzero(y == (c + 5) % 10), size=rows.size, replace=False)
        moved[rows] = x[targets] + rng.normal(scale=0.05, size=(rows.size, x.shape[1]))
        planted.extend(rows)
    return [x, x, moved, moved], y, np.array(planted)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    steps, y, threes = _planted_steps()
    with Experiment(project_name="p", url=str(tmp_path_factory.mktemp("runs")), quiet=True) as exp:
        for s, x in enumerate(steps):
            exp.log_embedding(x, y.tolist(), title="h", group="g", step=s, reduce="pca", reduce_background=False)
        result = exp.analyze_dynamics("g", k=10)
    return exp.run_dir, result, threes


def test_planted_move_is_the_lowest_knn_jaccard_at_its_step_only(planted_run):
    run_dir, result, threes = planted_run
    run = open_run(run_dir)
    embs = sorted((e for e in run.embeddings if e.group == "g"), key=lambda e: e.step)
    assert JACCARD_COLUMN not in embs[0].columns  # no previous step
    at_move = np.array(embs[2].columns[JACCARD_COLUMN])
    assert set(np.argsort(at_move, kind="stable")[:MOVED]) == set(threes)
    assert at_move[threes].max() < np.delete(at_move, threes).min()
    for s in (1, 3):  # identical to their previous step
        np.testing.assert_array_equal(embs[s].columns[JACCARD_COLUMN], np.ones(N))
    record = run.dynamics("g")
    assert record == result.record and record.steps == [0, 1, 2, 3] and record.k_neighbors == 10
    assert record.embedding_ids == [e.id for e in embs] and record.n_shared == N
    assert record.silhouette_rows == N  # exact: every row (a seeded sample only past EXACT_ROWS)
    assert set(record.changes[1].changed_most) <= set(threes) and len(record.changes[1].changed_most) == 10
    assert [c.mean for c in (record.changes[0], record.changes[2])] == [1.0, 1.0] and record.changes[1].mean < 1.0
    cka = np.array(record.cka)
    np.testing.assert_allclose(np.diag(cka), 1.0, atol=1e-5)
    assert cka[0, 1] == pytest.approx(1.0, abs=1e-5) and cka[1, 2] < 0.999
    # classes separate less once strangers joined them, and change only at that step
    sep = np.array(record.separation)
    assert sep.shape == (4, 10) and sorted(record.classes) == list(range(10))
    assert (sep[2] < sep[1]).all()
    np.testing.assert_array_equal(sep[0], sep[1])
    np.testing.assert_array_equal(sep[2], sep[3])


def test_every_stored_projection_gets_its_own_trust_columns(planted_run):
    run_dir, result, _ = planted_run
    run = open_run(run_dir)
    steps, _, _ = _planted_steps()
    for emb in sorted((e for e in run.embeddings if e.group == "g"), key=lambda e: e.step):
        (reduction,) = emb.reductions
        trust = reduction.trust
        assert set(trust) == {TRUST_COLUMN, CONTINUITY_COLUMN}
        expected = dynamics.trust_scores(steps[emb.step], reduction.coords, k=10)
        np.testing.assert_allclose(trust[TRUST_COLUMN], expected.trust_point)
        np.testing.assert_allclose(trust[CONTINUITY_COLUMN], expected.continuity_point)
        assert reduction.trust_scores["trustworthiness"] == pytest.approx(expected.trustworthiness)
        assert reduction.trust_scores["continuity"] == pytest.approx(expected.continuity)
        assert TRUST_COLUMN not in emb.columns  # a projection's own, not the embedding's
        assert result.trust[reduction.id].trustworthiness == pytest.approx(expected.trustworthiness)


def test_a_projection_that_keeps_every_neighbourhood_has_trust_one(tmp_path):
    rng = np.random.default_rng(0)
    flat = np.hstack([rng.normal(size=(120, 2)), np.zeros((120, 4))]).astype(np.float32)
    with Experiment(project_name="p", url=str(tmp_path), quiet=True) as exp:
        for s in range(2):
            exp.log_embedding(flat * (s + 1), [i % 2 for i in range(120)], group="g", step=s, reduce="pca",
                              reduce_background=False)
        exp.analyze_dynamics("g", k=5)
    for emb in open_run(exp.run_dir).embeddings:
        (reduction,) = emb.reductions
        np.testing.assert_allclose(reduction.trust[TRUST_COLUMN], 1.0)
        np.testing.assert_allclose(reduction.trust[CONTINUITY_COLUMN], 1.0)


def test_steps_joined_on_an_id_column(tmp_path):
    x, y = _digits()
    order = np.random.default_rng(1).permutation(N)[: N - 50]  # step 1: shuffled, 50 rows dropped
    with Experiment(project_name="p", url=str(tmp_path), quiet=True) as exp:
        exp.log_embedding(x, y.tolist(), group="g", step=0, reduce=None, metadata={"sid": [f"s{i}" for i in range(N)]})
        exp.log_embedding(x[order], y[order].tolist(), group="g", step=1, reduce=None,
                          metadata={"sid": [f"s{i}" for i in order]})
        record = exp.analyze_dynamics("g", k=10, id_column="sid").record
    assert record.n_shared == N - 50 and record.id_column == "sid"
    (_, second) = open_run(exp.run_dir).embeddings
    # the same vectors once joined on the ids (neighbours are searched among the shared rows)
    assert record.changes[0].mean == 1.0
    np.testing.assert_array_equal(second.columns[JACCARD_COLUMN], np.ones(N - 50))
    assert record.cka[0][1] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"group": "nope"}, r"group 'nope' has no embeddings in run .*; its groups are \['g', 'one'\]"),
    ({"group": "g", "k": 40}, r"k must be below n_samples / 2 = 30 for trustworthiness; got 40"),
    ({"group": "g", "label_column": "kind"}, r"label_column 'kind' is not a metadata column"),
    ({"group": "g", "id_column": "sid"}, r"id_column 'sid' is not a metadata column"),
    ({"group": "one"}, r"group 'one' has 1 step; dynamics compare at least two steps"),
])
def test_bad_arguments_raise_before_anything_is_written(tmp_path, kwargs, match):
    rng = np.random.default_rng(2)
    with Experiment(project_name="p", url=str(tmp_path), quiet=True) as exp:
        for s in range(2):
            exp.log_embedding(rng.normal(size=(60, 5)), [i % 3 for i in range(60)], group="g", step=s, reduce="pca",
                              reduce_background=False)
        exp.log_embedding(rng.normal(size=(60, 5)), [i % 3 for i in range(60)], group="one", step=0, reduce=None)
        before = len(open_run(exp.run_dir).records)
        with pytest.raises(InvalidArgumentError, match=match):
            exp.analyze_dynamics(**kwargs)
        assert len(open_run(exp.run_dir).records) == before


def test_layers_logged_at_each_step_get_their_layer_by_layer_cka(tmp_path, capsys):
    """A rotated and scaled copy of a layer scores 1; an independent layer scores near 0; a layer
    with another row count, or missing at a step, is None there."""
    from scipy.stats import ortho_group

    from tracker_sdk.cli import main as cli_main

    x, y = _digits()
    rotation = ortho_group.rvs(x.shape[1], random_state=0).astype(np.float32)
    rng = np.random.default_rng(1)
    with Experiment(project_name="p", url=str(tmp_path), quiet=True) as exp:
        for step in range(3):
            grown = x + step * rng.normal(scale=0.5, size=x.shape).astype(np.float32)
            layers = {"conv": grown, "copy": 3.0 * grown @ rotation,
                      "noise": rng.standard_normal((N, 32), dtype=np.float32)}
            if step == 1:
                del layers["noise"]
            exp.log_activations(layers, y.tolist(), group="net", step=step, reduce=None)
        record = exp.analyze_dynamics("net", title="conv", k=10).record
    assert record.layers == ["conv", "copy", "noise"] and len(record.layer_cka) == 3
    for s, matrix in enumerate(record.layer_cka):
        assert matrix[0][1] == pytest.approx(1.0, abs=1e-4) and matrix[0][0] == pytest.approx(1.0, abs=1e-4)
        if s == 1:
            assert matrix[0][2] is None and matrix[2][2] is None
        else:
            assert abs(matrix[0][2]) < 0.1 and matrix[0][2] == matrix[2][0]
    assert open_run(exp.run_dir).dynamics("net", "conv") == record
    assert cli_main(["dynamics", str(exp.run_dir), "--group", "net", "--title", "conv"]) == 0
    out = capsys.readouterr().out
    assert "layer CKA at step 2:" in out and "copy: 1.00 1.00" in out
