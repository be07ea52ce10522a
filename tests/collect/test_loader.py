"""collect_embeddings over DataLoaders: tensors, (x, y) pairs, dict batches, custom forward."""

import logging

import numpy as np
import pytest
import torch

from collect_models import hook_count
from tracker_sdk import InvalidArgumentError
from tracker_sdk.collect import collect_embeddings


def test_runs_in_eval_mode_without_grad_and_restores_the_model(cnn, capsys):
    x, y = torch.randn(50, 1, 8, 8), torch.randint(0, 10, (50,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    cnn.train()
    stats = cnn.bn.running_mean.clone()
    acts = collect_embeddings(cnn, loader, ["pool", "head"], reshape={"pool": "avg_pool_1_1"}, device="cpu")
    assert cnn.training and torch.equal(cnn.bn.running_mean, stats) and hook_count(cnn) == 0
    cnn.eval()
    with torch.no_grad():
        np.testing.assert_allclose(acts["head"], cnn(x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(acts["pool"], cnn[:4](x).mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    assert capsys.readouterr().err == ""  # off a terminal, a loop under a second prints nothing (tests/test_progress.py)


def test_dict_batches_use_their_attention_mask(transformer):
    transformer.eval()
    tokens = torch.randint(1, 20, (6, 5))
    mask = torch.ones(6, 5, dtype=torch.long)
    mask[::2, 3:] = 0
    batches = [{"input": tokens[i:i + 3], "attention_mask": mask[i:i + 3]} for i in (0, 3)]

    def forward(model, batch):
        return model(batch["input"])

    acts = collect_embeddings(transformer, batches, "encoder", reshape="mean", forward=forward, progress=False)
    assert acts["encoder"].shape == (6, 8)  # a custom forward gets no automatic mask: plain mean
    with torch.no_grad():
        out = transformer(tokens)
    np.testing.assert_allclose(acts["encoder"], out.mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)

    class Wrapped(torch.nn.Module):              # takes keyword arguments, as transformers models do
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input, attention_mask):
            return self.inner(input)

    model = Wrapped(transformer)
    acts = collect_embeddings(model, batches, "inner.encoder", reshape="mean", progress=False)
    m = mask.unsqueeze(-1).float()
    np.testing.assert_allclose(acts["inner.encoder"], ((out * m).sum(1) / m.sum(1)).numpy(), rtol=1e-5, atol=1e-6)


def test_shuffled_loader_warns_and_bad_arguments_are_named(cnn, caplog):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 1, 8, 8)), batch_size=4,
                                         shuffle=True)
    with caplog.at_level(logging.WARNING, logger="tracker_sdk"):
        acts = collect_embeddings(cnn, loader, "fc", progress=False)
    assert acts["fc"].shape == (8, 16)
    assert "the loader shuffles" in caplog.text
    with pytest.raises(InvalidArgumentError, match="loader must be an iterable of batches"):
        collect_embeddings(cnn, 3, "fc")
    with pytest.raises(InvalidArgumentError, match="forward must be a callable"):
        collect_embeddings(cnn, [], "fc", forward="model")
    with pytest.raises(InvalidArgumentError, match="the loader gave an empty batch"):
        collect_embeddings(cnn, [()], "fc", progress=False)
