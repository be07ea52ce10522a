"""Reshape strategies: turn one layer's output (batch, ...) into one vector per sample.

=================  =======================================================================
``flatten``        every non-batch dimension flattened: (batch, d1 * d2 * ...)
``mean``           the average over every non-batch dimension except the feature one:
                   tokens of (batch, seq, hidden) -> (batch, hidden) (padding excluded when
                   a token mask is set), positions of (batch, channels, *spatial) -> (batch, channels)
``avg_pool_1_1``   adaptive average pooling of (batch, channels, height, width) to 1x1,
``avg_pool_2_2``   2x2 or 3x3, then flattened: (batch, channels * k * k)
``avg_pool_3_3``
``cls``            token 0 of (batch, seq, hidden), the [CLS] token of BERT-style models
callable           ``fn(tensor) -> tensor or array`` with one row per sample
=================  =======================================================================
"""

from __future__ import annotations

import difflib

from ..errors import InvalidArgumentError

FIXED_SIZE_HINT = "use 'mean', 'cls' or an 'avg_pool_*' strategy, whose size does not depend on the input"


def _shape(x) -> tuple:
    return tuple(int(s) for s in x.shape)


def flatten(x, mask=None):
    """Every non-batch dimension flattened."""
    return x.reshape(x.shape[0], -1)


def mean(x, mask=None):
    """Average over tokens of (batch, seq, hidden) or positions of (batch, channels, *spatial)."""
    if x.ndim <= 2:
        return x.reshape(x.shape[0], -1)
    if x.ndim == 3:
        if mask is None:
            return x.mean(dim=1)
        if _shape(mask) != _shape(x)[:2]:
            raise InvalidArgumentError(
                f"the token mask has shape {_shape(mask)} but the layer output is {_shape(x)}; "
                "the mask must be (batch, seq) and match the output's first two dimensions")
        weights = mask.to(device=x.device, dtype=x.dtype).unsqueeze(-1)
        return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
    return x.mean(dim=tuple(range(2, x.ndim)))


def _avg_pool(size: int):
    def avg_pool(x, mask=None):
        if x.ndim != 4:
            hint = ("use 'mean' or 'cls' for (batch, seq, hidden), or a callable such as "
                    "lambda t: t.mean(dim=2) for a Conv1d's (batch, channels, length)" if x.ndim == 3
                    else "use 'flatten'" if x.ndim == 2 else "use a callable")
            raise InvalidArgumentError(
                f"avg_pool_{size}_{size} pools (batch, channels, height, width) outputs; this layer gave shape "
                f"{_shape(x)}. For it, {hint}")
        import torch.nn.functional as F
        return F.adaptive_avg_pool2d(x, (size, size)).reshape(x.shape[0], -1)
    avg_pool.__name__ = f"avg_pool_{size}_{size}"
    avg_pool.__doc__ = f"Adaptive average pooling to {size}x{size}, then flattened."
    return avg_pool


def cls(x, mask=None):
    """Token 0 of a (batch, seq, hidden) output."""
    if x.ndim != 3:
        raise InvalidArgumentError(
            f"the 'cls' strategy takes token 0 of a (batch, seq, hidden) output; this layer gave shape {_shape(x)}. "
            "Use 'mean' or 'flatten' for it, or select the hidden states of a transformer layer")
    return x[:, 0, :]


STRATEGIES = {
    "flatten": flatten,
    "mean": mean,
    "avg_pool_1_1": _avg_pool(1),
    "avg_pool_2_2": _avg_pool(2),
    "avg_pool_3_3": _avg_pool(3),
    "cls": cls,
}


def get_strategy(strategy, argument: str = "reshape"):
    """Return ``(name, fn(x, mask) -> (batch, d))`` for a strategy name or a callable."""
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            close = difflib.get_close_matches(strategy, STRATEGIES, n=3, cutoff=0.4)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise InvalidArgumentError(
                f"{argument}: unknown reshape strategy {strategy!r}{hint}; expected one of "
                f"{', '.join(repr(s) for s in STRATEGIES)} or a callable")
        return strategy, STRATEGIES[strategy]
    if callable(strategy):
        def custom(x, mask=None, fn=strategy):
            return fn(x)
        return getattr(strategy, "__name__", "custom"), custom
    raise InvalidArgumentError(
        f"{argument} must be a strategy name ({', '.join(repr(s) for s in STRATEGIES)}) or a callable; "
        f"got {type(strategy).__name__} {strategy!r}")
