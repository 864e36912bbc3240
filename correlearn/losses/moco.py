"""MoCo's InfoNCE against a queue of negatives (He et al. 2020, eq. 1) and VFS's frame-pair form.

VFS with negatives (Xu & Wang 2021, Sec. 3.2, eq. 4) is MoCo v2 on pairs of frames of one video:
the query of frame a against the momentum key of frame b, and the reverse, at temperature 0.2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


def moco_pair_loss(
    q: torch.Tensor,
    k: torch.Tensor,
    queue: torch.Tensor,
    pairs: list[tuple[int, int]],
    temperature: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """VFS eq. 4 for each frame pair, in both directions (as the SimSiam loss), averaged.

    Args:
        q: (B, n, D) projections of the online encoder (queries).
        k: (B, n, D) L2-normalised momentum-encoder keys (no gradient).
        queue: (K, D) negatives from earlier batches (other videos).
        pairs: frame index pairs (a, b): q_a against k_b and q_b against k_a.
        temperature: tau of eq. 4 (0.2, VFS Sec. 4.1).

    Returns:
        The mean InfoNCE (scalar) and the top-1 accuracy of the positive among 1 + K logits.
    """
    a, b = (torch.tensor(x, device=q.device) for x in zip(*pairs, strict=True))
    l1, lg1 = info_nce(q[:, a].flatten(0, 1), k[:, b].flatten(0, 1), queue, temperature)
    l2, lg2 = info_nce(q[:, b].flatten(0, 1), k[:, a].flatten(0, 1), queue, temperature)
    acc = (torch.cat([lg1, lg2]).argmax(dim=1) == 0).float().mean()
    return 0.5 * (l1 + l2), acc
