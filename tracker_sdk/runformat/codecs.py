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


def _kind(cls: type) -> str:
    """The column kind of every value of type ``cls`` (numpy scalar types included)."""
    if issubclass(cls, (bool, np.bool_)):
        return "bool"
    if issubclass(cls, numbers.Integral):
        return "int"
    if issubclass(cls, numbers.Real):
        return "float"
    if issubclass(cls, str):
        return "str"
    return "mixed"


def _column_type(types: set) -> str:
    """The column type of values whose types (None's excluded) are ``types``."""
    kinds = {_kind(t) for t in types}
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


def _floats(values) -> list:
    """Python floats with NaN (and None) as None, converted by numpy rather than per cell."""
    array = np.asarray(values, dtype=np.float64)
    out = array.tolist()
    nan = np.flatnonzero(np.isnan(array))
    for i in nan.tolist():
        out[i] = None
    return out


#: the python type each column type's values already have when no conversion is needed
_NATIVE = {"str": str, "int": int, "bool": bool}


def make_column(name: str, values) -> dict:
    """One typed metadata column from a list or 1-D array of cells.

    Typing looks at the set of the cells' types, not at every cell, and conversion is left
    to numpy (or skipped when the cells are already plain python values), so a million
    labels cost what building the list cost.
    """
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "Uiubf":
        kind = values.dtype.kind
        if kind == "f":
            return {"name": str(name), "type": "float", "values": _floats(values)}
        column_type = {"U": "str", "i": "int", "u": "int", "b": "bool"}[kind]
        return {"name": str(name), "type": column_type, "values": values.tolist()}
    values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    types = set(map(type, values))
    types.discard(type(None))
    column_type = _column_type(types)
    if column_type == "float":
        cells = _floats(values)
    elif column_type in _NATIVE and types <= {_NATIVE[column_type]}:
        cells = values  # already plain python values of the column's type (None kept)
    else:
        cells = [_plain(v, column_type) for v in values]
    return {"name": str(name), "type": column_type, "values": cells}


def encode_metadata(columns: list[dict], n: int) -> bytes:
    return msgpack.packb({"n": int(n), "columns": columns}, use_bin_type=True)


def decode_metadata(data: bytes) -> dict:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
