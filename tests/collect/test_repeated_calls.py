"""A module that runs more than once per forward pass: a warning, and ``call=`` to choose one."""

import warnings

import numpy as np
import pytest
import torch

from collect_models import SharedReluBlock, hook_count
from tracker_sdk import InvalidArgumentError
from tracker_sdk.collect import ActivationCollector, RepeatedCallWarning


def _expected_calls(block, x):
    with torch.no_grad():
        first = torch.relu(block.fc1(x))
        second = torch.relu(block.fc2(first) + x)
    return first.numpy(), second.numpy()


def test_a_module_called_twice_per_pass_warns_and_keeps_both_calls_by_default():
    block, x = SharedReluBlock(), torch.randn(4, 6)
    with pytest.warns(RepeatedCallWarning, match=r"layer 'relu' ran 2 times in one forward pass.*call=\{'relu': 0\}"):
        with ActivationCollector(block, ["relu"]) as collector:
            block(x)
    first, second = _expected_calls(block, x)
    assert collector.activations["relu"].shape == (8, 6)
    np.testing.assert_allclose(collector.activations["relu"], np.concatenate([first, second]), rtol=1e-6)


@pytest.mark.parametrize("call, which", [(0, 0), (-1, 1), (1, 1)])
def test_call_keeps_exactly_one_call_per_pass_without_warning(call, which):
    block, x1, x2 = SharedReluBlock(), torch.randn(4, 6), torch.randn(3, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepeatedCallWarning)
        with ActivationCollector(block, ["relu"], call={"relu": call}) as collector:
            block(x1)
            block(x2)
    expected = np.concatenate([_expected_calls(block, x1)[which], _expected_calls(block, x2)[which]])
    assert collector.n == {"relu": 7}
    np.testing.assert_allclose(collector["relu"], expected, rtol=1e-6)


def test_bad_call_values_name_the_argument():
    block = SharedReluBlock()
    with pytest.raises(InvalidArgumentError, match=r"call for layer 'relu' must be 'all'.*or an int.*got str 'last'"):
        ActivationCollector(block, ["relu"], call="last")
    with ActivationCollector(block, ["relu"], call=5):
        with pytest.raises(InvalidArgumentError, match=r"call=5 for layer 'relu', but it ran 2 time\(s\)"):
            block(torch.randn(2, 6))
    assert hook_count(block) == 0


def test_a_pass_that_raises_after_the_first_call_keeps_no_rows_and_later_passes_collect():
    block = SharedReluBlock()
    with ActivationCollector(block, ["relu"], call="all") as collector:
        block.fc2 = torch.nn.Linear(5, 6)  # relu's first call runs, then fc2 fails
        with pytest.raises(RuntimeError, match="cannot be multiplied"):
            block(torch.randn(2, 6))
        assert collector.n == {"relu": 0}
        block.fc2 = torch.nn.Linear(6, 6)
        with pytest.warns(RepeatedCallWarning):
            block(torch.randn(3, 6))
    assert collector.n == {"relu": 6}


def test_a_layer_run_on_its_own_outside_the_model_still_adds_its_rows():
    block = SharedReluBlock()
    with ActivationCollector(block, ["fc1"]) as collector:
        block.fc1(torch.randn(5, 6))
        block(torch.randn(2, 6))
    assert collector.n == {"fc1": 7}
