"""Exponential-moving-average target networks (BYOL Sec. 3.1; used by BYOL, ORL, CIM and VFS-MoCo).

BYOL updates the target parameters as xi <- tau * xi + (1 - tau) * theta after every optimiser step,
with tau rising from a base value to 1 on a cosine schedule (BYOL Sec. 3.2;
:func:`correlearn.train.schedules.ema_tau`). VFS eq. 2 and MoCo use the same update with a fixed m.
The training loop applies it to the (online, target) pairs that a method declares in
:meth:`correlearn.methods.base.Method.ema_pairs`.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float, copy_buffers: bool = True) -> None:
    """Move ``target`` towards ``online``: xi <- tau * xi + (1 - tau) * theta, in place.

    Parameters are averaged; buffers (BatchNorm running statistics, counters) are copied, since an
    average of counters is meaningless and BYOL's target normalises with its own batch statistics in
    training anyway.

    Args:
        target: the EMA network (same architecture as ``online``).
        online: the trained network.
        tau: decay in [0, 1]; 1 leaves the target unchanged, 0 copies the online network.
        copy_buffers: copy the online buffers into the target. False for a target that sees other
            inputs than its online network (CIM's target encodes contexts, the online encoder
            exemplars): its BatchNorm running statistics then follow its own inputs, which is
            what it normalises with in eval mode. Training (batch statistics) is the same either way.

    Raises:
        ValueError: tau is outside [0, 1] or the two networks' parameter names differ.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    t_named = list(target.named_parameters())
    o_named = list(online.named_parameters())
    if [n for n, _ in t_named] != [n for n, _ in o_named]:
        raise ValueError("target and online networks have different parameters")
    t_params = [p.data for _, p in t_named]
    o_params = [p.data for _, p in o_named]
    if t_params:
        # lerp(xi, theta, 1 - tau) = tau * xi + (1 - tau) * theta, fused per dtype/device.
        torch._foreach_lerp_(t_params, o_params, 1.0 - tau)
    if not copy_buffers:
        return
    for tb, ob in zip(target.buffers(), online.buffers(), strict=True):
        tb.copy_(ob)
