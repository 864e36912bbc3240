import random

import numpy as np
import torch

from correlearn.data.step_loader import StepBatches, make_step_loader, step_seed


def build(step, rng, gen):
    # Mixes explicit RNGs with global ones, as careless transforms do.
    return {
        "idx": torch.from_numpy(rng.integers(0, 1000, size=4)),
        "noise": torch.rand(3, generator=gen),
        "global": torch.tensor([torch.rand(1).item(), np.random.rand(), random.random()]),
        "step": torch.tensor(step),
    }


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_batch_is_a_pure_function_of_seed_and_step():
    ds = StepBatches(build, seed=7)
    assert _same(ds[3], ds[3])
    assert not torch.equal(ds[3]["idx"], ds[4]["idx"])
    assert not torch.equal(ds[3]["noise"], StepBatches(build, seed=8)[3]["noise"])
    assert step_seed(7, 3) != step_seed(3, 7)


def test_global_rng_state_is_restored():
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    StepBatches(build, seed=1)[0]
    assert torch.equal(torch.rand(2), expected)


def test_resume_replays_the_same_batches():
    full = list(make_step_loader(build, seed=3, start_step=0, num_steps=8))
    resumed = list(make_step_loader(build, seed=3, start_step=5, num_steps=3))
    assert [int(b["step"]) for b in resumed] == [5, 6, 7]
    assert all(_same(a, b) for a, b in zip(full[5:], resumed, strict=True))


def test_workers_do_not_change_batches():
    serial = list(make_step_loader(build, seed=3, start_step=2, num_steps=4))
    parallel = list(make_step_loader(build, seed=3, start_step=2, num_steps=4, num_workers=2))
    assert all(_same(a, b) for a, b in zip(serial, parallel, strict=True))


def test_unbounded_loader():
    it = make_step_loader(build, seed=0, start_step=10)
    assert [int(next(it)["step"]) for _ in range(3)] == [10, 11, 12]
