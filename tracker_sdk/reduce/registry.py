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


def get_reducer(name: str, **params) -> Reducer:
    """A new, unfitted reducer: ``get_reducer("umap", n_components=2, random_state=0)``.

    Unknown names list the available ones, unknown parameters list the valid ones, and bad
    values are reported here rather than at fit time.
    """
    cls = reducer_class(name)
    valid = cls._param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise InvalidArgumentError(f"{cls.method} reducer has no parameter(s) {', '.join(map(repr, unknown))}; "
                                   f"valid parameters: {', '.join(valid)}")
    reducer = cls(**params)
    reducer.check_params()
    return reducer
