"""PCAReducer: PCA through an eigendecomposition of the covariance (or Gram) matrix.

The covariance comes from one float32 ``syrk`` over X, or over row blocks centred on the
mean for data far from zero (never a copy of X, which may be a memory-mapped blob); only the
top ``n_components`` eigenpairs are computed, and the total variance comes from the trace. Very wide data (where ``n * d**2`` flops would dominate) goes
through a randomized subspace iteration on the implicitly centred X instead. The components
are those of an exact SVD (signs fixed as scikit-learn fixes them).

A memory-mapped X (a stored blob: what the background default projection reads) is fitted in
row blocks, one pass for the checks and the scatter and one for the projection, with each
block's pages released after use (``_blocks.py``), so the fit adds a block, not the array, to
the process's resident memory.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import check_finite, check_vectors
from ..errors import InvalidArgumentError
from . import _blocks
from .base import Reducer

#: rows centred at a time while the covariance of far-from-zero data is accumulated (a block stays
#: in cache); also the rows that estimate the spread
_BLOCK_ROWS = 4096
#: wider than this (and with fewer components than a tenth of it), the randomized path wins
_RANDOMIZED_MIN_FEATURES = 1500
#: extra dimensions, iteration cap and relative tolerance on the top Ritz values of the randomized path
_OVERSAMPLES, _MAX_ITERATIONS, _RITZ_TOL = 12, 40, 1e-7
#: iteration cap and relative residual tolerance of the small symmetric eigenproblem
_EIG_MAX_ITERATIONS, _EIG_TOL = 60, 1e-10


def _scatter(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,) float64, centred scatter matrix (d, d) float64), never copying X.

    When the mean is small next to the spread (the usual case for embeddings), one ``syrk``
    over X (``X.T @ X``) minus ``n * mean mean^T`` loses at most a bit of float32 precision
    (the float32 mean's error enters scaled by the small mean), and one BLAS call is what
    runs fastest on a busy machine. Otherwise the rows are centred in blocks (a column of
    ones rides along, so the same ``syrk`` also yields the exact offset of the float32
    centre), which keeps far-from-zero data exact. The trace is non-finite when X holds a
    NaN or Inf (the caller's finite check reads it instead of a pass over X).
    """
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN/Inf is reported by the caller, not warned
        return _scatter_of(X)


