"""The Reducer base class: scikit-learn style parameters, input checks and fitted state.

A subclass implements ``_fit(X) -> coordinates`` and ``_transform(X) -> coordinates`` on
float32 arrays that were already checked; the base class does validation, the
``NotFittedError`` before fit, and the shortcut that returns the fitted coordinates when
``transform`` is given the training array. The nonlinear methods' common PCA pre-reduction
is in ``nonlinear.py`` (so this base never imports a concrete reducer).
"""

from __future__ import annotations

import inspect
import numbers
import zlib

import numpy as np

from .._validation import check_vectors
from ..errors import InvalidArgumentError, MissingDependencyError, NotFittedError

METRICS = ("euclidean", "cosine")


def fingerprint(array: np.ndarray) -> tuple:
    """A cheap identity of an array's content (shape plus crc32 of its bytes)."""
    return tuple(array.shape), zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))


def import_optional(module: str, package: str, feature: str):
    """Import an optional library, with numba pointed at the user cache and caching its code."""
    import importlib

    from . import _numba_cache

    _numba_cache.use_cache_dir()
    try:
        imported = importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package, "reduce", feature) from None
    _numba_cache.cache_functions()
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

    def fitted_state(self) -> dict:
        """The fitted attributes (names ending in ``_``): what ``fit`` adds to the parameters."""
        return {name: value for name, value in vars(self).items() if name.endswith("_") and not name.startswith("__")}

    def adopt_fitted(self, fitted: "Reducer") -> "Reducer":
        """Take the fitted state of ``fitted``, a copy of this reducer fitted elsewhere; returns self.

        This is how a reducer that the background worker fitted reaches the caller's instance:
        the Experiment calls it on the caller's own thread (at the next ``log_embedding``,
        ``reduce_group`` or ``end()``), never from the worker's thread. Only attributes ending
        in ``_`` are copied, and only from a reducer of the same class and parameters.
        """
        if type(fitted) is not type(self) or not fitted.is_fitted:
            raise InvalidArgumentError(f"fitted must be a fitted {type(self).__name__}; got "
                                       f"{'an unfitted ' if isinstance(fitted, Reducer) else ''}{type(fitted).__name__}")
        if fitted.get_params() != self.get_params():
            raise InvalidArgumentError(f"fitted has parameters {fitted.get_params()} but this reducer has "
                                       f"{self.get_params()}; its state does not belong here")
        for name in list(self.fitted_state()):
            delattr(self, name)
        vars(self).update(fitted.fitted_state())
        return self

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(vectors) before transform")

    def fit(self, vectors, y=None) -> "Reducer":
        """Fit on vectors (n_samples, n_features); the training coordinates are in ``embedding_``."""
        self.check_params()
        X = check_vectors(vectors)
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
        X = check_vectors(vectors)
        if X.shape[1] != self.n_features_in_:
            raise InvalidArgumentError(
                f"vectors has {X.shape[1]} features but this {type(self).__name__} was fitted on {self.n_features_in_}")
        known = getattr(self, "_fingerprint_", None)  # None where projecting again is as cheap (PCA)
        if known is not None and X.shape == self.embedding_.shape[:1] + (self.n_features_in_,) and fingerprint(X) == known:
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
