"""Suite-wide settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One intra-op thread for the whole suite: the nets are tiny and CI has 2 shared cores, where
    spinning threads make each op several times slower. Subprocesses (torchrun, the CLI) keep
    their own defaults."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
