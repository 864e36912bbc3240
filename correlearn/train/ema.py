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
def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Move ``target`` towards ``online``: xi <- tau * xi + (1 - tau) * theta, in place.

    Only parameters are averaged. Buffers (BatchNorm running statistics) stay the target's own:
    its forward passes in training mode update them, so in eval mode it normalises with the
    statistics of its own weights and inputs. The reference codes do the same (BYOL's JAX code
    keeps the target's own state; OpenSelfSup/ORL, MoCo and solo-learn average parameters only).
    Copying the online statistics instead normalises the lagging EMA weights with statistics of
    other weights (and, for CIM, of other inputs): in eval mode BYOL's target projections of
    different images then collapse onto one direction, while training (batch statistics) is
    unchanged.

    Args:
        target: the EMA network (same architecture as ``online``).
        online: the trained network.
        tau: decay in [0, 1]; 1 leaves the target unchanged, 0 copies the online parameters.

    Raises:
        ValueError: tau is outside [0, 1] or the two networks' parameter names or shapes differ.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    t_named = list(target.named_parameters())
    o_named = list(online.named_parameters())
    if [(n, p.shape) for n, p in t_named] != [(n, p.shape) for n, p in o_named]:
        raise ValueError("target and online networks have different parameters")
    t_params = [p.data for _, p in t_named]
    o_params = [p.data for _, p in o_named]
    if t_params:
        # lerp(xi, theta, 1 - tau) = tau * xi + (1 - tau) * theta, fused per dtype/device.
        torch._foreach_lerp_(t_params, o_params, 1.0 - tau)
