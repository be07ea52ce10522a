"""PCAReducer: PCA through an eigendecomposition of the covariance (or Gram) matrix.

One BLAS product plus a small symmetric eigenproblem is several times faster than a full
SVD of the data and gives the same components (signs fixed as scikit-learn fixes them).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import InvalidArgumentError
from .base import Reducer


#: rows centred at a time while the covariance is accumulated
_BLOCK_ROWS = 16_384


class PCAReducer(Reducer):
    """Principal components.

    Parameters
    ----------
    n_components : int, default 3
        Number of components kept (3 preserves neighbourhoods much better than 2).
    metric : {"euclidean", "cosine"}
        ``cosine`` scales every row to unit length first.
    random_state : int or None
        Unused (PCA is deterministic); accepted so every reducer takes the same arguments.

    Fitted attributes: ``mean_`` (n_features,), ``components_`` (n_components, n_features),
    ``explained_variance_``, ``explained_variance_ratio_``, ``embedding_``.
    """

    method = "pca"
    min_samples = 2

    def __init__(self, n_components=3, metric="euclidean", random_state=None):
        self.n_components = n_components
        self.metric = metric
        self.random_state = random_state

    def check_params(self) -> None:
        n = self.n_components
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise InvalidArgumentError(f"pca n_components must be a positive int; got {n!r}")
        if self.metric not in self.metrics:
            raise InvalidArgumentError(f"pca metric must be one of {self.metrics}; got {self.metric!r}")

    def _preprocess(self, X):
        if self.metric == "cosine":
            X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        return X

    _preprocess_fit = _preprocess

    def _fit(self, X: np.ndarray) -> np.ndarray:
        n, d = X.shape
        k = self.n_components
        if k > min(n, d):
            raise InvalidArgumentError(
                f"pca n_components must be at most min(n_samples, n_features) = {min(n, d)}; got {k}")
        mean = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        if d <= n:
            # centred in row blocks: never a second copy of X (it may be a memory-mapped blob)
            cov = np.zeros((d, d), dtype=np.float64)
            for start in range(0, n, _BLOCK_ROWS):
                block = X[start:start + _BLOCK_ROWS] - mean
                cov += block.T @ block
            values, vectors = np.linalg.eigh(cov)
            order = np.argsort(values)[::-1]
            values, components = values[order], vectors[:, order[:k]].T
        else:  # fewer rows than features: the n x n Gram matrix is the smaller problem
            Xc = X - mean
            gram = (Xc @ Xc.T).astype(np.float64)
            values, u = np.linalg.eigh(gram)
            order = np.argsort(values)[::-1]
            values, u = values[order], u[:, order[:k]]
            components = (u.T @ Xc.astype(np.float64)) / np.sqrt(np.maximum(values[:k], 1e-300))[:, None]
        values = np.maximum(values, 0.0) / max(n - 1, 1)
        # sign convention of scikit-learn: the largest-magnitude loading of each component is positive
        signs = np.sign(components[np.arange(k), np.argmax(np.abs(components), axis=1)])
        components = components * np.where(signs == 0, 1.0, signs)[:, None]
        total = values.sum()
        self.mean_ = mean
        self.components_ = components.astype(np.float32)
        self.explained_variance_ = values[:k].copy()
        self.explained_variance_ratio_ = values[:k] / total if total > 0 else np.zeros(k)
        return self._transform(X)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        # (X - mean) @ C.T without materialising X - mean
        return X @ self.components_.T - self.mean_ @ self.components_.T

    def summary(self) -> dict:
        return {"explained_variance_ratio": [round(float(v), 6) for v in self.explained_variance_ratio_]}
