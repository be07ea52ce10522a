"""Analysis of embeddings: neighbours, outlier and label-disagreement scores, split comparison.

``analyze(run_or_embedding, ...)`` computes the scores in the original vector space and stores
them as metadata columns (``outlier_score``, ``label_disagreement``, ``split_shift``) so the
viewer can colour, filter and sort by them; ``compute`` does the same without storing.
``analyze_dynamics(run, group)`` stores how a group changed across its steps (``dynamics``
holds the measures as plain functions on arrays).
"""

from .dynamics_store import DynamicsResult, analyze_dynamics
from .neighbors import exact_knn, knn_graph
from .scores import SplitComparison, label_disagreement, outlier_score, split_shift
from .store import ANALYSIS_COLUMNS, AnalysisResult, analyze, compute, find_embedding

__all__ = [
    "ANALYSIS_COLUMNS", "AnalysisResult", "DynamicsResult", "SplitComparison", "analyze", "analyze_dynamics", "compute",
    "exact_knn", "find_embedding", "knn_graph", "label_disagreement", "outlier_score", "split_shift",
]
