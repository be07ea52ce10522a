"""to_numpy(): turn lists, numpy arrays, torch tensors and PIL images into numpy arrays.

torch and PIL are imported lazily, only when such an object is actually passed in.
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
