"""Layer lookup: list_layers() and the resolution of layer indices and dotted names.

Layers are addressed by their linear index in ``model.named_modules()`` (as 3LC does) or
by their dotted name; the root module is index 0 and is named ``"<root>"``.
"""

from __future__ import annotations

import difflib
import numbers
from dataclasses import dataclass

from .._validation import _describe
from ..errors import InvalidArgumentError
from ._torch import check_module, model_device, to_device

ROOT_NAME = "<root>"


@dataclass(frozen=True)
class LayerInfo:
    """One entry of ``model.named_modules()``."""

    index: int
    name: str
    type: str
    depth: int
    params: int
    output_shape: str | None = None


class LayerTable(list):
    """The list of :class:`LayerInfo` that ``list_layers`` returns; ``str()`` gives the table."""

    def __str__(self) -> str:
        with_shapes = any(info.output_shape is not None for info in self)
        header = ["index", "name", "type", "params"] + (["output shape"] if with_shapes else [])
        rows = [[str(i.index), "  " * i.depth + i.name, i.type, f"{i.params:,}"]
                + ([i.output_shape or "-"] if with_shapes else []) for i in self]
        widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]
        right = {0, 3}

        def line(row):
            return "  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                             for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
        return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])

    def __repr__(self) -> str:
        return f"<LayerTable of {len(self)} layers; print() it for the table>"

    def names(self) -> list[str]:
        return [info.name for info in self]


def module_names(model) -> list[str]:
    """Dotted names in ``named_modules()`` order, the root as ``"<root>"``."""
    return [name or ROOT_NAME for name, _ in model.named_modules()]


def _describe_output(output) -> str:
    if hasattr(output, "shape") and hasattr(output, "dtype"):
        return "[" + ", ".join(str(int(s)) for s in output.shape) + "]"
    if output is None:
        return "None"
    if isinstance(output, (tuple, list)):
        return f"{type(output).__name__}(" + ", ".join(_describe_output(o) for o in output) + ")"
    items = _output_items(output)
    if items is not None:
        return f"{type(output).__name__}(" + ", ".join(f"{k}={_describe_output(v)}" for k, v in items) + ")"
    return type(output).__name__


def _output_items(output):
    """(key, value) pairs of a dict-like or dataclass output, or None for anything else."""
    import dataclasses
    if hasattr(output, "items") and hasattr(output, "keys"):
        return [(k, v) for k, v in output.items()]
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        return [(f.name, getattr(output, f.name)) for f in dataclasses.fields(output)]
    return None


def _call_model(model, example_input):
    """Call the model with a tensor, a tuple/list of positional arguments, or a dict of keyword arguments."""
    if isinstance(example_input, (tuple, list)) and not hasattr(example_input, "_fields"):
        return model(*example_input)
    if hasattr(example_input, "keys") and hasattr(example_input, "items"):
        return model(**dict(example_input.items()))
    return model(example_input)


def list_layers(model, example_input=None, *, show: bool = True) -> LayerTable:
    """List every module of ``model`` with its index, dotted name, type and parameter count.

    With ``example_input`` the model runs once (in eval mode, without gradients, with
    temporary hooks that are always removed) to add each module's output shape; the model's
    train/eval flags are restored afterwards, so batch-norm statistics are left untouched.

    Parameters
    ----------
    model : torch.nn.Module
    example_input : torch.Tensor, tuple of positional arguments or dict of keyword arguments, optional
        A small batch as the model expects it; tensors are moved to the model's device.
    show : bool
        Print the table (``str()`` of the result) to stdout.

    Returns
    -------
    LayerTable
        A list of :class:`LayerInfo`; use an ``index`` or ``name`` as a layer elsewhere.
    """
    torch = check_module(model, "list_layers")
    named = list(model.named_modules())
    shapes: dict[int, list[str]] = {}
    if example_input is not None:
        handles = []
        modes = {m: m.training for _, m in named}
        try:
            for index, (_, module) in enumerate(named):
                def hook(_module, _inputs, output, index=index):
                    shapes.setdefault(index, []).append(_describe_output(output))
                handles.append(module.register_forward_hook(hook))
            model.eval()
            with torch.no_grad():
                _call_model(model, to_device(example_input, model_device(model)))
        finally:
            for handle in handles:
                handle.remove()
            for module, training in modes.items():
                module.training = training
    table = LayerTable()
    for index, (name, module) in enumerate(named):
        shape = None
        if example_input is not None:
            calls = shapes.get(index)
            shape = "not called" if not calls else calls[0] + (f" (x{len(calls)} calls)" if len(calls) > 1 else "")
        table.append(LayerInfo(index, name or ROOT_NAME, type(module).__name__, name.count(".") + (1 if name else 0),
                               sum(p.numel() for p in module.parameters()), shape))
    if show:
        print(table)  # list_layers is a user-facing inspection tool, like torchinfo's summary
    return table


def resolve_layer(model, layer, names: list[str] | None = None, argument: str = "layers") -> str:
    """Return the dotted name of ``layer`` (an index into ``named_modules()``, a name, or a module)."""
    names = module_names(model) if names is None else names
    if isinstance(layer, bool):
        raise InvalidArgumentError(f"{argument} entries must be a layer index (int) or dotted name (str); got bool {layer!r}")
    if isinstance(layer, numbers.Integral):
        index = int(layer)
        if not -len(names) <= index < len(names):
            raise InvalidArgumentError(
                f"{argument}: layer index {index} is out of range; the model has {len(names)} modules "
                f"(indices 0-{len(names) - 1}). Call list_layers(model) to see them")
        return names[index]
    if isinstance(layer, str):
        if layer in names:
            return layer
        if layer == "":
            return ROOT_NAME
        close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
        close += [n for n in names if n.endswith("." + layer) and n not in close][:5]
        hint = f"; close matches: {', '.join(repr(c) for c in close)}" if close else ""
        raise InvalidArgumentError(
            f"{argument}: the model has no layer named {layer!r}{hint}. Call list_layers(model) to see every layer")
    for index, (_, module) in enumerate(model.named_modules()):
        if module is layer:
            return names[index]
    raise InvalidArgumentError(
        f"{argument} entries must be a layer index (int), a dotted name (str) or a submodule of the model; "
        f"got {_describe(layer)}")


def resolve_layers(model, layers, argument: str = "layers") -> list[str]:
    """Resolve one layer or a list of them to unique dotted names, in the order given."""
    if layers is None:
        raise InvalidArgumentError(f"{argument} must name at least one layer (an index or dotted name); got None")
    if isinstance(layers, (str, numbers.Integral)) or not hasattr(layers, "__iter__"):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise InvalidArgumentError(f"{argument} must name at least one layer; got an empty list")
    names = module_names(model)
    resolved: list[str] = []
    given: dict[str, object] = {}
    for layer in layers:
        name = resolve_layer(model, layer, names, argument)
        if name in given:
            raise InvalidArgumentError(f"{argument}: layer {name!r} is given twice (as {given[name]!r} and {layer!r})")
        given[name] = layer
        resolved.append(name)
    return resolved


def get_module(model, name: str):
    return model if name == ROOT_NAME else model.get_submodule(name)
