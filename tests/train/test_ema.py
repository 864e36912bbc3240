import pytest
import torch
from torch import nn

from correlearn.train.ema import ema_update


def test_ema_update_known_values():
    online, target = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        online.weight.copy_(torch.tensor([1.0, 3.0]))
        target.weight.copy_(torch.tensor([3.0, -1.0]))
        online.bias.fill_(2.0)
        target.bias.fill_(0.0)
        online.running_mean.fill_(7.0)
    ema_update(target, online, 0.5)
    assert target.weight.tolist() == [2.0, 1.0] and target.bias.tolist() == [1.0, 1.0]
    ema_update(target, online, 1.0)
    assert target.weight.tolist() == [2.0, 1.0]
    ema_update(target, online, 0.0)
    assert target.weight.tolist() == [1.0, 3.0]
    with pytest.raises(ValueError):
        ema_update(target, online, 1.5)
    with pytest.raises(ValueError):
        ema_update(nn.Linear(2, 2), online, 0.5)


def test_the_target_keeps_its_own_batchnorm_statistics():
    """As the reference codes: parameters are averaged, running statistics are the target's own."""
    online, target = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        online.running_mean.fill_(7.0)
        online.weight.fill_(3.0)
    target(torch.tensor([[1.0, 1.0], [3.0, 3.0]]))  # a forward in training mode updates them
    ema_update(target, online, 0.5)
    assert target.running_mean.tolist() == pytest.approx([0.2, 0.2])
    assert target.weight.tolist() == [2.0, 2.0]
