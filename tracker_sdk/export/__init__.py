"""Exports of runs to other tools' formats; for now the TensorBoard projector."""

from .tensorboard import export_tensorboard

__all__ = ["export_tensorboard"]
