"""The Method base class: the loop's hooks and their defaults."""

import copy

import pytest
import torch
from torch import nn

from correlearn.methods.base import Method
from correlearn.train.schedules import ema_tau


class _Plain(Method):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(3, 2)

    def training_step(self, batch):
        return {"loss": self.backbone(batch["x"]).square().mean()}


class _WithTarget(_Plain):
    base_tau = 0.9

    def __init__(self):
        super().__init__()
        self.target = copy.deepcopy(self.backbone).requires_grad_(False)

    def ema_pairs(self):
        return [(self.backbone, self.target)]


def test_defaults_have_no_ema_and_no_pictures():
    m = _Plain()
    assert m.ema_pairs() == [] and m.pictures({"x": torch.zeros(1, 3)}) == {}
    before = [p.clone() for p in m.parameters()]
    m.momentum_update(0.0)  # no pairs: nothing moves
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))
    with pytest.raises(NotImplementedError, match="Method does not define training_step"):
        Method().training_step({})


def test_default_momentum_is_byols_cosine_and_update_moves_the_target():
    m = _WithTarget()
    assert [m.ema_momentum(s, 8) for s in range(9)] == [ema_tau(s, 8, 0.9) for s in range(9)]
    assert m.ema_momentum(0, 8) == 0.9 and m.ema_momentum(8, 8) == 1.0
    with torch.no_grad():
        m.target.weight.zero_()
    online = m.backbone.weight.clone()
    m.momentum_update(0.75)
    torch.testing.assert_close(m.target.weight, 0.25 * online)
    assert torch.equal(m.backbone.weight, online)
