"""Data and deliberately failing reducers shared by the reduce tests (importable by the worker)."""

import os
import time

import numpy as np

from tracker_sdk.reduce import PCAReducer

#: small, fast settings per method so the shared suite stays quick
FAST = {
    "pca": {},
    "tsne": {"n_iter": 60, "early_exaggeration_iter": 40, "random_state": 0},
    "umap": {"n_epochs": 40, "random_state": 0},
    "pacmap": {"num_iters": 60, "random_state": 0},
}


def clusters(n_per=40, k=5, d=20, seed=0, spread=6.0):
    """Well separated gaussian clusters: (vectors (n, d) float32, labels list)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * spread
    X = np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres]).astype(np.float32)
    return X, [int(i) for i in np.repeat(np.arange(k), n_per)]


class ExitingReducer(PCAReducer):
    """Kills its process mid-fit, as the kernel's OOM killer would."""

    method = "pca"

    def _fit(self, X):
        os._exit(3)


class RaisingReducer(PCAReducer):
    method = "pca"

    def _fit(self, X):
        raise MemoryError("pretend the projection ran out of memory")


class SlowReducer(PCAReducer):
    """Takes a minute: long enough to kill its client mid-job."""

    method = "pca"

    def _fit(self, X):
        time.sleep(60)
        return super()._fit(X)


class KilledReducer(PCAReducer):
    """Its process receives SIGKILL mid-fit, exactly what the kernel's OOM killer sends."""

    method = "pca"

    def _fit(self, X):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
