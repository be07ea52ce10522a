"""The Reducer base class: scikit-learn style parameters, input checks and fitted state.

A subclass implements ``_fit(X) -> coordinates`` and ``_transform(X) -> coordinates`` on
float32 arrays that were already checked; the base class does validation, the
``NotFittedError`` before fit, the PCA pre-reduction of the nonlinear methods, and the
shortcut that returns the fitted coordinates when ``transform`` is given the training array.
"""

from __future__ import annotations

import inspect
import numbers
import os
import sys
import zlib
from pathlib import Path

import numpy as np

from ..errors import InvalidArgumentError, MissingDependencyError, NotFittedError

METRICS = ("euclidean", "cosine")


def check_input(vectors, argument: str = "vectors") -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 array (n_samples, n_features)."""
    from .._convert import to_numpy

    try:
        array = to_numpy(vectors)
    except Exception as exc:
        raise InvalidArgumentError(f"{argument} must be an array-like of numbers; got {type(vectors).__name__} ({exc})") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InvalidArgumentError(f"{argument} must hold numbers; got an array of dtype {array.dtype}")
    if array.ndim != 2:
        hint = ". For a single sample use vectors.reshape(1, -1)" if array.ndim == 1 else ""
        raise InvalidArgumentError(f"{argument} must be 2D (n_samples, n_features); got shape {array.shape}{hint}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidArgumentError(f"{argument} must have at least one row and one column; got shape {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise InvalidArgumentError(f"{argument} must be finite to be reduced; got {array[tuple(bad)]} at row {bad[0]}, column {bad[1]}")
    return array


def fingerprint(array: np.ndarray) -> tuple:
    """A cheap identity of an array's content (shape plus crc32 of its bytes)."""
    return tuple(array.shape), zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))


def numba_cache_dir() -> Path:
    """Where numba keeps compiled UMAP/PaCMAP code between processes (a user cache dir)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tracker_sdk" / "numba"


def use_numba_cache() -> None:
    """Point numba at a writable user cache before it is first imported (a no-op after)."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        path = numba_cache_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return
        os.environ["NUMBA_CACHE_DIR"] = str(path)


#: packages whose numba functions the SDK keeps in the on-disk cache
NUMBA_PACKAGES = ("umap", "pynndescent", "pacmap")


def cache_numba_functions() -> int:
    """Turn on numba's on-disk cache for the not-yet-compiled functions of NUMBA_PACKAGES.

    umap-learn declares its hot functions (``fast_knn_indices``, ``smooth_knn_dist``, the
    layout epoch, ...) without ``cache=True``, so every fresh process compiled them again:
    10-60 s of a UMAP fit. Enabling the cache on those dispatchers before their first call
    lets a second process load them instead (measured in benchmarks/reduce.py). Returns how
    many functions were switched on; safe to call any number of times.
    """
    if "numba" not in sys.modules:
        return 0
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    switched = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".", 1)[0] not in NUMBA_PACKAGES:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and isinstance(value._cache, NullCache) and not value.overloads:
                try:
                    value.enable_caching()
                except Exception:  # no cache locator for this function's file: it compiles as before
                    continue
                switched += 1
    return switched


def import_optional(module: str, package: str, feature: str):
    """Import an optional library, with numba pointed at the user cache and caching its code."""
    import importlib

    use_numba_cache()
    try:
        imported = importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package, "reduce", feature) from None
    cache_numba_functions()
    return imported


