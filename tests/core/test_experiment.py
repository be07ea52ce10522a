"""The Experiment API: Comet-compatible constructors, everyday calls and log_embedding."""

import math
import time

import numpy as np
import pytest

import tracker_sdk
from tracker_sdk import Experiment, InvalidArgumentError, OfflineExperiment, open_run


def _run(exp):
    return open_run(exp.run_dir)


def test_public_api_is_pinned():
    assert set(tracker_sdk.__all__) >= {"Experiment", "OfflineExperiment", "Embedding", "open_run"}
    for name in tracker_sdk.__all__:
        assert hasattr(tracker_sdk, name), name


def test_comet_constructor_arguments_are_accepted(runs_root, caplog):
    caplog.set_level("DEBUG", logger="tracker_sdk")
    exp = Experiment(api_key="k", project_name="proj", workspace="ws", url=str(runs_root),
                     log_code=False, auto_metric_logging=False, display_summary_level=0)
    exp.set_name("first try")
    exp.end()
    assert "log_code" in caplog.text and "auto_metric_logging" in caplog.text
    run = _run(exp)
    assert run.project == "proj" and run.name == "first try" and run.info["workspace"] == "ws"
    assert len(exp.get_key()) == 32 and run.run_id == exp.get_key()
    assert exp.run_dir == runs_root / "proj" / exp.get_key()


def test_offline_experiment_uses_offline_directory(tmp_path):
    with OfflineExperiment(project_name="p", offline_directory=str(tmp_path / "off")) as exp:
        exp.log_metric("m", 1)
    assert (tmp_path / "off" / "p" / exp.get_key() / "run.json").is_file()


def test_url_env_and_file_uri_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_URL", f"file://{tmp_path}/env-root")
    with Experiment(project_name="p") as exp:
        pass
    assert exp.run_dir.parent.parent == tmp_path / "env-root"
    monkeypatch.delenv("TRACKER_URL")
    with Experiment() as exp:  # default ./tracker-runs, the cwd is tmp_path
        pass
    assert exp.run_dir.resolve().parent.parent == (tmp_path / "tracker-runs").resolve()


def test_unknown_url_scheme_lists_known_ones(tmp_path):
    with pytest.raises(InvalidArgumentError, match="unknown scheme 'ftp'.*known"):
        Experiment(url="ftp://example/x")


def test_bad_project_name_is_rejected_before_writing(runs_root):
    with pytest.raises(InvalidArgumentError, match="project_name must start"):
        Experiment(project_name="../escape", url=str(runs_root))
    assert list(runs_root.iterdir()) == []


def test_parameters_metrics_others_assets(runs_root, tmp_path):
    exp = Experiment(project_name="p", url=str(runs_root))
    exp.log_parameters({"lr": 0.1, "opt": {"name": "adam", "betas": (0.9, 0.99)}}, prefix="h.")
    exp.log_parameter("epochs", np.int64(3))
    exp.set_step(7)
    exp.set_epoch(2)
    before = time.time()
    exp.log_metric("loss", np.float32(0.5))
    exp.log_metrics({"acc": 0.9, "f1": 1}, step=9)
    exp.log_other("note", "tabs\tand\nnewlines ✓")
    exp.add_tags(["a", "b"])
    (tmp_path / "f.txt").write_bytes(b"hello")
    exp.log_asset(str(tmp_path / "f.txt"))
    exp.log_asset(b"raw", file_name="raw.bin")
    exp.end()
    exp.end()  # idempotent
    run = _run(exp)
    assert run.parameters == {"h.lr": 0.1, "h.opt.name": "adam", "h.opt.betas": [0.9, 0.99], "epochs": 3}
    loss = run.metric_series("loss")[0]
    assert loss.value == 0.5 and loss.step == 7 and loss.epoch == 2 and before <= loss.t <= time.time()
    acc = run.metric_series("acc")[0]
    assert acc.step == 9 and acc.t == run.metric_series("f1")[0].t
    assert run.others["note"] == "tabs\tand\nnewlines ✓"
    assert {a.name: a.size for a in run.assets} == {"f.txt": 5, "raw.bin": 3}
    assert run.blob_path(run.assets[0].sha256).read_bytes() == b"hello"
    assert run.status == "finished"
    run.verify()


