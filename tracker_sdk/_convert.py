"""Value conversion: to_numpy() for arrays, plain_value() for values stored in records.

``to_numpy`` turns lists, numpy arrays, torch tensors and PIL images into numpy arrays;
``plain_value`` turns parameters, "others", asset metadata and reducer parameters into
msgpack-safe python values. torch and PIL are imported lazily, only when such an object is
actually passed in. (Metadata columns have their own typed cells: runformat.codecs.)
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidArgumentError


def is_torch_tensor(value) -> bool:
    """True for a torch.Tensor, without importing torch when it is not already loaded."""
    cls = type(value)
    return cls.__module__.startswith("torch") and hasattr(value, "detach") and hasattr(value, "cpu")


def to_numpy(value, dtype=None) -> np.ndarray:
    """Return ``value`` as a numpy array (no copy when it already is one of ``dtype``).

    Torch tensors are detached and moved to the CPU first, so tensors that require grad
    or live on a GPU work (Comet loops forever on them).
    """
    if is_torch_tensor(value):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    elif type(value).__module__.startswith("PIL.") and hasattr(value, "getdata"):
        value = np.asarray(value)
    elif isinstance(value, (list, tuple)) and value and any(is_torch_tensor(v) for v in value):
        value = [to_numpy(v) for v in value]
    return np.asarray(value, dtype=dtype)


def plain_value(value, argument: str = "value"):
    """A msgpack-safe copy of ``value``: numpy/torch scalars unwrapped, arrays as (nested) lists,
    tuples as lists, mapping keys as strings, and anything else as its ``str``.

    Text that cannot be stored as UTF-8 (a lone surrogate) raises InvalidArgumentError naming
    ``argument`` and where in it, before anything is written."""
    if is_torch_tensor(value) or isinstance(value, np.ndarray):
        value = to_numpy(value)
        value = value.item() if value.size == 1 else value.tolist()
        return _checked_text(value, argument) if isinstance(value, str) else plain_value(value, argument) \
            if isinstance(value, list) else value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return _checked_text(value, argument)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain_value(v, f"{argument}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {_checked_text(str(k), f"{argument} key"): plain_value(v, f"{argument}[{k!r}]") for k, v in value.items()}
    return _checked_text(str(value), argument)


def _checked_text(text: str, argument: str) -> str:
    from .runformat.names import text_problem

    problem = text_problem(text)
    if problem is not None:
        raise InvalidArgumentError(f"{argument} {problem}")
    return text
