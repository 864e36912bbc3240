"""What ``train_siamfc_head`` and ``eval_tracking`` share: the protocol's backbone and its res5."""

from __future__ import annotations

from pathlib import Path

import torch

from correlearn.eval.tracking import RESNET_DILATIONS, RESNET_STRIDES
from correlearn.models.io import load_backbone, read_backbone_spec


def load_tracking_backbone(folder: Path, device) -> tuple[torch.nn.Module, dict]:
    """The checkpoint's backbone, frozen, as the tracking protocol runs it.

    ResNets get res4/res5 strides removed and dilations 2 and 4 (VFS Sec. 4.1), so res5 has
    stride 8; ViTs (not part of the protocol) give their patch tokens at the patch stride.

    Returns:
        ``(backbone in eval mode on device, {"backbone", "channels", "total_stride"})``.
    """
    spec = read_backbone_spec(folder)
    resnet = spec["backbone"].startswith("resnet")
    kw = {"strides": RESNET_STRIDES, "dilations": RESNET_DILATIONS} if resnet else {}
    backbone = load_backbone(folder, **kw).to(device).eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    layer = "res5" if resnet else None
    channels = backbone.dense_dim(layer) if resnet else backbone.out_dim
    meta = {"backbone": spec["backbone"], "channels": int(channels)}
    meta["total_stride"] = int(backbone.dense_stride(layer))
    return backbone, meta


def res5_features(backbone: torch.nn.Module):
    """``fn(x: (B, 3, H, W)) -> (B, C, h, w)``: raw (not normalised) res5, as SiamFC correlates."""
    layer = "res5" if hasattr(backbone, "dense_dim") else None

    def fn(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return backbone.dense(x, layer).float()

    return fn
