"""PaCMAPReducer: pacmap behind the Reducer interface (needs the ``reduce`` extra).

pacmap keeps its random seed in a module-wide global that any new PaCMAP object resets,
so every fit and transform sets it under a lock: two reducers cannot disturb each other.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from .base import import_optional
from .nonlinear import NonlinearReducer

_SEED_LOCK = threading.Lock()


class PaCMAPReducer(NonlinearReducer):
    """PaCMAP.

    Parameters
    ----------
    n_components : {2, 3}
    n_neighbors : int, default 10
    mn_ratio, fp_ratio : float
        Mid-near and further pairs per neighbour pair (pacmap's ``MN_ratio``, ``FP_ratio``).
    metric : {"euclidean", "cosine"}
        ``cosine`` is pacmap's ``angular`` distance.
    num_iters : int, default 250
        Iterations of pacmap's last phase, after its two fixed phases of 100 (pacmap's own
        meaning of an int; 250 is pacmap's default, 450 iterations in all).
    pca_components : int or None, default 50
    random_state : int or None
    """

    method = "pacmap"

    def __init__(self, n_components=2, n_neighbors=10, mn_ratio=0.5, fp_ratio=2.0, metric="euclidean",
                 num_iters=250, pca_components=50, random_state=None):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.mn_ratio = mn_ratio
        self.fp_ratio = fp_ratio
        self.metric = metric
        self.num_iters = num_iters
        self.pca_components = pca_components
        self.random_state = random_state

    def _model(self, n_samples):
        pacmap = import_optional("pacmap", "pacmap", "the pacmap reducer")
        level = logging.getLogger("pacmap").level
        logging.getLogger("pacmap").setLevel(logging.ERROR)  # it warns on every seeded construction
        try:
            return pacmap.PaCMAP(n_components=self.n_components, n_neighbors=max(1, min(int(self.n_neighbors), n_samples - 2)),
                                 MN_ratio=self.mn_ratio, FP_ratio=self.fp_ratio,
                                 distance="angular" if self.metric == "cosine" else "euclidean",
                                 num_iters=int(self.num_iters), random_state=self.random_state)
        finally:
            logging.getLogger("pacmap").setLevel(level)

    def _set_seed(self):
        import pacmap.pacmap as impl

        impl._RANDOM_STATE = self.random_state

    def _fit(self, X):
        with _SEED_LOCK:
            self.model_ = self._model(X.shape[0])
            self._set_seed()
            coords = self.model_.fit_transform(X, init="pca")
        self.basis_ = X  # pacmap's transform needs the training data again (its index is not kept)
        return coords

    def _transform(self, X):
        with _SEED_LOCK:
            self._set_seed()
            if self.random_state is not None:
                np.random.seed(self.random_state)
            return self.model_.transform(X, basis=self.basis_)
