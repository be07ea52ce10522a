"""collect_embeddings(): run a model over a DataLoader and return one array per layer."""

from __future__ import annotations

import logging

import numpy as np

from .._progress import track
from ..errors import InvalidArgumentError
from ._torch import check_module, model_device, to_device
from .buffer import DEFAULT_MAX_MEMORY_BYTES
from .collector import ActivationCollector
from .layers import _call_model

log = logging.getLogger("tracker_sdk")


def _model_inputs(batch):
    """What to pass to the model: ``x`` of an ``(x, y, ...)`` batch, a dict as keyword arguments, else the batch."""
    if isinstance(batch, (tuple, list)) and not hasattr(batch, "_fields"):
        if not batch:
            raise InvalidArgumentError("the loader gave an empty batch; expected a tensor, (inputs, targets) or a dict")
        return batch[0]
    return batch


def collect_embeddings(model, loader, layers, reshape="flatten", device=None, *, select=None, forward=None,
                       progress: bool = True, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
                       spill_dir=None) -> dict[str, np.ndarray]:
    """Run ``model`` over every batch of ``loader`` and return the chosen layers' activations.

    The model runs in eval mode under ``torch.no_grad()`` and its train/eval flags are restored
    afterwards. Rows come back in the order the loader yields samples (so use an unshuffled
    loader to line them up with the data set's labels).

    Parameters
    ----------
    model : torch.nn.Module
    loader : iterable of batches, usually a torch.utils.data.DataLoader
        A batch is a tensor, a tuple/list whose first item is the input (``(x, y)``), or a dict
        of keyword arguments (a tokenizer's output; its ``attention_mask`` keeps padding out of
        ``mean``).
    layers, reshape, select
        As for :class:`ActivationCollector`.
    device : str or torch.device, optional
        Where the inputs go; defaults to the device of the model's parameters.
    forward : callable(model, batch), optional
        Calls the model yourself, for batches of any other shape.
    progress : bool
        Show progress (a bar on a terminal, plain lines otherwise; ``TRACKER_QUIET=1`` hides it).
    max_memory_bytes, spill_dir
        The RAM bound for the collected rows; beyond it they spill to temporary files.

    Returns
    -------
    dict
        ``{layer name: (n_samples, n_features) float32 array}`` (a read-only memory map for a
        layer that spilled to disk).
    """
    torch = check_module(model, "collect_embeddings")
    if forward is not None and not callable(forward):
        raise InvalidArgumentError(f"forward must be a callable(model, batch) or None; got {type(forward).__name__}")
    if not hasattr(loader, "__iter__"):
        raise InvalidArgumentError(f"loader must be an iterable of batches (e.g. a DataLoader); got {type(loader).__name__}")
    device = torch.device(device) if device is not None else model_device(model)
    capacity = None
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and hasattr(dataset, "__len__") and not getattr(loader, "drop_last", False):
        capacity = len(dataset)
    sampler = getattr(loader, "sampler", None)
    if sampler is not None and isinstance(sampler, torch.utils.data.RandomSampler):
        log.warning("collect_embeddings: the loader shuffles, so rows follow its random order, not the data set's; "
                    "use shuffle=False to line them up with the data set's labels")
    try:
        total = len(loader)
    except TypeError:
        total = None
    collector = ActivationCollector(model, layers, reshape, select=select, capacity=capacity,
                                    max_memory_bytes=max_memory_bytes, spill_dir=spill_dir)
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with collector, torch.no_grad():
            for batch in track(loader, total=total, desc="collecting activations", unit="batch",
                               quiet=None if progress else True):
                batch = to_device(batch, device)
                if forward is not None:
                    forward(model, batch)
                    continue
                inputs = _model_inputs(batch)
                mask = inputs.get("attention_mask") if hasattr(inputs, "keys") else None
                with collector.token_mask(mask):
                    _call_model(model, inputs)
    finally:
        for module, training in modes.items():
            module.training = training
    return collector.activations