def _scatter_of(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, d = X.shape
    mean = X.mean(axis=0).astype(np.float64)  # float32 accumulation: a third of the float64 pass
    spread = float(X[:_BLOCK_ROWS].var(axis=0).sum())
    if not mean @ mean > spread:  # NaN/Inf take this branch too: the trace shows them
        scatter = (X.T @ X).astype(np.float64)  # numpy runs a.T @ a as one syrk
        scatter -= n * np.outer(mean, mean)
        return mean, scatter
    shift = mean.astype(np.float32)
    product = np.zeros((d + 1, d + 1), dtype=np.float64)
    buffer = np.empty((min(n, _BLOCK_ROWS), d + 1), dtype=np.float32)
    buffer[:, d] = 1.0
    for start in range(0, n, _BLOCK_ROWS):
        rows = X[start:start + _BLOCK_ROWS]
        block = buffer[:len(rows)]
        np.subtract(rows, shift, out=block[:, :d])
        product += block.T @ block
    scatter, offset = product[:d, :d], product[d, :d] / n
    scatter -= n * np.outer(offset, offset)
    return shift + offset, scatter


def _scatter_blocked(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, centred scatter) of a mapped float32 X in one pass of row blocks.

    The rows are centred on the first block's mean (close to the true one, so far-from-zero
    data stays exact) with a column of ones riding along, as in ``_scatter``'s blocked branch;
    a block whose scatter has a non-finite trace is searched for its NaN/Inf (the message of
    ``check_vectors``; no separate pass), and every block's pages are released after use.
    """
    n, d = X.shape
    with np.errstate(invalid="ignore", over="ignore"):
        shift = np.asarray(X[:_BLOCK_ROWS].mean(axis=0, dtype=np.float64), dtype=np.float32)
    product = np.zeros((d + 1, d + 1), dtype=np.float64)
    buffer = np.empty((min(n, _BLOCK_ROWS), d + 1), dtype=np.float32)
    buffer[:, d] = 1.0
    for start, rows in _blocks.row_blocks(X, _BLOCK_ROWS):
        block = buffer[:len(rows)]
        with np.errstate(invalid="ignore", over="ignore"):  # a NaN/Inf is reported just below
            np.subtract(rows, shift, out=block[:, :d])
            part = block.T @ block
        if not np.isfinite(np.trace(part)):  # a NaN/Inf in these rows (or an overflow): find it
            finite = np.isfinite(rows)
            if not finite.all():
                bad = np.argwhere(~finite)[0]
                raise InvalidArgumentError(
                    f"vectors must be finite; got {rows[tuple(bad)]} at row {start + bad[0]}, column {bad[1]}")
        product += part
    scatter, offset = product[:d, :d], product[d, :d] / n
    scatter -= n * np.outer(offset, offset)
    return shift + offset, scatter


def _top_eigh(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues (descending) and their eigenvectors (columns) of a symmetric matrix.

    Subspace iteration with Rayleigh-Ritz until every residual ``|S v - theta v|`` is below
    ``_EIG_TOL * theta_1`` (a few products with the small matrix, instead of the full
    eigendecomposition of LAPACK, which numpy has only whole); LAPACK when the spectrum is too
    flat for that to converge quickly.
    """
    m = len(matrix)
    width = min(m, k + _OVERSAMPLES)
    if 4 * width < m:
        q, _ = np.linalg.qr(matrix @ np.random.default_rng(0).standard_normal((m, width)))
        for _ in range(_EIG_MAX_ITERATIONS):
            z = matrix @ q
            theta, u = np.linalg.eigh(q.T @ z)
            theta, u = theta[::-1][:k], u[:, ::-1][:, :k]
            vectors = q @ u
            residual = np.linalg.norm(z @ u - vectors * theta, axis=0)
            if residual.max() <= _EIG_TOL * abs(theta[0]):
                return theta, vectors
            q, _ = np.linalg.qr(z)
    values, vectors = np.linalg.eigh(matrix)
    return values[::-1][:k], vectors[:, ::-1][:, :k]


