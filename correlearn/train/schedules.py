"""Per-step schedules: learning rate (linear warm-up, half-cosine decay) and the EMA momentum.

Pure functions of the step index, so a resumed run recomputes exactly the values of an
uninterrupted one.
"""

from __future__ import annotations

import math


def lr_at(step: int, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float) -> float:
    """Learning rate of optimiser step ``step`` (0-based): linear warm-up, then half-cosine decay.

    As MAE's ``adjust_learning_rate`` evaluated per step: ``base_lr * step / warmup_steps`` during
    warm-up (0 at step 0, ``base_lr`` at ``warmup_steps``), then
    ``min_lr + (base_lr - min_lr) * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2``,
    which reaches ``min_lr`` at ``total_steps``.

    Args:
        step: 0-based optimiser step; values past ``total_steps`` give ``min_lr``.
        total_steps: length of the whole schedule in steps.
        warmup_steps: linear warm-up length (0 for none).
        base_lr: peak learning rate (already scaled by the batch).
        min_lr: floor at the end of the cosine.

    Returns:
        The learning rate.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * step / warmup_steps
    decay_steps = total_steps - warmup_steps
    if decay_steps <= 0:
        return base_lr
    progress = min(max(step - warmup_steps, 0) / decay_steps, 1.0)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_tau(step: int, total_steps: int, base_tau: float) -> float:
    """EMA target momentum of step ``step``: cosine rise from ``base_tau`` to 1.

    BYOL (Grill et al. 2020, Sec. 3.2):
    ``tau = 1 - (1 - base_tau) * (cos(pi * k / K) + 1) / 2`` with k the current step and K the
    total number of steps; the target is updated as ``xi <- tau * xi + (1 - tau) * theta``.

    Args:
        step: 0-based optimiser step k (clipped to ``[0, total_steps]``).
        total_steps: K.
        base_tau: tau at step 0 (BYOL/ORL/CIM: 0.99).

    Returns:
        tau, ``base_tau`` at step 0 and 1.0 at ``total_steps``.
    """
    if total_steps <= 0:
        return base_tau
    k = min(max(step, 0), total_steps)
    return 1.0 - (1.0 - base_tau) * (math.cos(math.pi * k / total_steps) + 1.0) / 2.0
