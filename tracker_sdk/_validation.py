"""Small named check_* functions: each converts one argument and raises a clear error.

Every message names the argument, what was expected and what was got, and every check
runs before anything is written.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._convert import is_torch_tensor, to_numpy
from .errors import InvalidArgumentError
from .runformat import encode_metadata, make_column, names


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def check_vectors(vectors, argument: str = "vectors", *, allow_nonfinite: bool = False) -> np.ndarray:
    """Return vectors as a C-contiguous float32 array (n_samples, n_features).

    Rows of shape ``(n, ...)`` are flattened per row, as Comet does. The one check of vectors:
    log_embedding and every Reducer's fit and transform call it.
    """
    if vectors is None:
        raise InvalidArgumentError(f"{argument} must be an array-like of shape (n_samples, n_features); got None")
    try:
        array = to_numpy(vectors)
    except Exception as exc:
        raise InvalidArgumentError(
            f"{argument} must be an array-like of numbers of shape (n_samples, n_features); "
            f"got {_describe(vectors)} that numpy cannot convert ({exc})") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InvalidArgumentError(
            f"{argument} must hold numbers in rows of equal length; got {_describe(vectors) if not isinstance(vectors, np.ndarray) else 'array of dtype ' + str(array.dtype)}")
    if array.ndim < 2:
        raise InvalidArgumentError(
            f"{argument} must be 2D (n_samples, n_features); got shape {array.shape}. "
            "For a single sample use vectors.reshape(1, -1)")
    if array.shape[0] == 0:
        raise InvalidArgumentError(f"{argument} must have at least one row; got shape {array.shape}")
    if array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    if array.shape[1] == 0:
        raise InvalidArgumentError(f"{argument} must have at least one feature per row; got shape {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not allow_nonfinite:
        check_finite(array, argument)
    return array


def check_finite(array: np.ndarray, argument: str = "vectors", *, hint: float | None = None) -> None:
    """Raise InvalidArgumentError naming the first NaN/Inf of a float32 2-D ``array``.

    A sum propagates NaN/Inf in one pass without a mask; accumulating in float32 skips a float64
    conversion of every value (2x faster), and a sum that overflows only sends finite vectors
    through the exact check. ``hint``: a number already computed from every value (a trace,
    say) that stands in for that sum.
    """
    if np.isfinite(np.sum(array) if hint is None else hint):
        return
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise InvalidArgumentError(
            f"{argument} must be finite; got {array[tuple(bad)]} at row {bad[0]}, column {bad[1]} "
            f"({int((~finite).sum())} non-finite values). Pass allow_nonfinite=True to log_embedding "
            "to store them anyway (they cannot be reduced)")


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


def check_text(value, argument: str, *, allow_none: bool = False, max_length: int = names.MAX_NAME_LENGTH,
               file_name: bool = False) -> str | None:
    """A name the user gives (run name, tag, metric, parameter, title, group, asset name): the
    one rule of :func:`~tracker_sdk.runformat.names.check_name` (UTF-8, no control characters,
    a length cap; no Windows device name when it may become a ``file_name``)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        expected = "a string or None" if allow_none else "a string"
        raise InvalidArgumentError(f"{argument} must be {expected}; got {_describe(value)}")
    return names.check_name(value, argument, max_length=max_length, file_name=file_name)


def check_project_name(value) -> str:
    return names.check_project(check_text(value, "project_name"), "project_name")


def _is_row(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) or is_torch_tensor(value)


def _is_row_type(cls: type) -> bool:
    """What ``_is_row`` says of every value of type ``cls`` (asked once per type, not per label)."""
    return issubclass(cls, (list, tuple, np.ndarray)) or (
        cls.__module__.startswith("torch") and hasattr(cls, "detach") and hasattr(cls, "cpu"))


def _columns_from_mapping(mapping, n: int, argument: str) -> list[dict]:
    columns = []
    for name, values in mapping.items():
        if is_torch_tensor(values) or isinstance(values, np.ndarray):
            values = to_numpy(values)
            values = values if values.ndim == 1 else values.tolist()  # 1-D arrays are typed from their dtype
        else:
            values = list(values)
        if len(values) != n:
            raise InvalidArgumentError(f"{argument} column {name!r} has {len(values)} rows but vectors has {n}")
        columns.append(make_column(str(name), values))
    return columns


