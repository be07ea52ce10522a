"""Analysis of embeddings: neighbours, outlier and label-disagreement scores, split comparison."""
