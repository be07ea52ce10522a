"""Capture embeddings from torch models: find a layer, hook it, reshape, collect, log.

>>> from tracker_sdk.collect import list_layers, ActivationCollector, collect_embeddings
>>> list_layers(model, example_input=x[:1])                         # doctest: +SKIP
>>> with ActivationCollector(model, ["fc1", 3], reshape={3: "avg_pool_2_2"}) as c:   # doctest: +SKIP
...     model(x)
>>> exp.log_activations(c, labels, step=epoch, group="cnn")          # doctest: +SKIP

torch is imported only when one of these functions runs.
"""

from .buffer import ActivationBuffer
from .collector import LARGE_VECTOR_WARNING, ActivationCollector, LargeActivationWarning, RepeatedCallWarning
from .layers import LayerInfo, LayerTable, list_layers, resolve_layer, resolve_layers
from .loader import collect_embeddings
from .reshape import STRATEGIES, get_strategy

__all__ = [
    "LARGE_VECTOR_WARNING", "STRATEGIES", "ActivationBuffer", "ActivationCollector", "LargeActivationWarning",
    "LayerInfo", "LayerTable", "RepeatedCallWarning", "collect_embeddings", "get_strategy", "list_layers", "resolve_layer",
    "resolve_layers",
]
