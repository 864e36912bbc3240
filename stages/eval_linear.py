"""Stage ``eval_linear``: a linear classifier on frozen pooled features (standardised, SGD)."""

from __future__ import annotations

import torch
from pydantic import Field

from correlearn.eval.probe_data import ProbeDataConfig
from correlearn.eval.probe_stage import probe_stage
from correlearn.eval.probes import ProbeResult, linear_probe


class EvalLinearConfig(ProbeDataConfig):
    """Linear probe: SGD with momentum, cosine decay, on standardised frozen features."""

    epochs: int = Field(100, ge=1)
    lr: float = Field(0.1, gt=0)
    weight_decay: float = Field(0.0, ge=0)


def train_linear(f: dict[str, torch.Tensor], cfg: EvalLinearConfig) -> ProbeResult:
    """The linear classifier trained on the train split, tested on the test split."""
    res, _ = linear_probe(
        f["train"], f["train_labels"], f["test"], f["test_labels"],
        epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay, seed=cfg.seed,
    )  # fmt: skip
    return res


STAGE = probe_stage(
    "eval_linear", 1, EvalLinearConfig, train_linear, "linear probe on frozen features"
)
