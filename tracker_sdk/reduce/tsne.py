"""TSNEReducer: openTSNE behind the Reducer interface (needs the ``reduce`` extra).

openTSNE, unlike scikit-learn's TSNE, can place new points into a fitted embedding, which
is what one projection across every step needs. Its FFT gradient is 2-D only, so 3-D
uses Barnes-Hut.
"""

from __future__ import annotations

import numpy as np

from .base import import_optional
from .nonlinear import NonlinearReducer


class TSNEReducer(NonlinearReducer):
    """t-SNE (openTSNE).

    Parameters
    ----------
    n_components : {2, 3}
    perplexity : float, default 30
        Lowered to (n_samples - 1) / 3 for small inputs.
    metric : {"euclidean", "cosine"}
    n_iter : int, default 500
        Iterations after the early-exaggeration phase.
    early_exaggeration_iter : int, default 250
    pca_components : int or None, default 50
    random_state : int or None
    n_jobs : int, default 1
    """

    method = "tsne"

    def __init__(self, n_components=2, perplexity=30.0, metric="euclidean", n_iter=500, early_exaggeration_iter=250,
                 pca_components=50, random_state=None, n_jobs=1):
        self.n_components = n_components
        self.perplexity = perplexity
        self.metric = metric
        self.n_iter = n_iter
        self.early_exaggeration_iter = early_exaggeration_iter
        self.pca_components = pca_components
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit(self, X):
        openTSNE = import_optional("openTSNE", "openTSNE", "the tsne reducer")
        perplexity = min(float(self.perplexity), max(1.0, (X.shape[0] - 1) / 3.0))
        model = openTSNE.TSNE(n_components=self.n_components, perplexity=perplexity, metric=self.metric,
                              n_iter=int(self.n_iter), early_exaggeration_iter=int(self.early_exaggeration_iter),
                              random_state=self.random_state, n_jobs=int(self.n_jobs),
                              negative_gradient_method="fft" if self.n_components == 2 and X.shape[0] >= 10_000 else "bh", verbose=False)
        self.model_ = model.fit(X)
        return np.array(self.model_, dtype=np.float32)

    def _transform(self, X):
        return np.array(self.model_.transform(X), dtype=np.float32)
