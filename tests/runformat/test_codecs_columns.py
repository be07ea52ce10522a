"""Metadata columns: typing from the cells' types, exact round trips through the msgpack blob."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracker_sdk import _validation as check
from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.runformat import decode_metadata, encode_metadata, make_column


def round_trip(values):
    column = make_column("c", values)
    back = decode_metadata(encode_metadata([column], len(column["values"])))["columns"][0]
    return column["type"], back["values"]


@pytest.mark.parametrize("values, expected_type, expected", [
    (["a", "日本", "", "tab\there", "\U0001F600", None], "str", ["a", "日本", "", "tab\there", "\U0001F600", None]),
    ([1, -2, 2**62, None], "int", [1, -2, 2**62, None]),
    ([np.int64(3), np.uint8(255), 7], "int", [3, 255, 7]),
    ([0.1, 1e-300, -0.0, float("inf"), None], "float", [0.1, 1e-300, -0.0, float("inf"), None]),
    ([1, 2.5, np.float32(0.25)], "float", [1.0, 2.5, 0.25]),
    ([float("nan"), np.float64("nan"), 1.0], "float", [None, None, 1.0]),
    ([True, False, np.bool_(True), None], "bool", [True, False, True, None]),
    ([True, 1], "mixed", [True, 1]),
    (["a", 1, 2.0, None, (1, 2)], "mixed", ["a", 1, 2.0, None, "(1, 2)"]),
    ([None, None], "str", [None, None]),
    ([np.str_("x"), "y"], "str", ["x", "y"]),
])
def test_round_trip_is_exact(values, expected_type, expected):
    column_type, back = round_trip(values)
    assert column_type == expected_type
    assert back == expected
    assert [type(v) for v in back] == [type(v) for v in expected]
    for got, want in zip(back, expected):
        if isinstance(want, float):
            assert math.copysign(1.0, got) == math.copysign(1.0, want)


@pytest.mark.parametrize("array", [
    np.array(["a", "bé", "日本語"]), np.arange(5, dtype=np.int16), np.arange(5, dtype=np.uint64),
    np.array([0.5, np.nan, np.inf], dtype=np.float32), np.array([True, False]),
    np.array([b"x", b"y"]), np.array([1 + 2j, 3j]), np.array(["a", 1, None], dtype=object),
])
def test_arrays_type_like_their_lists(array):
    """A 1-D array is typed from its dtype, and must give exactly what its tolist() gives."""
    assert make_column("c", array) == make_column("c", array.tolist())


def test_table_form_is_transposed_into_columns():
    columns, header = check.check_labels([["name", "n"], ("a", 1), ["b", 2.5]], 2)
    assert header is True
    assert [(c["name"], c["type"], c["values"]) for c in columns] == [("name", "str", ["a", "b"]),
                                                                      ("n", "float", [1.0, 2.5])]


def test_table_row_of_wrong_length_is_named():
    with pytest.raises(InvalidArgumentError, match="header has 2 columns but row 1 has 3"):
        check.check_labels([["name", "n"], ["a", 1], ["b", 2, 3]], 2)


def test_mixed_rows_and_values_are_refused():
    with pytest.raises(InvalidArgumentError, match="mixes rows"):
        check.check_labels(["a", ["b"]], 2)


def test_one_dimensional_array_labels_and_metadata():
    columns, header = check.check_labels(np.array(["x", "y"]), 2, metadata={"score": np.array([0.5, np.nan])})
    assert header is False
    assert [(c["name"], c["type"], c["values"]) for c in columns] == [("label", "str", ["x", "y"]),
                                                                      ("score", "float", [0.5, None])]
    with pytest.raises(InvalidArgumentError, match="labels has 2 rows but vectors has 3"):
        check.check_labels(np.array(["x", "y"]), 3)
