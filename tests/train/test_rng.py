import random

import numpy as np
import torch

from correlearn.train.checkpoint import load_checkpoint, save_checkpoint
from correlearn.train.rng import get_rng_state, isolated_rng, seed_everything, set_rng_state


def test_rng_state_roundtrip_through_file(tmp_path):
    state = get_rng_state()
    draws = (random.random(), np.random.rand(), torch.rand(2))
    save_checkpoint({"step": 0, "rng": state}, tmp_path)
    set_rng_state(load_checkpoint(tmp_path / "last.pt")["rng"])
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert draws[0] == again[0] and draws[1] == again[1] and torch.equal(draws[2], again[2])


def test_isolated_rng_undoes_the_draws_of_its_body():
    seed_everything(5)
    expected = (random.random(), np.random.rand(), torch.rand(2))
    seed_everything(5)
    with isolated_rng():
        random.random(), np.random.rand(), torch.rand(7)
    got = (random.random(), np.random.rand(), torch.rand(2))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])
