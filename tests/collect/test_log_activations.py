"""The one-line logging: exp.log_activations(collector or dict, labels, ...)."""

import numpy as np
import pytest
import torch

from tracker_sdk import Experiment, InvalidArgumentError, open_run
from tracker_sdk.collect import ActivationCollector, collect_embeddings


def test_each_layer_becomes_an_embedding_titled_by_its_name(cnn, runs_root):
    cnn.eval()
    x = torch.randn(12, 1, 8, 8)
    labels = [i % 3 for i in range(12)]
    with Experiment(project_name="act", url=str(runs_root)) as exp:
        for epoch in range(2):
            with ActivationCollector(cnn, ["pool", "act"], reshape={"pool": "avg_pool_2_2"}) as collector, \
                    torch.no_grad():
                cnn(x)
            handles = exp.log_activations(collector, labels, group="cnn", step=epoch,
                                          metadata={"odd": [i % 2 == 1 for i in range(12)]})
        run_dir = exp.run_dir
    assert list(handles) == ["pool", "act"]
    assert handles["act"].title == "act" and handles["act"].step == 1 and handles["pool"].dim == 16
    run = open_run(run_dir)
    logged = {(e.title, e.step): e for e in run.embeddings}
    assert sorted(logged) == [("act", 0), ("act", 1), ("pool", 0), ("pool", 1)]
    assert {e.group for e in run.embeddings} == {"cnn"}
    np.testing.assert_array_equal(logged["act", 1].vectors, collector["act"])
    np.testing.assert_array_equal(logged["pool", 1].vectors, collector["pool"])
    assert logged["pool", 0].columns["label"] == labels
    assert logged["pool", 0].columns["odd"][:3] == [False, True, False]


def test_a_dict_from_collect_embeddings_uses_the_current_step(cnn, runs_root):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(20, 1, 8, 8)), batch_size=8)
    acts = collect_embeddings(cnn, loader, [6, "head"], progress=False)
    with Experiment(project_name="act", url=str(runs_root)) as exp:
        exp.set_step(7)
        handles = exp.log_activations(acts, [["kind", "index"]] + [["a", i] for i in range(20)])
    run = open_run(handles["fc"].path)
    assert {(e.title, e.step, e.n, e.dim) for e in run.embeddings} == {("fc", 7, 20, 16), ("head", 7, 20, 10)}
    assert run.embeddings[0].columns["index"] == list(range(20))


def test_bad_input_is_rejected_before_anything_is_written(runs_root):
    with Experiment(project_name="act", url=str(runs_root)) as exp:
        with pytest.raises(InvalidArgumentError, match="layer 'b' has 4 rows but layer 'a' has 5"):
            exp.log_activations({"a": np.zeros((5, 3)), "b": np.zeros((4, 3))}, list(range(5)))
        with pytest.raises(InvalidArgumentError, match="labels has 4 rows but vectors has 5"):
            exp.log_activations({"a": np.zeros((5, 3)), "b": np.ones((5, 2))}, list(range(4)))
        with pytest.raises(InvalidArgumentError, match=r"vectors must be finite"):
            exp.log_activations({"a": np.zeros((2, 3)), "b": np.full((2, 2), np.nan)}, [0, 1])
        with pytest.raises(InvalidArgumentError, match="must be an ActivationCollector or a dict"):
            exp.log_activations([np.zeros((2, 3))], [0, 1])
        with pytest.raises(InvalidArgumentError, match="titles each embedding with its layer name"):
            exp.log_activations({"a": np.zeros((2, 3))}, [0, 1], title="x")
        run_dir = exp.run_dir
    assert open_run(run_dir).embeddings == []


def test_a_collector_that_saw_no_forward_pass_is_an_error(cnn, runs_root):
    collector = ActivationCollector(cnn, "fc")
    with Experiment(project_name="act", url=str(runs_root)) as exp:
        with pytest.raises(InvalidArgumentError, match=r"layer 'fc' collected no rows; run the model inside `with collector:`"):
            exp.log_activations(collector, [])