class Reducer:
    """Base of every reducer: ``fit`` returns self, fitted state ends in ``_``.

    Subclasses set ``method`` (their registry name) and take only keyword arguments, which
    ``__init__`` stores unchanged; they are checked in ``fit``.
    """

    method = ""
    #: fewest rows ``fit`` accepts
    min_samples = 2
    metrics: tuple = METRICS

    # -- parameters -------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "Reducer":
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise InvalidArgumentError(f"{type(self).__name__} has no parameter {name!r}; valid parameters: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def check_params(self) -> None:
        """Raise InvalidArgumentError for a bad parameter value (called by fit, and before logging)."""
        n = self.n_components
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n not in (2, 3):
            raise InvalidArgumentError(f"{self.method} n_components must be 2 or 3; got {n!r}")
        if self.metric not in self.metrics:
            raise InvalidArgumentError(f"{self.method} metric must be one of {self.metrics}; got {self.metric!r}")
        rs = self.random_state
        if rs is not None and (isinstance(rs, bool) or not isinstance(rs, numbers.Integral) or rs < 0):
            raise InvalidArgumentError(f"{self.method} random_state must be a non-negative int or None; got {rs!r}")

    # -- fitted state -----------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "embedding_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(vectors) before transform")

    def fit(self, vectors, y=None) -> "Reducer":
        """Fit on vectors (n_samples, n_features); the training coordinates are in ``embedding_``."""
        self.check_params()
        X = check_input(vectors)
        if X.shape[0] < self.min_samples:
            raise InvalidArgumentError(f"{self.method} needs at least {self.min_samples} rows of vectors to fit; got {X.shape[0]}")
        self.n_features_in_ = X.shape[1]
        self.n_samples_fit_ = X.shape[0]
        coords = self._fit(self._preprocess_fit(X))
        self.embedding_ = np.ascontiguousarray(coords, dtype=np.float32)
        self._fingerprint_ = fingerprint(X)
        return self

    def transform(self, vectors) -> np.ndarray:
        """Coordinates (n_samples, n_components) of new vectors in the fitted projection."""
        self._check_fitted()
        X = check_input(vectors)
        if X.shape[1] != self.n_features_in_:
            raise InvalidArgumentError(
                f"vectors has {X.shape[1]} features but this {type(self).__name__} was fitted on {self.n_features_in_}")
        if X.shape == self.embedding_.shape[:1] + (self.n_features_in_,) and fingerprint(X) == self._fingerprint_:
            # the training array itself: its fitted coordinates, not a second optimisation
            return self.embedding_.copy()
        return np.ascontiguousarray(self._transform(self._preprocess(X)), dtype=np.float32)

    def fit_transform(self, vectors, y=None) -> np.ndarray:
        return self.fit(vectors).embedding_.copy()

    def summary(self) -> dict:
        """Method-specific facts stored with each projection (PCA: explained variance ratios)."""
        return {}

    # -- hooks --------------------------------------------------------------------------
    def _preprocess_fit(self, X: np.ndarray) -> np.ndarray:
        return X

    def _preprocess(self, X: np.ndarray) -> np.ndarray:
        return X

    def _fit(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class NonlinearReducer(Reducer):
    """Shared by t-SNE, UMAP and PaCMAP: optional unit-normalising (cosine) and PCA to
    ``pca_components`` dimensions first, which keeps their neighbour search cheap."""

    min_samples = 10

    def check_params(self) -> None:
        super().check_params()
        p = self.pca_components
        if p is not None and (isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 2):
            raise InvalidArgumentError(f"{self.method} pca_components must be an int >= 2 or None; got {p!r}")

    def _normalise(self, X: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        return X

    def _preprocess_fit(self, X: np.ndarray) -> np.ndarray:
        X = self._normalise(X)
        self.pre_pca_ = None
        if self.pca_components is not None and X.shape[1] > self.pca_components and X.shape[0] > self.pca_components:
            from .pca import PCAReducer

            self.pre_pca_ = PCAReducer(n_components=self.pca_components)
            X = self.pre_pca_.fit_transform(X)
        return np.ascontiguousarray(X, dtype=np.float32)

    def _preprocess(self, X: np.ndarray) -> np.ndarray:
        X = self._normalise(X)
        if self.pre_pca_ is not None:
            X = self.pre_pca_.transform(X)
        return np.ascontiguousarray(X, dtype=np.float32)