def test_metric_errors_name_the_value(runs_root):
    with Experiment(url=str(runs_root)) as exp:
        with pytest.raises(InvalidArgumentError, match="metric 'loss' value must be a number; got str"):
            exp.log_metric("loss", "high")
        with pytest.raises(InvalidArgumentError, match="step must be a non-negative integer"):
            exp.log_metric("loss", 1.0, step=-1)


def test_log_embedding_round_trip_and_handle(runs_root):
    vectors = np.random.default_rng(0).normal(size=(20, 4, 2))
    with Experiment(project_name="p", url=str(runs_root)) as exp:
        handle = exp.log_embedding(vectors, [f"l{i}" for i in range(20)], title="hidden", group="g", step=3)
    assert (handle.n, handle.dim, handle.title, handle.group, handle.step) == (20, 8, "hidden", "g", 3)
    emb = _run(exp).embedding(handle.id)
    np.testing.assert_array_equal(emb.vectors, vectors.reshape(20, -1).astype(np.float32))
    assert emb.vectors.dtype == np.float32
    assert emb.columns == {"label": [f"l{i}" for i in range(20)]}


def test_labels_table_form_keeps_types_and_unicode(runs_root):
    labels = [["name", "count", "score", "ok"]] + [[f"a\tb\n{i} ✓ 日本", i, i / 2, i % 2 == 0] for i in range(5)]
    with Experiment(url=str(runs_root)) as exp:
        h = exp.log_embedding(np.eye(5), labels)
    emb = _run(exp).embedding(h.id)
    types = {c["name"]: c["type"] for c in emb.metadata["columns"]}
    assert types == {"name": "str", "count": "int", "score": "float", "ok": "bool"}
    assert emb.columns["name"][3] == "a\tb\n3 ✓ 日本" and emb.columns["count"] == [0, 1, 2, 3, 4]
    assert emb.header is True


def test_labels_2d_array_with_header_and_metadata_dict_and_dataframe(runs_root):
    pd = pytest.importorskip("pandas")
    with Experiment(url=str(runs_root)) as exp:
        h1 = exp.log_embedding(np.eye(3), np.array([[1, 2], [3, 4], [5, 6]]), label_header=["x", "y"])
        h2 = exp.log_embedding(np.eye(3), None, metadata={"split": ["train", "test", "train"]})
        h3 = exp.log_embedding(np.eye(3), [0, 1, 2], metadata=pd.DataFrame({"w": [0.5, 1.5, 2.5]}))
    run = _run(exp)
    assert run.embedding(h1.id).columns == {"x": [1, 3, 5], "y": [2, 4, 6]}
    assert run.embedding(h2.id).columns == {"split": ["train", "test", "train"]}
    assert run.embedding(h3.id).columns == {"label": [0, 1, 2], "w": [0.5, 1.5, 2.5]}


def test_torch_tensors_requiring_grad(runs_root):
    torch = pytest.importorskip("torch")
    t = torch.randn(6, 3, requires_grad=True) * 2
    with Experiment(url=str(runs_root)) as exp:
        h = exp.log_embedding(t, torch.arange(6))
    emb = _run(exp).embedding(h.id)
    np.testing.assert_allclose(emb.vectors, t.detach().numpy(), rtol=1e-6)
    assert emb.columns["label"] == list(range(6))


def test_same_group_title_step_never_overwrites(runs_root):
    with Experiment(url=str(runs_root)) as exp:
        a = exp.log_embedding(np.zeros((2, 2)), ["a", "b"], title="t", group="g", step=1)
        b = exp.log_embedding(np.ones((2, 2)), ["a", "b"], title="t", group="g", step=1)
    run = _run(exp)
    assert a.id != b.id and len(run.embeddings) == 2
    assert run.embedding(a.id).vectors.sum() == 0 and run.embedding(b.id).vectors.sum() == 4


def test_default_step_is_the_current_step(runs_root):
    with Experiment(url=str(runs_root)) as exp:
        exp.set_step(4)
        h = exp.log_embedding(np.eye(2), ["a", "b"])
    assert h.step == 4


