"""BYOL's regression loss (Grill et al. 2020, Sec. 3.1, eq. 2), used by BYOL and ORL.

The online network's prediction p regresses the target network's projection z of the other view;
both are L2-normalised, so the loss is ``2 - 2 cos(p, z)``. ORL uses the same symmetrised loss on
each of its three branches (ORL eq. 1-2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Normalised MSE between predictions and stop-gradient targets (BYOL eq. 2).

    ||p/||p|| - z/||z|| ||^2 = 2 - 2 cos(p, z), averaged over the batch; no gradient flows into z.

    Args:
        p: (B, D) online predictions.
        z: (B, D) target projections.

    Returns:
        Scalar in [0, 4].
    """
    p = F.normalize(p, dim=-1)
    z = F.normalize(z.detach(), dim=-1)
    return (2 - 2 * (p * z).sum(dim=-1)).mean()


def symmetric_byol_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """BYOL's symmetrised loss L + L~ (Sec. 3.1): view 1 predicts view 2's target and vice versa.

    Args:
        p1: (B, D) online prediction of view 1.
        p2: (B, D) online prediction of view 2.
        z1: (B, D) target projection of view 1.
        z2: (B, D) target projection of view 2.

    Returns:
        Scalar in [0, 8].
    """
    return byol_loss(p1, z2) + byol_loss(p2, z1)
