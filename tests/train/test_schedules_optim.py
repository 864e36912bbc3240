import math

import pytest
import torch
from torch import nn

from correlearn.config import ConfigError, validate
from correlearn.train import OptimConfig, TrainConfig
from correlearn.train.optim import build_optimizer, param_groups, scaled_lr
from correlearn.train.schedules import ema_tau, lr_at


def test_lr_warmup_endpoints_and_cosine():
    assert lr_at(0, 110, 10, 1.0, 0.0) == 0.0
    assert lr_at(5, 110, 10, 1.0, 0.0) == pytest.approx(0.5)
    assert lr_at(10, 110, 10, 1.0, 0.0) == pytest.approx(1.0)
    # Cosine midpoint: halfway between base and min.
    assert lr_at(60, 110, 10, 1.0, 0.0) == pytest.approx(0.5)
    assert lr_at(60, 110, 10, 1.0, 0.2) == pytest.approx(0.6)
    assert lr_at(110, 110, 10, 1.0, 0.2) == pytest.approx(0.2)
    assert lr_at(500, 110, 10, 1.0, 0.2) == pytest.approx(0.2)
    assert lr_at(0, 100, 0, 0.3, 0.0) == pytest.approx(0.3)
    lrs = [lr_at(s, 110, 10, 1.0, 0.0) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_ema_tau_cosine_rise():
    assert ema_tau(0, 100, 0.99) == pytest.approx(0.99)
    assert ema_tau(100, 100, 0.99) == pytest.approx(1.0)
    assert ema_tau(50, 100, 0.99) == pytest.approx(0.995)
    quarter = 1 - 0.01 * (math.cos(math.pi / 4) + 1) / 2
    assert ema_tau(25, 100, 0.99) == pytest.approx(quarter)
    taus = [ema_tau(s, 100, 0.996) for s in range(101)]
    assert all(a <= b for a, b in zip(taus, taus[1:], strict=False))


def test_param_groups_no_decay_on_bias_and_norm():
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2), nn.LayerNorm(2))
    groups = param_groups(net.named_parameters(), 0.05, exclude_bias_norm=True)
    decay, no_decay = groups
    assert decay["names"] == ["0.weight", "2.weight"] and decay["weight_decay"] == 0.05
    assert set(no_decay["names"]) == {
        "0.bias",
        "1.weight",
        "1.bias",
        "2.bias",
        "3.weight",
        "3.bias",
    }
    assert no_decay["weight_decay"] == 0.0
    (single,) = param_groups(net.named_parameters(), 0.05, exclude_bias_norm=False)
    assert len(single["params"]) == 8


def test_frozen_params_skipped_and_optimizer_kinds():
    net = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    net[1].requires_grad_(False)
    opt, lr = build_optimizer(
        net, OptimConfig(name="sgd", base_lr=0.1), batch_size=512, world_size=2
    )
    assert isinstance(opt, torch.optim.SGD) and lr == pytest.approx(0.4)
    assert sum(len(g["params"]) for g in opt.param_groups) == 2
    assert opt.param_groups[0]["momentum"] == 0.9
    opt, lr = build_optimizer(net, OptimConfig(base_lr=1.5e-4, lr_scaling="none"), 4096)
    assert isinstance(opt, torch.optim.AdamW) and lr == 1.5e-4
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)


def test_lr_scaling_linear_256():
    cfg = OptimConfig(base_lr=0.2)
    assert scaled_lr(cfg, 256) == pytest.approx(0.2)
    assert scaled_lr(cfg, 64, world_size=8) == pytest.approx(0.4)
    assert scaled_lr(cfg.model_copy(update={"lr_scaling": "none"}), 64, 8) == 0.2


def test_configs_warmup_and_steps():
    assert OptimConfig(warmup_epochs=2).resolve_warmup_steps(10, 100) == 20
    assert OptimConfig(warmup_epochs=2, warmup_steps=5).resolve_warmup_steps(10, 100) == 5
    assert OptimConfig(warmup_epochs=40).resolve_warmup_steps(10, 100) == 100
    cfg = TrainConfig(batch_size=32, epochs=3, devices=2)
    assert cfg.resolve_steps_per_epoch(1000) == 15
    assert cfg.resolve_total_steps(1000) == 45
    assert TrainConfig(steps_per_epoch=7, epochs=2).resolve_total_steps(10**6) == 14
    with pytest.raises(ConfigError, match="unknown key"):
        validate(TrainConfig, {"batch": 3})
    with pytest.raises(ConfigError):
        validate(OptimConfig, {"name": "lars"})
