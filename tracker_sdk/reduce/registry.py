"""get_reducer(name, **params): reducers chosen by name, imported on first use."""

from __future__ import annotations

import importlib

from ..errors import InvalidArgumentError
from .base import Reducer

#: name -> (module, class); the module imports its library only inside fit
REDUCERS = {
    "pca": ("tracker_sdk.reduce.pca", "PCAReducer"),
    "tsne": ("tracker_sdk.reduce.tsne", "TSNEReducer"),
    "umap": ("tracker_sdk.reduce.umap", "UMAPReducer"),
    "pacmap": ("tracker_sdk.reduce.pacmap", "PaCMAPReducer"),
}
_ALIASES = {"t-sne": "tsne", "opentsne": "tsne"}


def available_reducers() -> list[str]:
    return sorted(REDUCERS)


def reducer_class(name: str) -> type:
    if not isinstance(name, str):
        raise InvalidArgumentError(f"reducer name must be a string; got {type(name).__name__} {name!r}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in REDUCERS:
        raise InvalidArgumentError(f"unknown reducer {name!r}; available: {', '.join(available_reducers())}")
    module, cls = REDUCERS[key]
    return getattr(importlib.import_module(module), cls)


def get_reducer(name: str, *args, **params) -> Reducer:
    """A new, unfitted reducer: ``get_reducer("umap", n_components=2, random_state=0)``.

    Unknown names list the available ones, unknown parameters list the valid ones, and bad
    values are reported here rather than at fit time. Parameters are keyword arguments only;
    a positional dict (``get_reducer("umap", {"n_neighbors": 5})``) is refused with the
    keyword form to use instead of Python's bare ``TypeError``.
    """
    if args:
        given = args[0] if len(args) == 1 and isinstance(args[0], dict) else None
        if given and all(isinstance(k, str) and k.isidentifier() for k in given):
            keywords = ", ".join(f"{k}={v!r}" for k, v in given.items())
        else:
            keywords = "n_components=2, random_state=0"
        got = ", ".join(repr(a) for a in args)
        raise InvalidArgumentError(f"params: get_reducer takes the reducer's parameters as keyword arguments, "
                                   f"e.g. get_reducer({name!r}, {keywords}) (or **params for a dict); "
                                   f"got {len(args)} positional argument(s) after name: {got}")
    cls = reducer_class(name)
    valid = cls._param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise InvalidArgumentError(f"{cls.method} reducer has no parameter(s) {', '.join(map(repr, unknown))}; "
                                   f"valid parameters: {', '.join(valid)}")
    reducer = cls(**params)
    reducer.check_params()
    return reducer
