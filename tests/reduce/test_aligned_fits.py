"""reduce_group(fit_on="each", align=...): every step its own fit, aligned, with faithfulness and stability."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tracker_sdk import Experiment
from tracker_sdk.analysis import dynamics
from tracker_sdk.cli import main as cli
from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.reduce.quality import trustworthiness
from tracker_sdk.runformat import open_run


def _digits(n=200):
    x, y = load_digits(return_X_y=True)
    return x[:n].astype(np.float32), y[:n].tolist()


def _log_steps(exp, steps, labels):
    for s, x in enumerate(steps):
        exp.log_embedding(x, labels, title="h", group="g", step=s, reduce=None)


def _timeline(run_dir):
    embs = sorted(open_run(run_dir).embeddings, key=lambda e: e.step)
    return [emb.reductions[-1] for emb in embs]


def test_identical_steps_aligned_by_procrustes_have_stability_zero(tmp_path):
    x, y = _digits()
    with Experiment(project_name="p", url=str(tmp_path), quiet=True) as exp:
        _log_steps(exp, [x, x, x], y)
        exp.reduce_group("g", method="pca", fit_on="each", align="procrustes", background=False)
    reductions = _timeline(exp.run_dir)
    assert [r.quality["stability"] for r in reductions][0] is None
    assert [r.quality["stability"] for r in reductions][1:] == pytest.approx([0.0, 0.0], abs=1e-4)
    assert {r.quality["align"] for r in reductions} == {"procrustes"} and len({r.timeline for r in reductions}) == 1
    for reduction in reductions:
        assert reduction.fitted_on.embedding_ids == [reduction.embedding_id]
        assert reduction.quality["trustworthiness"] == pytest.approx(trustworthiness(x, reduction.coords), abs=1e-3)  # stored rounded


def test_procrustes_undoes_the_spin_of_separate_fits(tmp_path):
    """Step 1 is step 0 rotated in the original space: its own PCA fit comes out turned or
    mirrored, the aligned one lands back on step 0 (stability ~0); unaligned, the points jump."""
    x, y = _digits()
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(64, 64)))[0].astype(np.float32)
    flipped = x @ rotation
    with Experiment(project_name="p", url=str(tmp_path), quiet=True) as exp:
        _log_steps(exp, [x, flipped], y)
        exp.reduce_group("g", method="pca", fit_on="each", align="procrustes", background=False)
        exp.reduce_group("g", method="pca", fit_on="each", align=None, background=False)
    embs = sorted(open_run(exp.run_dir).embeddings, key=lambda e: e.step)
    aligned = [e.reductions[0] for e in embs]
    raw = [e.reductions[1] for e in embs]
    assert aligned[1].quality["stability"] == pytest.approx(0.0, abs=1e-2)
    np.testing.assert_allclose(aligned[1].coords, aligned[0].coords, atol=1e-2)
    assert raw[1].quality["stability"] == pytest.approx(dynamics.stability(raw[0].coords, raw[1].coords))
    assert raw[0].quality["align"] is None


def test_fit_on_each_through_the_cli(tmp_path, capsys):
    x, y = _digits()
    with Experiment(project_name="p", url=str(tmp_path), quiet=True) as exp:
        _log_steps(exp, [x, x], y)
    assert cli(["reduce", str(exp.run_dir), "--group", "g", "--method", "pca", "--fit-on", "each",
                "--align", "procrustes"]) == 0
    out = capsys.readouterr().out
    assert "stability 0.000" in out and "2 reductions in timeline" in out
    assert [r.quality["align"] for r in _timeline(exp.run_dir)] == ["procrustes", "procrustes"]


def test_steps_joined_on_an_id_column(tmp_path):
    """Step 1 holds step 0's rows shuffled: joined on the ids its aligned fit lands on step 0."""
    x, y = _digits()
    order = np.random.default_rng(1).permutation(len(x))
    ids = [f"s{i}" for i in range(len(x))]
    with Experiment(project_name="p", url=str(tmp_path), quiet=True) as exp:
        exp.log_embedding(x, y, title="h", group="g", step=0, reduce=None, metadata={"sid": ids})
        exp.log_embedding(x[order], [y[i] for i in order], title="h", group="g", step=1, reduce=None,
                          metadata={"sid": [ids[i] for i in order]})
        exp.log_embedding(x[:150], y[:150], title="h", group="g", step=2, reduce=None, metadata={"sid": ids[:150]})
        exp.reduce_group("g", method="pca", fit_on="each", align="procrustes", id_column="sid", background=False)
        with pytest.raises(InvalidArgumentError, match=r"the steps hold \[150, 200\] rows \(or join them on an id"):
            exp.reduce_group("g", method="pca", fit_on="each", align="procrustes", background=False)
        with pytest.raises(InvalidArgumentError, match="id_column joins the steps of aligned fits; it needs align="):
            exp.reduce_group("g", method="pca", fit_on="each", id_column="sid", background=False)
    first, second, third = _timeline(exp.run_dir)
    assert second.quality["stability"] == pytest.approx(0.0, abs=1e-3)
    np.testing.assert_allclose(second.coords[np.argsort(order)], first.coords, atol=1e-3)
    # the third step's own fit (150 rows) is aligned on the 150 ids it shares with the second
    assert 0.0 < third.quality["stability"] < np.abs(first.coords).mean()


@pytest.mark.parametrize("kwargs, match", [
    ({"fit_on": "last", "align": "procrustes"}, r"align='procrustes' aligns separate fits, so it needs fit_on='each'"),
    ({"fit_on": "each", "align": "rotate"}, r"align must be one of \('procrustes', 'aligned_umap'\) or None; got 'rotate'"),
    ({"fit_on": "each", "align": "aligned_umap"}, r"align='aligned_umap' needs method 'umap'; got 'pca'"),
    ({"fit_on": "every"}, r"fit_on must be 'last', 'all', 'each' or a step"),
])
def test_bad_alignment_settings_are_refused_before_any_job(tmp_path, kwargs, match):
    x, y = _digits(60)
    with Experiment(project_name="p", url=str(tmp_path), quiet=True) as exp:
        _log_steps(exp, [x, x], y)
        with pytest.raises(InvalidArgumentError, match=match):
            exp.reduce_group("g", method="pca", background=False, **kwargs)
    assert all(not e.reductions for e in open_run(exp.run_dir).embeddings)


def test_aligned_umap_fits_all_steps_with_stability(tmp_path):
    """AlignedUMAP relates the steps by their shared ids (step 1 lacks 30 rows of step 0)."""
    pytest.importorskip("umap")
    x, y = _digits(150)
    ids = [f"s{i}" for i in range(150)]
    with Experiment(project_name="p", url=str(tmp_path), quiet=True) as exp:
        exp.log_embedding(x, y, title="h", group="g", step=0, reduce=None, metadata={"sid": ids})
        exp.log_embedding(x[30:] + 0.5, y[30:], title="h", group="g", step=1, reduce=None, metadata={"sid": ids[30:]})
        exp.reduce_group("g", method="umap", fit_on="each", align="aligned_umap", id_column="sid", background=False,
                         n_epochs=30, random_state=0)
    first, second = _timeline(exp.run_dir)
    assert first.quality["stability"] is None and first.quality["align"] == "aligned_umap"
    assert second.coords.shape == (120, 2)
    rows = dynamics.align_rows(ids, ids[30:])
    assert second.quality["stability"] == pytest.approx(dynamics.stability(first.coords, second.coords, rows=rows))
    assert second.quality["trustworthiness"] > 0.8
