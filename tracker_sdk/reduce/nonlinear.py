"""NonlinearReducer: what t-SNE, UMAP and PaCMAP share (cosine normalising, PCA pre-reduction).

It lives apart from ``base.py`` because it uses the concrete PCA reducer, which itself
derives from the base: keeping it here leaves the imports one-way (base <- pca <- nonlinear).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import InvalidArgumentError
from .base import Reducer
from .pca import PCAReducer


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
            self.pre_pca_ = PCAReducer(n_components=self.pca_components)
            X = self.pre_pca_.fit_transform(X)
        return np.ascontiguousarray(X, dtype=np.float32)

    def _preprocess(self, X: np.ndarray) -> np.ndarray:
        X = self._normalise(X)
        if self.pre_pca_ is not None:
            X = self.pre_pca_.transform(X)
        return np.ascontiguousarray(X, dtype=np.float32)
