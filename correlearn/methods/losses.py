"""Similarity losses as pure tensor functions (no modules, no state).

- :func:`byol_loss`: BYOL (Grill et al. 2020) eq. 2, the normalised-MSE 2 - 2 cos(p, z); also ORL
  eq. 1 and VFS eq. 3/5.
- :func:`symmetric_byol_loss`: BYOL's L + L~ (eq. 2 and the swapped-view term).
- :func:`simsiam_loss`: SimSiam (Chen & He 2021) eq. 2 with VFS eq. 5's distance, halved per side.
- :func:`info_nce`: MoCo's InfoNCE with a queue of negatives (VFS eq. 1/4).
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


def simsiam_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """Symmetrised SimSiam loss, D(p1, sg(z2))/2 + D(p2, sg(z1))/2 (SimSiam eq. 2-4).

    D is VFS eq. 5's 2 - 2 p.z on L2-normalised vectors (SimSiam's -cos up to an affine map).
    Arguments as :func:`symmetric_byol_loss`, (B, D) each; z1/z2 come from the same network as
    p1/p2 before the predictor, and the stop-gradient is applied here.

    Returns:
        Scalar in [0, 4].
    """
    return 0.5 * (byol_loss(p1, z2) + byol_loss(p2, z1))


def info_nce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE with a queue of negatives (MoCo eq. 1; VFS eq. 4, tau = 0.2).

    Args:
        q: (B, D) queries (predictor side).
        k: (B, D) positive keys (target side; no gradient flows into them).
        queue: (K, D) negatives, assumed L2-normalised (as MoCo stores them).
        temperature: the softmax temperature tau.

    Returns:
        The mean cross-entropy (scalar) and the logits (B, 1 + K), positive first.
    """
    q = F.normalize(q, dim=-1)
    k = F.normalize(k.detach(), dim=-1)
    pos = (q * k).sum(dim=-1, keepdim=True)
    neg = q @ queue.detach().to(q.dtype).t()
    logits = torch.cat([pos, neg], dim=1) / temperature
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels), logits
