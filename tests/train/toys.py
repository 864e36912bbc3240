"""Toy methods and data for the training-loop tests: tiny, CPU-only, with in-model randomness."""

from __future__ import annotations

import copy

import torch
from torch import nn

from correlearn.methods.base import Method


class ToyBackbone(nn.Module):
    def __init__(self, dim: int = 8, hidden: int = 16, bn: bool = False):
        super().__init__()
        self.fc = nn.Linear(dim, hidden)
        self.norm = nn.BatchNorm1d(hidden) if bn else nn.Identity()
        self.out_dim = hidden

    def forward(self, x):
        return torch.relu(self.norm(self.fc(x)))

    def export_state_dict(self):
        return {f"backbone.{k}": v for k, v in self.state_dict().items()}


class ToyRegression(Method):
    """Regress y from x through dropout and a random input mask (randomness resume restores)."""

    def __init__(self, dim=8, dropout=0.2, mask=0.25, bn=False):
        super().__init__()
        self.backbone = ToyBackbone(dim, bn=bn)
        self.head = nn.Linear(self.backbone.out_dim, 1)
        self.drop = nn.Dropout(dropout)
        self.mask = mask

    def features(self, x):
        return self.backbone(x)

    def training_step(self, batch):
        x = batch["x"]
        if self.mask:
            x = x * (torch.rand_like(x) > self.mask)
        pred = self.head(self.drop(self.features(x))).squeeze(-1)
        loss = nn.functional.mse_loss(pred, batch["y"])
        return {"loss": loss, "mse": loss.detach(), "scale": 1.0}


class ToyEMA(ToyRegression):
    """ToyRegression with an EMA copy of the backbone (requires_grad False) that feeds the loss;
    ``taus`` records the momentum the loop asks for at every step."""

    def __init__(self, base_tau=0.99, **kw):
        super().__init__(**kw)
        self.target = copy.deepcopy(self.backbone).requires_grad_(False)
        self.base_tau = base_tau
        self.taus: list[float] = []

    def features(self, x):
        with torch.no_grad():
            t = self.target(x)
        return self.backbone(x) + 0.1 * t

    def ema_pairs(self):
        return [(self.backbone, self.target)]

    def ema_momentum(self, step: int, total_steps: int) -> float:
        tau = super().ema_momentum(step, total_steps)
        self.taus.append(tau)
        return tau


def make_data_fn(seed=0, batch=16, dim=8, pollute=False, limit=None):
    """Batches as a pure function of (seed, step); ``pollute`` draws from the global RNG like a
    DataLoader starting its workers, which the loop must isolate."""
    w = torch.linspace(-1, 1, dim)

    def data_fn(start):
        if pollute:
            torch.rand(3)
        step = start
        while limit is None or step < limit:
            g = torch.Generator().manual_seed(seed * 1_000_003 + step)
            x = torch.randn(batch, dim, generator=g)
            y = x @ w + 0.01 * torch.randn(batch, generator=g)
            if pollute:
                torch.rand(1)
            yield {"x": x, "y": y, "meta": [step]}
            step += 1

    return data_fn
