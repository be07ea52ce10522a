"""Small named check_* functions: each converts one argument and raises a clear error.

Every message names the argument, what was expected and what was got, and every check
runs before anything is written.
"""

from __future__ import annotations

import numbers
import re

import numpy as np

from ._convert import is_torch_tensor, to_numpy
from .errors import InvalidArgumentError
from .runformat import make_column

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def check_vectors(vectors, *, allow_nonfinite: bool = False) -> np.ndarray:
    """Return vectors as a C-contiguous float32 array (n_samples, n_features).

    Rows of shape ``(n, ...)`` are flattened per row, as Comet does.
    """
    if vectors is None:
        raise InvalidArgumentError("vectors must be an array-like of shape (n_samples, n_features); got None")
    try:
        array = to_numpy(vectors)
    except Exception as exc:
        raise InvalidArgumentError(
            f"vectors must be an array-like of numbers of shape (n_samples, n_features); "
            f"got {_describe(vectors)} that numpy cannot convert ({exc})") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InvalidArgumentError(
            f"vectors must hold numbers in rows of equal length; got {_describe(vectors) if not isinstance(vectors, np.ndarray) else 'array of dtype ' + str(array.dtype)}")
    if array.ndim < 2:
        raise InvalidArgumentError(
            f"vectors must be 2D (n_samples, n_features); got shape {array.shape}. "
            "For a single sample use vectors.reshape(1, -1)")
    if array.shape[0] == 0:
        raise InvalidArgumentError(f"vectors must have at least one row; got shape {array.shape}")
    if array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    if array.shape[1] == 0:
        raise InvalidArgumentError(f"vectors must have at least one feature per row; got shape {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    # a float64 sum propagates NaN/Inf and cannot overflow from float32 inputs: one pass, no mask
    if not allow_nonfinite and not np.isfinite(np.sum(array, dtype=np.float64)):
        finite = np.isfinite(array)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            raise InvalidArgumentError(
                f"vectors must be finite; got {array[tuple(bad)]} at row {bad[0]}, column {bad[1]} "
                f"({int((~finite).sum())} non-finite values). Pass allow_nonfinite=True to store them anyway")
    return array


def check_step(step, argument: str = "step") -> int | None:
    if step is None:
        return None
    if is_torch_tensor(step) or isinstance(step, np.ndarray):
        step = to_numpy(step)
        step = step.item() if step.size == 1 else step
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        if isinstance(step, float) and step.is_integer() and step >= 0:
            return int(step)
        raise InvalidArgumentError(f"{argument} must be a non-negative integer or None; got {_describe(step)}")
    return int(step)


def check_text(value, argument: str, *, allow_none: bool = False, max_length: int = 1000) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        expected = "a string or None" if allow_none else "a string"
        raise InvalidArgumentError(f"{argument} must be {expected}; got {_describe(value)}")
    if len(value) > max_length:
        raise InvalidArgumentError(f"{argument} must be at most {max_length} characters; got {len(value)}")
    return value


def check_project_name(value) -> str:
    value = check_text(value, "project_name")
    if not NAME_RE.match(value):
        raise InvalidArgumentError(
            "project_name must start with a letter or digit and contain only letters, digits, '.', '_' "
            f"and '-' (at most 128 characters), since it names a directory; got {value!r}")
    return value


def _is_row(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) or is_torch_tensor(value)


def _columns_from_mapping(mapping, n: int, argument: str) -> list[dict]:
    columns = []
    for name, values in mapping.items():
        values = to_numpy(values).tolist() if (is_torch_tensor(values) or isinstance(values, np.ndarray)) else list(values)
        if len(values) != n:
            raise InvalidArgumentError(f"{argument} column {name!r} has {len(values)} rows but vectors has {n}")
        columns.append(make_column(str(name), values))
    return columns


def check_labels(labels, n: int, *, header=None, metadata=None) -> tuple[list[dict], bool]:
    """Return (typed metadata columns, whether a header row was given).

    Accepted: a flat list (one column "label"); Comet's table form, a list of rows whose
    first row is the header; a 2-D array with an explicit ``header``; ``metadata`` as a dict
    of columns or a pandas DataFrame (merged after the label columns).
    """
    columns: list[dict] = []
    has_header = False
    if labels is not None:
        if is_torch_tensor(labels) or isinstance(labels, np.ndarray):
            labels = to_numpy(labels)
            if labels.ndim == 2 and header is None:
                labels = labels.tolist()
            elif labels.ndim == 2:
                labels = [list(header)] + labels.tolist()
                header = None
            elif labels.ndim == 1:
                labels = labels.tolist()
            else:
                raise InvalidArgumentError(f"labels must be 1D or 2D; got shape {labels.shape}")
        elif isinstance(labels, dict) or type(labels).__name__ == "DataFrame":
            raise InvalidArgumentError(
                "labels must be a list (one label per row) or a table whose first row is the header; "
                f"got {type(labels).__name__}. Pass a dict of columns or a DataFrame as metadata= instead")
        elif isinstance(labels, str) or not hasattr(labels, "__len__"):
            raise InvalidArgumentError(f"labels must be a list with one label per row of vectors; got {_describe(labels)}")
        labels = list(labels)
        if header is not None:
            header = [str(h) for h in header]
            rows = [list(r) if _is_row(r) else [r] for r in labels]
            labels = [header] + rows
        if labels and all(_is_row(r) for r in labels):
            rows = [to_numpy(r).tolist() if not isinstance(r, (list, tuple)) else list(r) for r in labels]
            head, body = [str(h) for h in rows[0]], rows[1:]
            has_header = True
            if len(body) != n:
                raise InvalidArgumentError(
                    f"labels has {len(body)} rows after its header row but vectors has {n} "
                    "(in table form the first row of labels is the header)")
            for i, row in enumerate(body):
                if len(row) != len(head):
                    raise InvalidArgumentError(
                        f"labels header has {len(head)} columns but row {i} has {len(row)}")
            if len(set(head)) != len(head):
                raise InvalidArgumentError(f"labels header names must be unique; got {head}")
            columns = [make_column(name, [row[j] for row in body]) for j, name in enumerate(head)]
        else:
            if any(_is_row(r) for r in labels):
                raise InvalidArgumentError(
                    "labels mixes rows (lists) and single values; give either one label per row or a table "
                    "whose first row is the header")
            if len(labels) != n:
                raise InvalidArgumentError(f"labels has {len(labels)} rows but vectors has {n}")
            columns = [make_column("label", labels)]
    elif header is not None:
        raise InvalidArgumentError("label_header was given without labels")
    if metadata is not None:
        if type(metadata).__name__ == "DataFrame":
            metadata = {str(c): metadata[c].tolist() for c in metadata.columns}
        if not isinstance(metadata, dict):
            raise InvalidArgumentError(
                f"metadata must be a dict of columns (name -> list of n values) or a pandas DataFrame; got {_describe(metadata)}")
        extra = _columns_from_mapping(metadata, n, "metadata")
        names = {c["name"] for c in columns}
        clash = [c["name"] for c in extra if c["name"] in names]
        if clash:
            raise InvalidArgumentError(f"metadata column names {clash} are already label columns")
        columns += extra
    return columns, has_header


def check_color(value, argument: str) -> tuple[int, int, int]:
    if (not isinstance(value, (list, tuple, np.ndarray)) or len(value) != 3
            or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= int(c) <= 255 for c in value)):
        raise InvalidArgumentError(f"{argument} must be three ints (r, g, b) in 0-255; got {_describe(value)}")
    return tuple(int(c) for c in value)
