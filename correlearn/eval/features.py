"""Frame preprocessing and frozen dense-feature helpers shared by the evaluation protocols."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def resized_shape(height: int, width: int, short_side: int | None, multiple: int = 1) -> tuple:
    """Target ``(h, w)`` of a resize to ``short_side`` (aspect kept; None keeps the size).

    Each side is then floored to a multiple of ``multiple`` (never below it).
    """
    if short_side is not None:
        scale = short_side / min(height, width)
        height, width = round(height * scale), round(width * scale)
    return (
        max(multiple, height // multiple * multiple),
        max(multiple, width // multiple * multiple),
    )


def resize_short_side(image: np.ndarray, short_side: int | None, multiple: int = 1) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to :func:`resized_shape`.

    Bilinear, as DINO's eval_video_segmentation.py reads frames with cv2.resize.
    """
    h, w = resized_shape(image.shape[0], image.shape[1], short_side, multiple)
    if (h, w) == image.shape[:2]:
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)


def frame_to_tensor(frame: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float32 normalised with ImageNet mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(frame)).to(device=device)
    x = x.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA (frozen inference), nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def dense_feature_fn(
    backbone: nn.Module,
    layer: str | None = None,
    precision: Literal["fp32", "bf16"] = "fp32",
    channels_last: bool = False,
) -> FeatureFn:
    """A frozen dense feature extractor for label propagation (docs/contracts.md ``dense``).

    Args:
        backbone: a backbone with ``dense(x, layer) -> (B, C, h, w)``; it is put in eval mode.
        layer: the feature layer (ResNet ``"res3" | "res4" | "res5"``; ``None`` for ViTs).
        precision: ``fp32`` (the reference codes evaluate in fp32) or ``bf16`` autocast, which
            applies on CUDA only (CPU always runs fp32).
        channels_last: run the backbone in channels-last memory format (speed on CPU/CUDA
            convolutions; same maths, float rounding may differ in the last bits).

    Returns:
        ``fn(x: (B, 3, H, W)) -> (B, C, h, w)`` float32, L2-normalised over channels, computed
        under ``torch.inference_mode``.
    """
    backbone.eval()
    if channels_last:
        backbone.to(memory_format=torch.channels_last)

    def fn(x: torch.Tensor) -> torch.Tensor:
        amp = autocast_for(x.device) if precision == "bf16" else nullcontext()
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), amp:
            feats = backbone.dense(x, layer)
        return F.normalize(feats.float(), dim=1).contiguous()

    return fn
