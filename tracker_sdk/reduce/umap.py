"""UMAPReducer: umap-learn behind the Reducer interface (needs the ``reduce`` extra)."""

from __future__ import annotations

import warnings

from .base import import_optional
from .nonlinear import NonlinearReducer


class UMAPReducer(NonlinearReducer):
    """UMAP (umap-learn).

    Parameters
    ----------
    n_components : {2, 3}
    n_neighbors : int, default 15
        Lowered to n_samples - 1 for tiny inputs.
    min_dist : float, default 0.1
    metric : {"euclidean", "cosine"}
    n_epochs : int or None
        None lets umap-learn choose (200 for large, 500 for small inputs).
    pca_components : int or None, default 50
        PCA to this many dimensions first when vectors have more.
    random_state : int or None
        Seeded runs are reproducible across processes (and single-threaded).
    """

    method = "umap"

    def __init__(self, n_components=2, n_neighbors=15, min_dist=0.1, metric="euclidean", n_epochs=None,
                 pca_components=50, random_state=None):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.n_epochs = n_epochs
        self.pca_components = pca_components
        self.random_state = random_state

    def _fit(self, X):
        umap = import_optional("umap", "umap-learn", "the umap reducer")
        n_neighbors = max(2, min(int(self.n_neighbors), X.shape[0] - 1))
        self.model_ = umap.UMAP(n_components=self.n_components, n_neighbors=n_neighbors, min_dist=self.min_dist,
                                metric=self.metric, n_epochs=self.n_epochs, random_state=self.random_state,
                                init="spectral" if X.shape[0] > 4 * (self.n_components + 1) else "random")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs.*overridden.*")
            warnings.filterwarnings("ignore", category=UserWarning)  # disconnected-graph notes on tiny inputs
            return self.model_.fit_transform(X)

    def _transform(self, X):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            return self.model_.transform(X)
