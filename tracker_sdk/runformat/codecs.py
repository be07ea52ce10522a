"""Byte encodings of blob contents: float32 ``.npy`` arrays and typed metadata columns.

Metadata is msgpack ``{"n": rows, "columns": [{"name", "type", "values"}]}`` with type one
of ``str``, ``int``, ``float``, ``bool``, ``mixed``; nothing is pickled.
"""

from __future__ import annotations

import io
import math
import numbers

import msgpack
import numpy as np

COLUMN_TYPES = ("str", "int", "float", "bool", "mixed")


def npy_chunks(array: np.ndarray):
    """Yield the ``.npy`` header, then the array's own buffer (no copy when C-contiguous)."""
    array = np.ascontiguousarray(array)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    yield header.getvalue()
    if array.size:
        yield memoryview(array.reshape(-1)).cast("B")


def npy_bytes(array: np.ndarray) -> bytes:
    return b"".join(bytes(c) for c in npy_chunks(array))


def load_npy(path, *, mmap: bool = True) -> np.ndarray:
    """Load a stored array without ever unpickling (object arrays are refused)."""
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def _column_type(values: list) -> str:
    kinds = set()
    for v in values:
        if isinstance(v, bool) or isinstance(v, np.bool_):
            kinds.add("bool")
        elif isinstance(v, numbers.Integral):
            kinds.add("int")
        elif isinstance(v, numbers.Real):
            kinds.add("float")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            kinds.add("mixed")
    if kinds <= {"int"}:
        return "int" if kinds else "str"
    if kinds <= {"int", "float"}:
        return "float"
    if len(kinds) == 1:
        return kinds.pop()
    return "mixed"


def _plain(value, column_type: str):
    """A msgpack-safe python value for one cell (numpy scalars unwrapped, None kept)."""
    if value is None:
        return None
    if column_type == "int":
        return int(value)
    if column_type == "float":
        value = float(value)
        return value if math.isfinite(value) else None if math.isnan(value) else value
    if column_type == "bool":
        return bool(value)
    if column_type == "str":
        return str(value)
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def make_column(name: str, values) -> dict:
    values = list(values)
    column_type = _column_type([v for v in values if v is not None])
    return {"name": str(name), "type": column_type, "values": [_plain(v, column_type) for v in values]}


def encode_metadata(columns: list[dict], n: int) -> bytes:
    return msgpack.packb({"n": int(n), "columns": columns}, use_bin_type=True)


def decode_metadata(data: bytes) -> dict:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
