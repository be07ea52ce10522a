"""plain_value: the one conversion of logged values (parameters, others, reducer parameters) to msgpack."""

import msgpack
import numpy as np
import pytest

from tracker_sdk._convert import plain_value


class Opaque:
    def __str__(self):
        return "opaque-object"


@pytest.mark.parametrize("value, expected", [
    (np.float32(1.5), 1.5), (np.int64(7), 7), (np.bool_(True), True), (np.array(3.25), 3.25),
    (np.array([[1, 2], [3, 4]]), [[1, 2], [3, 4]]), ((1, "a", None), [1, "a", None]),
    ({1: np.float64(0.5), "k": (np.int8(2),)}, {"1": 0.5, "k": [2]}), (Opaque(), "opaque-object"),
    ("text", "text"), (None, None),
])
def test_plain_value(value, expected):
    plain = plain_value(value)
    assert plain == expected and type(plain) is type(expected)
    assert msgpack.unpackb(msgpack.packb(plain), strict_map_key=False) == expected


def test_plain_value_of_torch_tensors():
    torch = pytest.importorskip("torch")
    assert plain_value(torch.tensor(2.5, requires_grad=True)) == 2.5
    assert plain_value({"lr": torch.tensor([0.1, 0.2], dtype=torch.float64)}) == {"lr": [0.1, 0.2]}
