"""ActivationCollector: forward hooks that turn layer outputs into one vector per sample.

Each hook selects a tensor from the layer's output (tuples, dicts and dataclasses need an
explicit selector), detaches it, applies the layer's reshape strategy on the tensor's own
device, and appends the float32 rows on the CPU to a bounded :class:`ActivationBuffer`.
"""

from __future__ import annotations

import contextlib
import numbers
import warnings

import numpy as np

from ..errors import InvalidArgumentError
from ._torch import check_module, require_torch
from .buffer import DEFAULT_MAX_MEMORY_BYTES, ActivationBuffer
from .layers import _describe_output, _output_items, get_module, resolve_layer, resolve_layers
from .reshape import get_strategy

#: Per-sample sizes above this get a warning suggesting a pooling strategy.
LARGE_VECTOR_WARNING = 4096


class LargeActivationWarning(UserWarning):
    """A layer gives more values per sample than embedding tools handle well."""


class RepeatedCallWarning(UserWarning):
    """A collected layer ran several times in one forward pass, so it gives several rows per sample."""


def _check_call(value, argument: str):
    if value == "all" or (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        return value
    raise InvalidArgumentError(
        f"{argument} must be 'all' (keep the rows of every call) or an int (which call of each forward pass "
        f"to keep: 0 for the first, -1 for the last); got {type(value).__name__} {value!r}")


def _per_layer(value, layers: list[str], model, argument: str, default) -> dict[str, object]:
    """Expand a single value or a {layer: value} dict into one value per resolved layer."""
    if isinstance(value, dict):
        out = {name: default for name in layers}
        for key, item in value.items():
            name = resolve_layer(model, key, argument=f"{argument} key")
            if name not in out:
                raise InvalidArgumentError(
                    f"{argument} names layer {key!r} ({name!r}), which is not among the collected layers {layers}")
            out[name] = item
        return out
    return {name: value for name in layers}


def _check_selector(selector, argument: str):
    if selector is None or callable(selector) or isinstance(selector, str) or (
            isinstance(selector, numbers.Integral) and not isinstance(selector, bool)):
        return selector
    raise InvalidArgumentError(
        f"{argument} must be an int (position in a tuple output), a str (key or attribute of a dict or "
        f"dataclass output) or a callable(output) -> tensor; got {type(selector).__name__} {selector!r}")


def _is_tensor(value) -> bool:
    return hasattr(value, "detach") and hasattr(value, "shape") and hasattr(value, "dtype")


class ActivationCollector:
    """Collect activations of chosen layers while the model runs.

    Parameters
    ----------
    model : torch.nn.Module
    layers : int, str or list of them
        Indices into ``model.named_modules()`` or dotted names (see :func:`list_layers`).
    reshape : str, callable, or dict {layer: str or callable}
        How each output becomes one vector per sample: ``"flatten"`` (default), ``"mean"``,
        ``"avg_pool_1_1"``, ``"avg_pool_2_2"``, ``"avg_pool_3_3"``, ``"cls"`` or
        ``fn(tensor) -> (batch, n_features)``. Layers left out of a dict use ``"flatten"``.
    select : int, str, callable, or dict {layer: selector}, optional
        Which tensor to take when a layer returns a tuple (an int), a dict or dataclass such as
        a transformers ``ModelOutput`` (a key), or anything else (``fn(output) -> tensor``).
    capacity : int, optional
        Expected number of samples, preallocated at once.
    max_memory_bytes : int
        RAM for the collected rows of all layers together; beyond it rows spill to temporary
        files in ``spill_dir`` and are returned as read-only memory maps.
    call : "all", int, or dict {layer: "all" or int}
        For a module that runs more than once per forward pass of ``model`` (a ReLU shared
        inside a ResNet block, a weight-tied layer): ``"all"`` (default) keeps a row per call
        and warns, an int keeps only that call of each pass (0 the first, -1 the last).

    Examples
    --------
    >>> with ActivationCollector(model, layers=["fc1"]) as collector:   # doctest: +SKIP
    ...     logits = model(x)
    >>> collector.activations["fc1"].shape                              # doctest: +SKIP
    (1797, 64)

    Hooks are removed when the ``with`` block ends, also when the forward pass raises. They run
    in train and eval mode and under ``torch.no_grad()``; outputs are detached, so collecting
    never changes gradients. A module called several times per forward pass of ``model`` adds
    a row per call and warns once (:class:`RepeatedCallWarning`); choose one call with ``call=``.
    """

    def __init__(self, model, layers, reshape="flatten", *, select=None, capacity: int | None = None,
                 max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES, spill_dir=None,
                 warn_above: int = LARGE_VECTOR_WARNING, call="all"):
        check_module(model, "ActivationCollector")
        self.model = model
        self.layers = resolve_layers(model, layers)
        self._strategies = {name: get_strategy(s, f"reshape for layer {name!r}")
                            for name, s in _per_layer(reshape, self.layers, model, "reshape", "flatten").items()}
        self._selectors = {name: _check_selector(s, f"select for layer {name!r}")
                           for name, s in _per_layer(select, self.layers, model, "select", None).items()}
        self._calls = {name: _check_call(c, f"call for layer {name!r}")
                       for name, c in _per_layer(call, self.layers, model, "call", "all").items()}
        if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, numbers.Integral)
                                     or capacity < 0):
            raise InvalidArgumentError(f"capacity must be a non-negative int or None; got {capacity!r}")
        if isinstance(max_memory_bytes, bool) or not isinstance(max_memory_bytes, numbers.Integral) \
                or max_memory_bytes <= 0:
            raise InvalidArgumentError(f"max_memory_bytes must be a positive int; got {max_memory_bytes!r}")
        self.capacity = capacity
        self.max_memory_bytes = int(max_memory_bytes)
        self.spill_dir = spill_dir
        self.warn_above = warn_above
        self._handles: list = []
        self._mask = None
        self._warned: set[str] = set()
        self._warned_repeated: set[str] = set()
        self._depth = 0  # nesting of the model's own forward passes now running
        self._pending: dict[str, list] = {}  # rows of each layer's calls in the current forward pass
        self._buffers: dict[str, ActivationBuffer] = {}
        self.clear()

    # -- hooks ---------------------------------------------------------------------------
    def attach(self) -> "ActivationCollector":
        """Register the forward hooks (``with`` does this for you)."""
        if self._handles:
            return self
        try:
            self._handles.append(self.model.register_forward_pre_hook(self._forward_starts))
            self._handles.append(self.model.register_forward_hook(self._forward_ends, always_call=True))
            for name in self.layers:
                module = get_module(self.model, name)
                self._handles.append(module.register_forward_hook(self._make_hook(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        """Remove every hook this collector registered; safe to call twice."""
        while self._handles:
            self._handles.pop().remove()

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def __enter__(self) -> "ActivationCollector":
        return self.attach()

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.remove()
        self._mask = None
        return False

    def _make_hook(self, name: str):
        torch = require_torch("ActivationCollector")
        strategy_name, strategy = self._strategies[name]

        def hook(_module, _inputs, output):
            tensor = self._select(name, output)
            with torch.no_grad():
                x = tensor.detach()
                if not x.is_floating_point():
                    x = x.float()
                rows = strategy(x, self._mask)
                if not _is_tensor(rows):
                    rows = torch.as_tensor(np.asarray(rows))
                if rows.ndim < 1 or rows.shape[0] != x.shape[0]:
                    raise InvalidArgumentError(
                        f"reshape strategy {strategy_name!r} for layer {name!r} must return one row per sample "
                        f"({x.shape[0]}); got shape {tuple(rows.shape)}")
                rows = rows.reshape(rows.shape[0], -1).to(device="cpu", dtype=torch.float32)
            self._warn_if_large(name, strategy_name, tuple(x.shape), rows.shape[1])
            if self._depth:
                self._pending.setdefault(name, []).append(rows.numpy())
            else:  # the layer was run on its own, outside a forward pass of the model
                self._buffers[name].append(rows.numpy())
        return hook

    def _forward_starts(self, _module, _inputs) -> None:
        self._depth += 1

    def _forward_ends(self, _module, _inputs, output) -> None:
        """Keep the chosen calls of each layer once the model's forward pass is over.

        Rows are held until then because a module may run again later in the same pass; a
        pass that raised (``output`` is None under ``always_call``) keeps nothing.
        """
        self._depth = max(0, self._depth - 1)
        if self._depth:
            return
        pending, self._pending = self._pending, {}
        if output is None:
            return
        for name, calls in pending.items():
            choice = self._calls[name]
            if len(calls) > 1:
                self._warn_repeated(name, len(calls), choice)
            if choice == "all":
                for rows in calls:
                    self._buffers[name].append(rows)
            elif -len(calls) <= choice < len(calls):
                self._buffers[name].append(calls[choice])
            else:
                raise InvalidArgumentError(
                    f"call={choice} for layer {name!r}, but it ran {len(calls)} time(s) in this forward pass")

    def _warn_repeated(self, name: str, count: int, choice) -> None:
        if name in self._warned_repeated or choice != "all":
            return
        self._warned_repeated.add(name)
        warnings.warn(
            f"layer {name!r} ran {count} times in one forward pass, so it gives {count} rows per sample; keep one "
            f"call with ActivationCollector(..., call={{{name!r}: 0}}) (0 the first call, -1 the last), or collect "
            "a module that runs once", RepeatedCallWarning, stacklevel=2)

    def _select(self, name: str, output):
        selector = self._selectors[name]
        if selector is None:
            if _is_tensor(output):
                return output
            raise InvalidArgumentError(self._select_help(name, output))
        try:
            if callable(selector):
                chosen = selector(output)
            elif isinstance(selector, str) and _output_items(output) is not None and not hasattr(output, "keys"):
                chosen = getattr(output, selector)
            else:
                chosen = output[selector]
        except (KeyError, IndexError, AttributeError, TypeError) as exc:
            raise InvalidArgumentError(
                f"select={selector!r} for layer {name!r} does not fit its output {_describe_output(output)} ({exc!r})"
            ) from None
        if not _is_tensor(chosen):
            raise InvalidArgumentError(
                f"select={selector!r} for layer {name!r} gave {type(chosen).__name__}, not a tensor; "
                f"the output is {_describe_output(output)}")
        return chosen

    @staticmethod
    def _select_help(name: str, output) -> str:
        described = _describe_output(output)
        if isinstance(output, (tuple, list)):
            first = next((i for i, o in enumerate(output) if _is_tensor(o)), 0)
            example = f"select={{{name!r}: {first}}}"
        elif _output_items(output) is not None:
            keys = [k for k, v in _output_items(output) if _is_tensor(v)]
            example = f"select={{{name!r}: {keys[0]!r}}}" if keys else f"select={{{name!r}: <key>}}"
        else:
            example = f"select={{{name!r}: lambda output: <tensor>}}"
        return (f"layer {name!r} returned {described}, not a tensor; say which tensor to collect with "
                f"ActivationCollector(..., {example}) (an int for a tuple, a key for a dict or dataclass, "
                "or a callable)")

    def _warn_if_large(self, name: str, strategy: str, shape: tuple, dim: int) -> None:
        if dim <= self.warn_above or name in self._warned:
            return
        self._warned.add(name)
        if len(shape) == 4:
            hint = ("try reshape='avg_pool_1_1' (or 'avg_pool_2_2') for this "
                    f"(batch, {shape[1]}, {shape[2]}, {shape[3]}) output: {shape[1]} or {4 * shape[1]} values")
        elif len(shape) == 3:
            hint = f"try reshape='mean' or 'cls' for this (batch, {shape[1]}, {shape[2]}) output: {shape[2]} values"
        else:
            hint = "try a pooling strategy or an earlier, smaller layer"
        warnings.warn(
            f"layer {name!r} gives {dim:,} values per sample with reshape {strategy!r}; embedding tools work best "
            f"below a few thousand (memory, reductions and neighbour search grow with it); {hint}",
            LargeActivationWarning, stacklevel=2)

    # -- token mask ----------------------------------------------------------------------
    def set_token_mask(self, mask) -> None:
        """Exclude padding from ``mean`` over (batch, seq, hidden) outputs of the next forward passes.

        ``mask`` is (batch, seq) with 1 for real tokens, e.g. a tokenizer's ``attention_mask``;
        None clears it.
        """
        if mask is not None and not _is_tensor(mask):
            torch = require_torch("set_token_mask")
            mask = torch.as_tensor(np.asarray(mask))
        self._mask = mask

    @contextlib.contextmanager
    def token_mask(self, mask):
        """``with collector.token_mask(batch["attention_mask"]): model(**batch)``"""
        previous = self._mask
        self.set_token_mask(mask)
        try:
            yield self
        finally:
            self._mask = previous

    # -- results -------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget the rows collected so far (arrays returned earlier stay valid)."""
        for buffer in self._buffers.values():
            buffer.close()
        per_layer = max(1, self.max_memory_bytes // len(self.layers))
        self._buffers = {name: ActivationBuffer(name, self.capacity, per_layer, self.spill_dir)
                         for name in self.layers}

    @property
    def n(self) -> dict[str, int]:
        """Rows collected so far, per layer."""
        return {name: buffer.n for name, buffer in self._buffers.items()}

    @property
    def activations(self) -> dict[str, np.ndarray]:
        """``{layer name: (n_samples, n_features) float32 array}`` in the order the layers were given."""
        return {name: self._buffers[name].array() for name in self.layers}

    def __getitem__(self, layer) -> np.ndarray:
        name = resolve_layer(self.model, layer, argument="layer")
        if name not in self._buffers:
            raise InvalidArgumentError(f"layer {name!r} is not collected by this collector; it collects {self.layers}")
        return self._buffers[name].array()

    def __repr__(self) -> str:
        layers = ", ".join(f"{name}: {self._strategies[name][0]}" for name in self.layers)
        return f"ActivationCollector({layers}; rows={self.n}, attached={self.attached})"
