import math

import torch

from correlearn.losses.cim import (
    MAP_LOSSES,
    balanced_ce_map_loss,
    ce_map_loss,
    correlation_loss,
    focal_map_loss,
    map_iou,
    mse_map_loss,
)


def test_map_losses_known_values():
    y = torch.zeros(2, 4, 4)
    y[:, :2, :] = 1.0  # 8 of 16 pixels positive
    y[1, 2, :] = 1.0  # 12 of 16
    zero = torch.zeros_like(y)
    torch.testing.assert_close(ce_map_loss(zero, y), torch.full((2,), math.log(2)))
    # HED balance: sum_i w_i log 2 / 16 with w = beta on positives, 1 - beta on negatives.
    torch.testing.assert_close(
        balanced_ce_map_loss(zero, y),
        torch.tensor([0.5, 2 * 0.25 * 0.75]) * math.log(2),
    )
    torch.testing.assert_close(mse_map_loss(zero, y), torch.full((2,), 0.25))
    # Focal at p = 0.5: alpha_t * 0.25 * log 2, alpha_t = 0.25 (pos) / 0.75 (neg).
    torch.testing.assert_close(
        focal_map_loss(zero, y),
        torch.tensor([0.5 * 0.25 + 0.5 * 0.75, 0.75 * 0.25 + 0.25 * 0.75]) * 0.25 * math.log(2),
    )
    perfect = (2 * y - 1) * 100.0
    for name, fn in MAP_LOSSES.items():
        assert fn(perfect, y).abs().max() < 1e-6, name
    assert map_iou(perfect, y) == 1.0 and map_iou(-perfect, y) == 0.0


def test_correlation_loss_reductions_and_focal_parameters():
    torch.manual_seed(0)
    logits, maps = torch.randn(2, 3, 4, 4), (torch.rand(2, 3, 4, 4) > 0.5).float()
    per_map = ce_map_loss(logits.flatten(0, 1), maps.flatten(0, 1)).view(2, 3)
    torch.testing.assert_close(correlation_loss(logits, maps), per_map.mean(0).sum())
    torch.testing.assert_close(correlation_loss(logits, maps, "ce", "mean"), per_map.mean())
    focal = correlation_loss(logits, maps, "focal", "mean", focal_alpha=0.5, focal_gamma=0.0)
    # gamma 0, alpha 0.5: the focal loss is half the cross-entropy.
    torch.testing.assert_close(focal, per_map.mean() / 2)