def check_labels(labels, n: int, *, header=None, metadata=None, check_text: bool = True) -> tuple[list[dict], bool]:
    """Return (typed metadata columns, whether a header row was given).

    Accepted: a flat list (one column "label"); Comet's table form, a list of rows whose
    first row is the header; a 2-D array with an explicit ``header``; ``metadata`` as a dict
    of columns or a pandas DataFrame (merged after the label columns). ``check_text`` False
    leaves the UTF-8 check of text cells to :func:`encode_columns` (one pass instead of two).
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
            elif labels.ndim == 1 and header is None and labels.dtype.kind in "Uiubf":
                if len(labels) != n:
                    raise InvalidArgumentError(f"labels has {len(labels)} rows but vectors has {n}")
                # typed from its dtype, never cell by cell
                return _with_metadata([make_column("label", labels)], False, metadata, n, check_text)
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
        row_types = [_is_row_type(t) for t in set(map(type, labels))]
        if labels and all(row_types):
            rows = [to_numpy(r).tolist() if not isinstance(r, (list, tuple)) else r for r in labels]
            head, body = [str(h) for h in rows[0]], rows[1:]
            has_header = True
            if len(body) != n:
                raise InvalidArgumentError(
                    f"labels has {len(body)} rows after its header row but vectors has {n} "
                    "(in table form the first row of labels is the header)")
            if set(map(len, body)) - {len(head)}:
                i = next(i for i, row in enumerate(body) if len(row) != len(head))
                raise InvalidArgumentError(
                    f"labels header has {len(head)} columns but row {i} has {len(body[i])}")
            if len(set(head)) != len(head):
                raise InvalidArgumentError(f"labels header names must be unique; got {head}")
            cells = list(zip(*body)) if body else [() for _ in head]  # transposed in C, not cell by cell
            columns = [make_column(name, cells[j]) for j, name in enumerate(head)]
        else:
            if any(row_types):
                raise InvalidArgumentError(
                    "labels mixes rows (lists) and single values; give either one label per row or a table "
                    "whose first row is the header")
            if len(labels) != n:
                raise InvalidArgumentError(f"labels has {len(labels)} rows but vectors has {n}")
            columns = [make_column("label", labels)]
    elif header is not None:
        raise InvalidArgumentError("label_header was given without labels")
    return _with_metadata(columns, has_header, metadata, n, check_text)


def encode_columns(columns: list[dict], n: int) -> bytes:
    """The metadata blob of checked columns; a text cell that is not UTF-8 (a lone surrogate)
    raises the error of :func:`check_labels` naming its column and row, before anything is written."""
    try:
        return encode_metadata(columns, n)
    except UnicodeEncodeError:
        _check_column_text(columns)
        raise


def _check_column_text(columns: list[dict]) -> None:
    """Text cells must encode as UTF-8 (a lone surrogate names its row)."""
    for column in columns:
        values = column["values"]
        if column["type"] not in ("str", "mixed"):
            continue  # numbers and booleans only (and None)
        try:
            try:  # one pass over every cell in C; the slow search only on failure
                "".join(values).encode("utf-8")
            except TypeError:  # None or non-text cells among the text
                "".join([v for v in values if isinstance(v, str)]).encode("utf-8")
        except UnicodeEncodeError:
            row = next(i for i, v in enumerate(column["values"]) if isinstance(v, str) and names.text_problem(v))
            raise InvalidArgumentError(
                f"labels/metadata column {column['name']!r} row {row} {names.text_problem(column['values'][row])}; "
                f"got {column['values'][row][:60]!r}") from None


def _with_metadata(columns: list[dict], has_header: bool, metadata, n: int,
                   check_text: bool = True) -> tuple[list[dict], bool]:
    """Append the ``metadata=`` columns after the label columns, then check every column's name
    and (with ``check_text``) text (check_labels' last step)."""
    if metadata is not None:
        if type(metadata).__name__ == "DataFrame":
            metadata = {str(c): metadata[c].tolist() for c in metadata.columns}
        if not isinstance(metadata, dict):
            raise InvalidArgumentError(
                f"metadata must be a dict of columns (name -> list of n values) or a pandas DataFrame; got {_describe(metadata)}")
        extra = _columns_from_mapping(metadata, n, "metadata")
        taken = {c["name"] for c in columns}
        clash = [c["name"] for c in extra if c["name"] in taken]
        if clash:
            raise InvalidArgumentError(f"metadata column names {clash} are already label columns")
        columns += extra
    for column in columns:
        names.check_name(column["name"], "labels/metadata column name")
    if check_text:
        _check_column_text(columns)
    return columns, has_header


def check_color(value, argument: str) -> tuple[int, int, int]:
    if (not isinstance(value, (list, tuple, np.ndarray)) or len(value) != 3
            or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= int(c) <= 255 for c in value)):
        raise InvalidArgumentError(f"{argument} must be three ints (r, g, b) in 0-255; got {_describe(value)}")
    return tuple(int(c) for c in value)
