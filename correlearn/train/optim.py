"""Optimiser construction: parameter groups (no weight decay on biases/norms) and lr scaling."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from correlearn.train.config import OptimConfig


def scaled_lr(cfg: OptimConfig, batch_size: int, world_size: int = 1) -> float:
    """Peak learning rate: ``base_lr * batch_size * world_size / 256`` under ``linear_256``.

    The linear scaling rule of Goyal et al. as used by BYOL, ORL and MAE (``lr = blr * eff_batch /
    256``), where the effective batch is the per-process batch times the number of processes.

    Args:
        cfg: the optimiser config.
        batch_size: batch per process.
        world_size: number of processes.

    Returns:
        The learning rate that the schedule peaks at.
    """
    if cfg.lr_scaling == "linear_256":
        return cfg.base_lr * batch_size * world_size / 256.0
    return cfg.base_lr


def _is_no_decay(name: str, param: torch.Tensor) -> bool:
    # As timm's param_groups_weight_decay: 1-d tensors are biases and norm scales/shifts.
    return param.ndim <= 1 or name.endswith(".bias")


def param_groups(
    named_params: Iterable[tuple[str, nn.Parameter]], weight_decay: float, exclude_bias_norm: bool
) -> list[dict]:
    """Split trainable parameters into a decayed and a non-decayed group.

    Args:
        named_params: ``(name, parameter)`` pairs; those with ``requires_grad=False`` (EMA targets,
            fixed position embeddings) are skipped.
        weight_decay: decay of the decayed group.
        exclude_bias_norm: put biases and 1-d parameters in a group with weight decay 0.

    Returns:
        Parameter groups for a ``torch.optim`` optimiser; each group carries its ``names``.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    decay_names: list[str] = []
    no_decay_names: list[str] = []
    seen: set[int] = set()
    for name, p in named_params:
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if exclude_bias_norm and _is_no_decay(name, p):
            no_decay.append(p)
            no_decay_names.append(name)
        else:
            decay.append(p)
            decay_names.append(name)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay, "names": decay_names})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "names": no_decay_names})
    if not groups:
        raise ValueError("no trainable parameters (all have requires_grad=False)")
    return groups


def build_optimizer(
    params: nn.Module | Iterable[tuple[str, nn.Parameter]],
    cfg: OptimConfig,
    batch_size: int,
    world_size: int = 1,
) -> tuple[torch.optim.Optimizer, float]:
    """Build the SGD or AdamW optimiser of a method.

    Args:
        params: the method (its ``named_parameters()`` are used) or ``(name, param)`` pairs.
        cfg: the optimiser config.
        batch_size: batch per process (for the lr scaling rule).
        world_size: number of processes (for the lr scaling rule).

    Returns:
        The optimiser (every group starts at the scaled lr; the loop sets it per step from the
        schedule) and the scaled peak learning rate.
    """
    named = params.named_parameters() if isinstance(params, nn.Module) else params
    groups = param_groups(named, cfg.weight_decay, cfg.exclude_bias_norm)
    lr = scaled_lr(cfg, batch_size, world_size)
    if cfg.name == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov
        )
    else:
        opt = torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.betas))
    return opt, lr
