"""ActivationCollector on real small models: values, modes, selectors, hook removal, warnings."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn as nn

from collect_models import hook_count, make_cnn
from tracker_sdk import InvalidArgumentError
from tracker_sdk.collect import ActivationCollector, LargeActivationWarning


def test_collects_reshaped_rows_across_batches_equal_to_a_hand_computation(cnn):
    cnn.eval()
    x1, x2 = torch.randn(5, 1, 8, 8), torch.randn(3, 1, 8, 8)
    with ActivationCollector(cnn, ["pool", 6], reshape={"pool": "avg_pool_2_2"}) as collector:
        assert hook_count(cnn) == 2 + 2  # one per layer, plus the model's start-of-pass and end-of-pass hooks
        cnn(x1)
        cnn(x2)
    assert hook_count(cnn) == 0
    acts = collector.activations
    assert list(acts) == ["pool", "fc"] and collector.n == {"pool": 8, "fc": 8}
    x = torch.cat([x1, x2])
    with torch.no_grad():
        pooled = cnn[:4](x)                                   # (8, 4, 4, 4)
        fc = cnn[:6](x)
    expected_pool = pooled.numpy().reshape(8, 4, 2, 2, 2, 2).mean(axis=(3, 5)).reshape(8, 16)
    np.testing.assert_allclose(acts["pool"], expected_pool, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["fc"], fc.numpy(), rtol=1e-5, atol=1e-6)
    assert acts["fc"].dtype == np.float32
    np.testing.assert_array_equal(collector["fc"], collector[6])


def test_hooks_are_removed_when_the_forward_pass_raises(cnn):
    collector = ActivationCollector(cnn, ["conv", "pool", "head"])
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        with collector:
            cnn(torch.randn(2, 1, 10, 10))                    # pool runs, then fc gets 100 features, not 64
    assert hook_count(cnn) == 0 and not collector.attached
    assert collector.n == {"conv": 0, "pool": 0, "head": 0}   # a failed pass keeps nothing: layers stay row-aligned


def test_train_mode_collection_leaves_gradients_unchanged(cnn):
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    reference = make_cnn().train()
    nn.functional.cross_entropy(reference(x), y).backward()
    cnn.train()
    with ActivationCollector(cnn, ["act"]) as collector:
        nn.functional.cross_entropy(cnn(x), y).backward()
    for (name, p), q in zip(cnn.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    assert collector["act"].shape == (6, 16)
    assert (collector["act"] >= 0).all()                   # a ReLU output


def test_no_grad_and_eval_mode(cnn):
    cnn.eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad(), ActivationCollector(cnn, "head") as collector:
        out = cnn(x)
    np.testing.assert_allclose(collector["head"], out.numpy(), rtol=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_transformer_mean_and_cls_against_the_model_output(transformer, training):
    transformer.train(training)
    tokens = torch.randint(0, 20, (3, 6))
    with ActivationCollector(transformer, ["encoder.layers.1", "encoder"],
                             reshape={"encoder.layers.1": "mean", "encoder": "cls"}) as collector:
        out = transformer(tokens).detach()               # (3, 6, 8); dropout is 0 so train == eval
    np.testing.assert_allclose(collector["encoder.layers.1"], out.mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(collector["encoder"], out[:, 0].numpy(), rtol=1e-5, atol=1e-6)


def test_token_mask_keeps_padding_out_of_mean(transformer):
    tokens = torch.randint(0, 20, (2, 5))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    collector = ActivationCollector(transformer, "encoder", reshape="mean")
    with collector, collector.token_mask(mask):
        out = transformer(tokens).detach()
    np.testing.assert_allclose(collector["encoder"][0], out[0, :3].mean(0).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(collector["encoder"][1], out[1].mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_tuple_outputs_need_a_selector(transformer):
    tokens = torch.randint(0, 20, (2, 4))
    with pytest.raises(InvalidArgumentError, match=r"returned tuple\(\[2, 4, 8\], None\), not a tensor.*"
                                                   r"select=\{'encoder.layers.0.self_attn': 0\}"):
        with ActivationCollector(transformer, "encoder.layers.0.self_attn", reshape="mean"):
            transformer.train()(tokens)
    assert hook_count(transformer) == 0
    with ActivationCollector(transformer, "encoder.layers.0.self_attn", reshape="cls", select=0) as collector:
        transformer.train()(tokens)
    assert collector["encoder.layers.0.self_attn"].shape == (2, 8)


class _DictHead(nn.Module):
    def forward(self, x):
        return {"hidden": x * 2, "logits": x.sum(dim=1)}


@dataclasses.dataclass
class _Output:
    hidden: torch.Tensor
    extra: object = None


class _DataclassHead(nn.Module):
    def forward(self, x):
        return _Output(hidden=x + 1)


def test_dict_and_dataclass_outputs_are_selected_by_key():
    model = nn.Sequential(nn.Linear(3, 4), _DictHead())
    x = torch.randn(5, 3)
    with pytest.raises(InvalidArgumentError, match=r"returned dict\(hidden=\[5, 4\], logits=\[5\]\).*select=\{'1': 'hidden'\}"):
        with ActivationCollector(model, 2):
            model(x)
    with ActivationCollector(model, 2, select="hidden") as collector:
        out = model(x)
    np.testing.assert_allclose(collector["1"], out["hidden"].detach().numpy(), rtol=1e-6)
    model = nn.Sequential(nn.Linear(3, 4), _DataclassHead())
    with ActivationCollector(model, "1", select={"1": "hidden"}) as collector:
        out = model(x)
    np.testing.assert_allclose(collector["1"], out.hidden.detach().numpy(), rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match=r"select='missing' for layer '1' does not fit its output _Output"):
        with ActivationCollector(model, "1", select="missing"):
            model(x)


def test_large_layers_warn_with_a_pooling_suggestion():
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU())
    with pytest.warns(LargeActivationWarning, match=r"layer '1' gives 8,192 values per sample.*reshape='avg_pool_1_1'"):
        with ActivationCollector(model, 2) as collector:
            model(torch.randn(2, 1, 16, 16))
            model(torch.randn(2, 1, 16, 16))              # warned once per layer
    assert collector["1"].shape == (4, 8192)
    with ActivationCollector(model, 2, reshape="avg_pool_2_2") as pooled:
        model(torch.randn(2, 1, 16, 16))
    assert pooled["1"].shape == (2, 128)


def test_outputs_whose_size_varies_need_a_fixed_size_strategy(transformer):
    with pytest.raises(InvalidArgumentError, match=r"gave 40 values per sample in this batch but 32 before.*'mean', 'cls'"):
        with ActivationCollector(transformer, "encoder") as collector:
            transformer(torch.randint(0, 20, (2, 4)))
            transformer(torch.randint(0, 20, (2, 5)))
    assert collector.n == {"encoder": 2}


def test_argument_errors(cnn):
    with pytest.raises(InvalidArgumentError, match=r"reshape names layer 'head' \('head'\), which is not among the collected layers \['fc'\]"):
        ActivationCollector(cnn, "fc", reshape={"head": "mean"})
    with pytest.raises(InvalidArgumentError, match="reshape for layer 'fc': unknown reshape strategy 'avg'"):
        ActivationCollector(cnn, "fc", reshape="avg")
    with pytest.raises(InvalidArgumentError, match="select for layer 'fc' must be an int"):
        ActivationCollector(cnn, "fc", select=1.5)
    with pytest.raises(InvalidArgumentError, match="max_memory_bytes must be a positive int; got 0"):
        ActivationCollector(cnn, "fc", max_memory_bytes=0)
    with pytest.raises(InvalidArgumentError, match="layer 'head' is not collected by this collector"):
        ActivationCollector(cnn, "fc")["head"]
    bad = ActivationCollector(cnn, "fc", reshape=lambda t: t[:1])
    with pytest.raises(InvalidArgumentError, match=r"must return one row per sample \(4\); got shape \(1, 16\)"):
        with bad:
            cnn(torch.randn(4, 1, 8, 8))


def test_clear_starts_over_and_keeps_earlier_arrays(cnn):
    collector = ActivationCollector(cnn, "head")
    with collector:
        cnn(torch.randn(3, 1, 8, 8))
    first = collector["head"].copy()
    kept = collector["head"]
    collector.clear()
    with collector:
        cnn(torch.randn(2, 1, 8, 8))
    assert collector["head"].shape == (2, 10)
    np.testing.assert_array_equal(kept, first)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_outputs_come_back_as_cpu_float32(cnn):
    model = cnn.cuda().half().eval()
    x = torch.randn(4, 1, 8, 8, device="cuda", dtype=torch.half)
    with torch.no_grad(), ActivationCollector(model, ["pool", "head"], reshape={"pool": "avg_pool_1_1"}) as collector:
        out = model(x)
    assert collector["head"].dtype == np.float32 and collector["pool"].shape == (4, 4)
    np.testing.assert_allclose(collector["head"], out.float().cpu().numpy(), rtol=1e-3)
