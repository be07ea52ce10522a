"""Every reshape strategy's output shape and values, against a hand computation."""

import numpy as np
import pytest
import torch

from tracker_sdk import InvalidArgumentError
from tracker_sdk.collect import STRATEGIES, get_strategy


def _apply(name, x, mask=None):
    return get_strategy(name)[1](x, mask).numpy()


def test_flatten_keeps_every_value_in_row_major_order():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    out = _apply("flatten", x)
    assert out.shape == (2, 12)
    np.testing.assert_array_equal(out[1], np.arange(12, 24))


def test_mean_over_positions_of_a_feature_map():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    out = _apply("mean", x)
    assert out.shape == (2, 3)
    # sample 0, channel 1 holds 4, 5, 6, 7
    assert out[0, 1] == pytest.approx(5.5)
    np.testing.assert_allclose(out, x.numpy().reshape(2, 3, 4).mean(axis=2))


def test_mean_over_tokens_with_and_without_padding_mask():
    x = torch.tensor([[[1.0, 10.0], [3.0, 30.0], [100.0, 1000.0]],
                      [[2.0, 4.0], [4.0, 8.0], [6.0, 12.0]]])            # (batch 2, seq 3, hidden 2)
    np.testing.assert_allclose(_apply("mean", x), [[104 / 3, 1040 / 3], [4.0, 8.0]], rtol=1e-6)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])                           # token 2 of sample 0 is padding
    np.testing.assert_allclose(_apply("mean", x, mask), [[2.0, 20.0], [4.0, 8.0]], rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match=r"token mask has shape \(2, 4\) but the layer output is \(2, 3, 2\)"):
        _apply("mean", x, torch.ones(2, 4))


def test_mean_of_a_vector_output_is_the_vector():
    x = torch.randn(4, 7)
    np.testing.assert_array_equal(_apply("mean", x), x.numpy())


@pytest.mark.parametrize("k", [1, 2, 3])
def test_avg_pool_k_k(k):
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    out = _apply(f"avg_pool_{k}_{k}", x)
    assert out.shape == (2, 3 * k * k)
    s = 6 // k  # 6 divides evenly, so adaptive pooling is plain block averaging
    expected = x.numpy().reshape(2, 3, k, s, k, s).mean(axis=(3, 5)).reshape(2, -1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_avg_pool_1_1_equals_channel_mean_and_rejects_other_ranks():
    x = torch.randn(2, 5, 3, 4)
    np.testing.assert_allclose(_apply("avg_pool_1_1", x), _apply("mean", x), rtol=1e-5)
    with pytest.raises(InvalidArgumentError, match=r"avg_pool_2_2 pools \(batch, channels, height, width\).*\(2, 6, 8\).*'mean' or 'cls'"):
        _apply("avg_pool_2_2", torch.zeros(2, 6, 8))
    with pytest.raises(InvalidArgumentError, match=r"\(4, 10\).*use 'flatten'"):
        _apply("avg_pool_1_1", torch.zeros(4, 10))


def test_cls_takes_token_zero():
    x = torch.randn(3, 5, 4)
    np.testing.assert_array_equal(_apply("cls", x), x[:, 0, :].numpy())
    with pytest.raises(InvalidArgumentError, match=r"'cls' strategy takes token 0 of a \(batch, seq, hidden\).*\(3, 4\)"):
        _apply("cls", torch.zeros(3, 4))


def test_callable_strategy_and_unknown_names():
    name, fn = get_strategy(lambda t: t.amax(dim=(2, 3)))
    x = torch.randn(2, 3, 4, 4)
    np.testing.assert_array_equal(fn(x).numpy(), x.amax(dim=(2, 3)).numpy())
    assert set(STRATEGIES) == {"flatten", "mean", "avg_pool_1_1", "avg_pool_2_2", "avg_pool_3_3", "cls"}
    with pytest.raises(InvalidArgumentError, match=r"unknown reshape strategy 'avg_pool_2x2' \(did you mean 'avg_pool_2_2'"):
        get_strategy("avg_pool_2x2")
    with pytest.raises(InvalidArgumentError, match="must be a strategy name .* or a callable; got int 3"):
        get_strategy(3)
