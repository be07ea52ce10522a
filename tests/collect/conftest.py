"""Fixtures for the collect tests: one torch thread, small real models."""

import pytest

import torch

from collect_models import make_cnn, make_transformer


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run faster on one thread, and the test machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cnn():
    return make_cnn()


@pytest.fixture
def transformer():
    return make_transformer()
