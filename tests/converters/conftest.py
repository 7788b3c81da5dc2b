"""Fixtures shared by the converters' tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """Tiny models run fastest on one thread (and leave the other core to the rest of the suite)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
