"""Small real torch models (and a hook counter) shared by the collect tests."""

from collections import OrderedDict

import torch

nn = torch.nn


def make_cnn():
    """A named nn.Sequential CNN for 1x8x8 inputs, with batch norm so mode changes are visible."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(1, 4, kernel_size=3, padding=1)),
        ("bn", nn.BatchNorm2d(4)),
        ("relu", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(4 * 4 * 4, 16)),
        ("act", nn.ReLU()),
        ("head", nn.Linear(16, 10)),
    ]))


def make_transformer():
    """A tiny batch-first nn.TransformerEncoder (d_model 8, 2 layers) plus a token embedding."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("embed", nn.Embedding(20, 8)),
        ("encoder", nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True),
            num_layers=2, enable_nested_tensor=False)),
    ]))


def hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


class SharedReluBlock(nn.Module):
    """A ResNet BasicBlock in miniature: one ReLU module runs twice per forward pass."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(6, 6)
        self.fc2 = nn.Linear(6, 6)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.fc1(x))
        return self.relu(self.fc2(out) + x)
