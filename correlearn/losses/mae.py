"""MAE's pixel-reconstruction loss (He et al. 2022, Sec. 3 "Reconstruction target"), as SiamMAE.

The target of each patch is its pixels, optionally normalised by the patch's own mean and variance
(MAE's ``norm_pix_loss``, which SiamMAE uses); the loss is the mean squared error over the masked
patches only (MAE ``forward_loss``; SiamMAE, Gupta et al. 2023, Sec. 3 "Decoder").
"""

from __future__ import annotations

import torch


def norm_pix(target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-patch mean/variance normalisation of pixel targets (MAE ``norm_pix_loss``).

    Args:
        target: (B, N, P) patches of P = p * p * 3 pixels.
        eps: added to the (unbiased) variance.

    Returns:
        (B, N, P) normalised patches.
    """
    mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + eps) ** 0.5


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L2 loss on masked patches only (SiamMAE Sec. 3 "Decoder"; MAE ``forward_loss``).

    Args:
        pred: (B, N, P) predicted patches.
        target: (B, N, P) target patches.
        mask: (B, N), 1 = masked (counted), 0 = visible (ignored).

    Returns:
        Mean over masked patches of the per-patch mean squared error (0 if nothing is masked).
    """
    per_patch = ((pred - target) ** 2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum().clamp(min=1)
