"""Value conversion: to_numpy() for arrays, plain_value() for values stored in records.

``to_numpy`` turns lists, numpy arrays, torch tensors and PIL images into numpy arrays;
``plain_value`` turns parameters, "others", asset metadata and reducer parameters into
msgpack-safe python values. torch and PIL are imported lazily, only when such an object is
actually passed in. (Metadata columns have their own typed cells: runformat.codecs.)
"""

from __future__ import annotations

import numpy as np


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


def plain_value(value):
    """A msgpack-safe copy of ``value``: numpy/torch scalars unwrapped, arrays as (nested) lists,
    tuples as lists, mapping keys as strings, and anything else as its ``str``."""
    if is_torch_tensor(value) or isinstance(value, np.ndarray):
        value = to_numpy(value)
        return value.item() if value.size == 1 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    return str(value)