def _randomized(X: np.ndarray, mean: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (eigenvalues of the scatter matrix, components (k, d)) by subspace iteration on X - mean.

    X is never centred in memory (``(X - mean) @ Q = X @ Q - mean @ Q``). Iteration stops when
    the top-k Ritz values, read off the small R factor, change by less than ``_RITZ_TOL``.
    """
    n, d = X.shape
    width = min(k + _OVERSAMPLES, d, n)
    mean32 = mean.astype(np.float32)
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, width)).astype(np.float32))
    previous = None
    for iteration in range(_MAX_ITERATIONS):
        y, r = np.linalg.qr(X @ q - mean32 @ q)  # (X - mean) q = y r, so q.T S q = r.T r
        ritz = np.linalg.svd(r.astype(np.float64), compute_uv=False)[:k] ** 2
        if previous is not None and np.all(np.abs(ritz - previous) <= _RITZ_TOL * ritz[0]):
            break
        previous = ritz
        q, _ = np.linalg.qr(X.T @ y - np.outer(mean32, y.sum(axis=0)))  # (X - mean).T y
    r = r.astype(np.float64)
    values, vectors = _top_eigh(r.T @ r, k)
    return values, (q.astype(np.float64) @ vectors).T


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

    def fit(self, vectors, y=None) -> PCAReducer:
        """Fit on vectors (n_samples, n_features).

        PCA's own path (euclidean, no subclass ``_fit``) makes no pass over X of its own for
        the NaN/Inf check (the scatter's trace shows them) nor for a content fingerprint
        (``transform`` of the training array is as cheap as recognising it). A memory-mapped
        float32 X is read in row blocks (see the module docstring).
        """
        if type(self)._fit is not PCAReducer._fit or self.metric != "euclidean":
            return super().fit(vectors, y)
        self.check_params()
        X = vectors
        mapped = (_blocks.is_mapped(X) and X.ndim == 2 and X.dtype == np.float32 and X.flags.c_contiguous
                  and 0 < X.shape[1] <= X.shape[0] and X.shape[1] < _RANDOMIZED_MIN_FEATURES)
        if not mapped:
            X = check_vectors(vectors, allow_nonfinite=True)  # checked for NaN/Inf by _fit_checked
        n, d = X.shape
        if n < self.min_samples:
            if not mapped:
                check_finite(X)  # the vectors' own error comes first, as in every reducer
            raise InvalidArgumentError(f"{self.method} needs at least {self.min_samples} rows of vectors to fit; got {n}")
        if mapped:
            if self.n_components > d:
                raise InvalidArgumentError(
                    f"pca n_components must be at most min(n_samples, n_features) = {d}; got {self.n_components}")
            mean, scatter = _scatter_blocked(X)
            values, components = _top_eigh(scatter, self.n_components)
            self._set_fitted(n, mean, values, components.T, float(np.trace(scatter)))
            coords = self._transform(X)
        else:
            coords = self._fit_checked(X, finite_known=False)
        self.n_features_in_, self.n_samples_fit_ = d, n
        self.embedding_ = np.ascontiguousarray(coords, dtype=np.float32)
        return self

    def _fit(self, X: np.ndarray) -> np.ndarray:
        return self._fit_checked(X, finite_known=True)

    def _fit_checked(self, X: np.ndarray, finite_known: bool) -> np.ndarray:
        """Fit a float32 X; ``finite_known`` False: raise check_vectors' error for a NaN/Inf in X."""
        n, d = X.shape
        k = self.n_components
        if k > min(n, d):
            if not finite_known:
                check_finite(X)  # the vectors' own error comes first, as in every reducer
            raise InvalidArgumentError(
                f"pca n_components must be at most min(n_samples, n_features) = {min(n, d)}; got {k}")
        covariance = d <= n and (d < _RANDOMIZED_MIN_FEATURES or 10 * k > d)
        if not finite_known and not covariance:
            check_finite(X)
        if covariance:
            mean, scatter = _scatter(X)
            total = float(np.trace(scatter))
            if not finite_known:
                check_finite(X, hint=total)
            values, components = _top_eigh(scatter, k)
            components = components.T
        elif d <= n:  # very wide: n * d**2 flops of the scatter matrix would dominate
            mean = X.mean(axis=0, dtype=np.float64)
            values, components = _randomized(X, mean, k, 0)
            total = float(np.einsum("ij,ij->", X, X, dtype=np.float64) - n * mean @ mean)
        else:  # fewer rows than features: the n x n Gram matrix is the smaller problem
            mean = X.mean(axis=0, dtype=np.float64)
            Xc = X - mean.astype(np.float32)
            gram = (Xc @ Xc.T).astype(np.float64)
            values, u = _top_eigh(gram, k)
            components = (u.T @ Xc.astype(np.float64)) / np.sqrt(np.maximum(values, 1e-300))[:, None]
            total = float(np.trace(gram))
        self._set_fitted(n, mean, values, components, total)
        return self._transform(X)

    def _set_fitted(self, n: int, mean, values, components, total: float) -> None:
        """Store mean_, components_ (signs fixed) and the explained variances from the scatter's eigenpairs."""
        k = self.n_components
        mean = mean.astype(np.float32)
        values = np.maximum(values, 0.0) / max(n - 1, 1)
        total = max(total, 0.0) / max(n - 1, 1)
        # sign convention of scikit-learn: the largest-magnitude loading of each component is positive
        signs = np.sign(components[np.arange(k), np.argmax(np.abs(components), axis=1)])
        components = components * np.where(signs == 0, 1.0, signs)[:, None]
        self.mean_ = mean
        self.components_ = components.astype(np.float32)
        self.explained_variance_ = values.copy()
        self.explained_variance_ratio_ = values / total if total > 0 else np.zeros(k)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """(X - mean) @ C.T without materialising X - mean, in row blocks: one product over all of
        X would have BLAS pack a copy of X (half the array in resident memory at 100k x 512), and
        a mapped X releases each block's pages."""
        components = self.components_.T
        offset = self.mean_ @ components
        out = np.empty((len(X), components.shape[1]), dtype=np.result_type(X.dtype, components.dtype))
        for start, rows in _blocks.row_blocks(X, _BLOCK_ROWS):
            np.subtract(rows @ components, offset, out=out[start:start + len(rows)])
        return out

    def summary(self) -> dict:
        return {"explained_variance_ratio": [round(float(v), 6) for v in self.explained_variance_ratio_]}
