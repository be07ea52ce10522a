"""Lazy torch import and small tensor helpers shared by the collect modules."""

from __future__ import annotations

from .._validation import _describe
from ..errors import InvalidArgumentError, MissingDependencyError


def require_torch(feature: str):
    """Import torch, or raise MissingDependencyError naming the ``torch`` extra."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "torch", feature) from None
    return torch


def check_module(model, feature: str):
    torch = require_torch(feature)
    if not isinstance(model, torch.nn.Module):
        raise InvalidArgumentError(f"model must be a torch.nn.Module; got {_describe(model)}")
    return torch


def model_device(model):
    """The device of the model's first parameter or buffer (CPU for a model without any)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return require_torch("model_device").device("cpu")


def to_device(value, device):
    """Move every tensor inside ``value`` (nested tuples, lists, dicts) to ``device``."""
    if device is None:
        return value
    if hasattr(value, "to") and hasattr(value, "device") and hasattr(value, "detach"):
        return value.to(device) if value.device != device else value
    if isinstance(value, dict) or (hasattr(value, "keys") and hasattr(value, "items") and hasattr(value, "__getitem__")):
        moved = {k: to_device(v, device) for k, v in value.items()}
        try:
            return type(value)(moved)
        except Exception:  # mappings whose constructor differs (e.g. BatchEncoding variants)
            return moved
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(to_device(v, device) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value
