"""log_embedding(reduce=...), reuse of a fitted reducer, and the background worker."""

import logging

import numpy as np
import pytest

from reduce_helpers import ExitingReducer, RaisingReducer, clusters
from tracker_sdk import Experiment, InvalidArgumentError, open_run
from tracker_sdk.reduce import PCAReducer, get_reducer


def test_default_is_3d_pca_with_explained_variance_and_quality(runs_root):
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root))
    exp.log_embedding(X, labels, title="t")
    exp.end()
    (emb,) = open_run(exp.run_dir).embeddings
    (red,) = emb.reductions
    assert red.method == "pca" and red.n_components == 3 and red.fitted_on is None
    assert np.asarray(red.coords).shape == (len(X), 3)
    ratios = red.quality["explained_variance_ratio"]
    assert len(ratios) == 3 and ratios[0] >= ratios[1] >= ratios[2] > 0
    assert red.quality["trustworthiness"] > 0.9 and red.quality["knn_label_agreement"] > 0.95
    assert red.quality["k"] == 10 and red.quality["sample"] == len(X)


def test_no_reduction_and_tiny_embeddings(runs_root):
    exp = Experiment(project_name="p", url=str(runs_root))
    exp.log_embedding(np.ones((5, 4)), list("abcde"), reduce=None)
    exp.log_embedding(np.ones((2, 4)), list("ab"))  # too few rows for a picture: skipped quietly
    exp.end()
    assert [len(e.reductions) for e in open_run(exp.run_dir).embeddings] == [0, 0]


def test_bad_reduce_is_refused_before_anything_is_written(runs_root):
    exp = Experiment(project_name="p", url=str(runs_root))
    with pytest.raises(InvalidArgumentError, match="reduce must be a reducer name .*got int 3"):
        exp.log_embedding(np.ones((5, 4)), list("abcde"), reduce=3)
    with pytest.raises(InvalidArgumentError, match="unknown reducer 'umapp'; available"):
        exp.log_embedding(np.ones((5, 4)), list("abcde"), reduce=["pca", "umapp"])
    with pytest.raises(InvalidArgumentError, match="reduce_background must be True, False or None"):
        exp.log_embedding(np.ones((5, 4)), list("abcde"), reduce_background="yes")
    exp.end()
    assert open_run(exp.run_dir).embeddings == []


def test_a_fitted_reducer_transforms_instead_of_refitting(runs_root):
    X, labels = clusters(d=30)
    reducer = PCAReducer(n_components=2).fit(X)
    components = reducer.components_.copy()
    exp = Experiment(project_name="p", url=str(runs_root))
    exp.log_embedding(X + 1.0, labels, reduce=reducer, step=1)
    exp.end()
    (red,) = open_run(exp.run_dir).embeddings[0].reductions
    assert np.array_equal(reducer.components_, components)
    assert red.fitted_on.embedding_id is None and red.fitted_on.step is None
    assert np.allclose(red.coords, reducer.transform(X + 1.0), atol=1e-5)


@pytest.mark.parametrize("background", [False, True])
def test_one_instance_is_fitted_once_and_reused_across_steps(runs_root, background):
    X, labels = clusters(d=30)
    reducer = get_reducer("pca", n_components=2)
    exp = Experiment(project_name="p", url=str(runs_root))
    handles = [exp.log_embedding(X + 0.1 * s, labels, group="g", step=s, reduce=reducer,
                                 reduce_background=background) for s in range(3)]
    exp.end()
    assert reducer.is_fitted  # also when it was fitted in the worker process
    run = open_run(exp.run_dir)
    reds = [e.reductions[0] for e in run.embeddings]
    assert reds[0].fitted_on is None
    assert all(r.fitted_on.embedding_id == handles[0].id and r.fitted_on.step == 0 for r in reds[1:])
    assert len({r.timeline for r in reds}) == 1 and reds[0].timeline
    assert np.allclose(reds[2].coords, reducer.transform(X + 0.2), atol=1e-4)


def test_background_worker_runs_nonlinear_methods(runs_root):
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root))
    exp.log_embedding(X, labels, reduce=["pca", get_reducer("pacmap", num_iters=60, random_state=0)])
    assert exp._reduction_session.process is not None  # pacmap went to the worker process
    exp.end()
    (emb,) = open_run(exp.run_dir).embeddings
    assert sorted(r.method for r in emb.reductions) == ["pacmap", "pca"]
    assert min(r.quality["trustworthiness"] for r in emb.reductions) > 0.8


def test_crashing_reducers_are_reported_and_leave_the_embedding_usable(runs_root, caplog, monkeypatch):
    monkeypatch.setenv("TRACKER_REDUCE_KEEP_WARM", "0")  # a private worker: its exit code is known (shared: test_shared_worker)
    X, labels = clusters()
    exp = Experiment(project_name="p", url=str(runs_root))
    with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
        exp.log_embedding(X, labels, title="a", reduce=[ExitingReducer(), RaisingReducer(), "pca"],
                          reduce_background=True)
        exp.log_embedding(X, labels, title="b", reduce=RaisingReducer(), reduce_background=False)
        exp.end()
    text = caplog.text
    assert "reduction pca of 'a' failed: the reduction worker process died (exit code 3)" in text
    assert "MemoryError: pretend the projection ran out of memory" in text
    assert "3 reduction(s) failed" in text
    run = open_run(exp.run_dir)
    assert run.status == "finished"
    a, b = run.embeddings
    assert [r.method for r in a.reductions] == ["pca"]  # the worker restarted after the crash
    assert b.reductions == [] and np.array_equal(b.vectors, X)
    run.verify()
