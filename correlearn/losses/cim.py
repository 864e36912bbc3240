"""Dense losses between CIM's predicted and ground-truth correlation maps (Li et al. 2023, Table 3).

Every loss takes the predictor's logit map l (N, H, W), y_hat = sigmoid(l), and the binary target
y (N, H, W), and returns one value per map, averaged over its H x W pixels as eq. 7 does; the
caller reduces over maps and exemplars. The ref code's predictor emits two class logits (z0, z1)
and applies a 2-class softmax cross-entropy; with l = z1 - z0 that is exactly the binary CE below
(softmax(z)_1 = sigmoid(z1 - z0)), values and gradients alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

MapLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def ce_map_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of eq. 7, the paper's default ("CE", Table 3).

    L = -1/(HW) sum_i y_i log y_hat_i + (1 - y_i) log(1 - y_hat_i).

    Args:
        logits: (N, H, W) logits l.
        target: (N, H, W) in {0, 1}.

    Returns:
        (N,) per-map losses.
    """
    loss = F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none")
    return loss.flatten(1).mean(1)


def balanced_ce_map_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Class-balanced cross-entropy of HED (Xie & Tu 2015, eq. 2), CIM Table 3 "BCE".

    Per map, beta = |Y-| / |Y|: positives weigh beta and negatives 1 - beta, so both classes
    contribute equally whatever the crop's area; the sum is divided by H x W as eq. 7.

    Args:
        logits: (N, H, W) logits l.
        target: (N, H, W) in {0, 1}.

    Returns:
        (N,) per-map losses.
    """
    y = target.to(logits.dtype).flatten(1)
    beta = 1.0 - y.mean(1, keepdim=True)
    weight = beta * y + (1.0 - beta) * (1.0 - y)
    loss = F.binary_cross_entropy_with_logits(logits.flatten(1), y, reduction="none")
    return (weight * loss).mean(1)


def mse_map_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between y_hat = sigmoid(l) and y, CIM Table 3 "MSE".

    Args:
        logits: (N, H, W) logits l.
        target: (N, H, W) in {0, 1}.

    Returns:
        (N,) per-map losses.
    """
    return (torch.sigmoid(logits) - target.to(logits.dtype)).square().flatten(1).mean(1)


def focal_map_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017, eq. 5) averaged over pixels, CIM Table 3 "Focal".

    FL = -alpha_t (1 - p_t)^gamma log p_t with p_t = y_hat on positives and 1 - y_hat on negatives,
    alpha_t = alpha on positives and 1 - alpha on negatives (RetinaNet's defaults 0.25, 2).

    Args:
        logits: (N, H, W) logits l.
        target: (N, H, W) in {0, 1}.
        alpha: weight of the positives.
        gamma: focusing exponent.

    Returns:
        (N,) per-map losses.
    """
    y = target.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")  # = -log p_t
    p = torch.sigmoid(logits)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return (alpha_t * (1 - p_t).pow(gamma) * ce).flatten(1).mean(1)


#: The losses of CIM Table 3 by config name.
MAP_LOSSES: dict[str, MapLoss] = {
    "ce": ce_map_loss,
    "balanced_ce": balanced_ce_map_loss,
    "mse": mse_map_loss,
    "focal": focal_map_loss,
}


def correlation_loss(
    logits: torch.Tensor,
    maps: torch.Tensor,
    loss: str = "ce",
    exemplar_reduction: str = "sum",
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
) -> torch.Tensor:
    """CIM's training loss over B contexts with E exemplars each (eq. 7 or a Table 3 alternative).

    Each map's loss is its pixel mean (:data:`MAP_LOSSES`); ``sum`` adds the exemplars' batch means
    (ref code: ``loss += CrossEntropyLoss()(pred_e, mask_e)`` per exemplar), ``mean`` averages all.

    Args:
        logits: (B, E, H, W) predicted logit maps.
        maps: (B, E, H, W) ground truth in {0, 1}.
        loss: a key of :data:`MAP_LOSSES`.
        exemplar_reduction: ``sum`` or ``mean`` over the E exemplars.
        focal_alpha: alpha of the focal loss.
        focal_gamma: gamma of the focal loss.

    Returns:
        Scalar.
    """
    fn = MAP_LOSSES[loss]
    if loss == "focal":
        fn = functools.partial(fn, alpha=focal_alpha, gamma=focal_gamma)
    per_map = fn(logits.flatten(0, 1), maps.flatten(0, 1)).view(maps.shape[:2])
    return per_map.mean(0).sum() if exemplar_reduction == "sum" else per_map.mean()


@torch.no_grad()
def map_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean IoU of the maps thresholded at y_hat = 0.5 (a training monitor, not a loss).

    Args:
        logits: (N, H, W) logits.
        target: (N, H, W) in {0, 1}.

    Returns:
        Scalar mean over the N maps (an empty union counts as IoU 1).
    """
    pred = (logits > 0).flatten(1)
    y = target.flatten(1) > 0.5
    inter = (pred & y).sum(1).float()
    union = (pred | y).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).mean()
