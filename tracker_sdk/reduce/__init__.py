"""Client-side reductions: PCA, t-SNE, UMAP and PaCMAP behind one Reducer interface.

``get_reducer(name, **params)`` builds one; ``projection_quality`` scores a projection;
``reduce_timeline`` fits one reducer on a chosen step of a group and places every other step
with it. ``executor.py`` runs reduction jobs (``tasks.py``) inline, on a thread or in a worker
process (``worker.py``, ``shared_worker.py``) while training goes on; ``session.py`` is what an
Experiment uses.
"""

from .base import Reducer
from .pca import PCAReducer
from .quality import knn_label_scores, projection_quality, trustworthiness
from .registry import available_reducers, get_reducer
from .umap import UMAPReducer
from .pacmap import PaCMAPReducer
from .tsne import TSNEReducer

__all__ = [
    "PCAReducer", "PaCMAPReducer", "Reducer", "TSNEReducer", "UMAPReducer", "available_reducers",
    "get_reducer", "knn_label_scores", "projection_quality", "trustworthiness",
]