@pytest.mark.parametrize("vectors,labels,kwargs,message", [
    (np.arange(4.0), ["a"] * 4, {}, r"vectors must be 2D \(n_samples, n_features\); got shape \(4,\)"),
    (np.zeros((0, 3)), [], {}, "vectors must have at least one row; got shape"),
    ([[1, 2], [3]], ["a", "b"], {}, "vectors must"),
    (np.array([[1.0, np.nan]]), ["a"], {}, "vectors must be finite; got nan at row 0, column 1"),
    (np.array([[1.0, np.inf]]), ["a"], {}, "allow_nonfinite=True"),
    (np.eye(3), ["a", "b"], {}, "labels has 2 rows but vectors has 3"),
    (np.eye(2), [["x", "y"], [1, 2], [3]], {}, "labels header has 2 columns but row 1 has 1"),
    (np.eye(2), [["x"], [1], [2], [3]], {}, "labels has 3 rows after its header row but vectors has 2"),
    (np.eye(2), ["a", "b"], {"step": -1}, "step must be a non-negative integer or None; got int -1"),
    (np.eye(2), ["a", "b"], {"step": 1.5}, "step must be a non-negative integer"),
    (np.eye(2), ["a", "b"], {"title": 3}, "title must be a string; got int 3"),
    (np.eye(2), ["a", "b"], {"metadata": {"s": [1]}}, "metadata column 's' has 1 rows but vectors has 2"),
    (np.eye(2), ["a", "b"], {"metadata": [1, 2]}, "metadata must be a dict of columns"),
    (np.eye(2), {"a": 1}, {}, "Pass a dict of columns or a DataFrame as metadata="),
])
def test_log_embedding_errors_before_anything_is_written(runs_root, vectors, labels, kwargs, message):
    exp = Experiment(url=str(runs_root))
    blobs = exp.run_dir / "blobs"
    before = sorted(p.name for p in blobs.rglob("*") if p.is_file())
    with pytest.raises(InvalidArgumentError, match=message):
        exp.log_embedding(vectors, labels, **kwargs)
    exp.end()
    assert sorted(p.name for p in blobs.rglob("*") if p.is_file()) == before
    assert _run(exp).embeddings == []


def test_nonfinite_allowed_when_asked(runs_root):
    with Experiment(url=str(runs_root)) as exp:
        h = exp.log_embedding(np.array([[1.0, np.nan]]), ["a"], allow_nonfinite=True)
    assert math.isnan(_run(exp).embedding(h.id).vectors[0, 1])


def test_logging_after_end_is_refused(runs_root):
    exp = Experiment(url=str(runs_root))
    exp.end()
    with pytest.raises(RuntimeError, match="has ended"):
        exp.log_embedding(np.eye(2), ["a", "b"])


def test_resume_with_experiment_key_continues_seq(runs_root):
    with Experiment(project_name="p", url=str(runs_root)) as exp:
        exp.log_metric("m", 1)
    with Experiment(project_name="p", url=str(runs_root), experiment_key=exp.get_key()) as again:
        again.log_metric("m", 2)
    run = _run(exp)
    seqs = [r.seq for r in run.records]
    assert seqs == sorted(set(seqs)) == list(range(len(seqs)))
    assert [m.value for m in run.metric_series("m")] == [1, 2]


def test_many_metric_calls_all_arrive_in_order(runs_root):
    """Speed is measured in benchmarks/log_embedding.py; here every point must arrive."""
    with Experiment(url=str(runs_root)) as exp:
        for i in range(5000):
            exp.log_metric("loss", 1.0 / (i + 1), step=i)
    points = _run(exp).metrics
    assert [p.step for p in points] == list(range(5000))


def test_offline_experiment_never_syncs_even_with_a_remote_tracker_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "local"))
    with OfflineExperiment(project_name="p") as exp:
        exp.log_metric("m", 1)
    assert exp.run_dir == tmp_path / "local" / "p" / exp.get_key()
    with pytest.raises(InvalidArgumentError, match="offline_directory must be a local path"):
        OfflineExperiment(offline_directory="https://example.invalid/")
