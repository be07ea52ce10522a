"""list_layers and layer resolution against model.named_modules()."""

import pytest
import torch

from tracker_sdk import InvalidArgumentError
from tracker_sdk.collect import list_layers, resolve_layer, resolve_layers

from collect_models import hook_count


def test_list_layers_matches_named_modules_with_shapes(cnn, capsys):
    table = list_layers(cnn, example_input=torch.zeros(2, 1, 8, 8))
    named = list(cnn.named_modules())
    assert [info.index for info in table] == list(range(len(named)))
    assert table.names() == ["<root>"] + [name for name, _ in named[1:]]
    assert [info.type for info in table] == [type(m).__name__ for _, m in named]
    shapes = {info.name: info.output_shape for info in table}
    assert shapes == {"<root>": "[2, 10]", "conv": "[2, 4, 8, 8]", "bn": "[2, 4, 8, 8]", "relu": "[2, 4, 8, 8]",
                      "pool": "[2, 4, 4, 4]", "flatten": "[2, 64]", "fc": "[2, 16]", "act": "[2, 16]",
                      "head": "[2, 10]"}
    assert table[6].params == 64 * 16 + 16
    printed = capsys.readouterr().out
    assert printed.strip() == str(table).strip()
    assert "output shape" in printed.splitlines()[0] and "[2, 4, 4, 4]" in printed


def test_list_layers_leaves_the_model_as_it_was(cnn):
    cnn.train()
    stats = cnn.bn.running_mean.clone()
    list_layers(cnn, example_input=torch.randn(4, 1, 8, 8) + 3, show=False)
    assert cnn.training and all(m.training for m in cnn.modules())
    assert torch.equal(cnn.bn.running_mean, stats)  # ran in eval mode: no statistics update
    assert hook_count(cnn) == 0


def test_list_layers_removes_hooks_when_forward_fails(cnn):
    with pytest.raises(RuntimeError, match="shape|size|channels"):
        list_layers(cnn, example_input=torch.zeros(2, 3, 8, 8), show=False)
    assert hook_count(cnn) == 0


def test_list_layers_without_input_and_tuple_outputs(transformer):
    table = list_layers(transformer, show=False)
    assert all(info.output_shape is None for info in table)
    assert "output shape" not in str(table).splitlines()[0]
    shapes = {i.name: i.output_shape for i in list_layers(transformer, torch.zeros(1, 5, dtype=torch.long), show=False)}
    assert shapes["encoder.layers.0.self_attn"] == "tuple([1, 5, 8], None)"
    assert shapes["encoder.layers"] == "not called"


def test_resolve_by_index_name_negative_index_and_module(cnn):
    names = [name for name, _ in cnn.named_modules()]
    assert resolve_layer(cnn, 6) == names[6] == "fc"
    assert resolve_layer(cnn, -2) == "act"
    assert resolve_layer(cnn, 0) == "<root>"
    assert resolve_layer(cnn, "pool") == "pool"
    assert resolve_layer(cnn, cnn.head) == "head"
    assert resolve_layers(cnn, [6, "head"]) == ["fc", "head"]
    assert resolve_layers(cnn, "fc") == ["fc"]


def test_unknown_layer_lists_close_matches(transformer):
    with pytest.raises(InvalidArgumentError, match=r"no layer named 'encoder.layers.0.linear'.*'encoder.layers.0.linear1'"):
        resolve_layer(transformer, "encoder.layers.0.linear")
    with pytest.raises(InvalidArgumentError, match=r"'encoder.layers.1.norm1'"):
        resolve_layer(transformer, "norm1")


def test_bad_layer_arguments(cnn):
    with pytest.raises(InvalidArgumentError, match=r"index 9 is out of range.*9 modules \(indices 0-8\)"):
        resolve_layer(cnn, 9)
    with pytest.raises(InvalidArgumentError, match="layer 'fc' is given twice"):
        resolve_layers(cnn, [6, "fc"])
    with pytest.raises(InvalidArgumentError, match="got bool"):
        resolve_layer(cnn, True)
    with pytest.raises(InvalidArgumentError, match="at least one layer; got an empty list"):
        resolve_layers(cnn, [])
    with pytest.raises(InvalidArgumentError, match="model must be a torch.nn.Module"):
        list_layers("not a model")


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    from tracker_sdk import MissingDependencyError
    from tracker_sdk.collect import ActivationCollector
    with pytest.raises(MissingDependencyError, match=r"ActivationCollector needs the package 'torch'.*tracker_sdk\[torch\]"):
        ActivationCollector(object(), "fc")


def test_example_input_as_positional_tuple_or_keyword_dict():
    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(3, 4)
            self.b = torch.nn.Linear(5, 4)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    model = TwoInputs()
    by_tuple = list_layers(model, (torch.zeros(2, 3), torch.zeros(2, 5)), show=False)
    by_dict = list_layers(model, {"x": torch.zeros(7, 3), "y": torch.zeros(7, 5)}, show=False)
    assert [i.output_shape for i in by_tuple] == ["[2, 4]"] * 3
    assert [i.output_shape for i in by_dict] == ["[7, 4]"] * 3
