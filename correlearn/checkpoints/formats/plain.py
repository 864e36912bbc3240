"""Plain state dicts with canonical names: torchvision ResNets and timm ViTs, as they are.

DINO's and MAE's backbone-only releases (``dino_resnet50_pretrain.pth``,
``dino_deitsmall16_pretrain.pth``) are such plain dicts, so they import under these formats.
"""

from __future__ import annotations

from typing import Any

from correlearn.checkpoints.files import is_state_dict
from correlearn.checkpoints.formats.base import (
    Extracted,
    Format,
    StateDict,
    looks_resnet,
    looks_vit,
    unwrap,
)

# Classifier heads are not backbone weights (torchvision ``fc``, timm ``head`` and ``fc_norm``).
_HEADS = ("fc.", "head.", "fc_norm.")


def _extract(fmt: str):
    def extract(obj: Any, branch: str | None) -> Extracted:
        sd, where = unwrap(obj, fmt, ())
        state = {k: v for k, v in sd.items() if not k.startswith(_HEADS)}
        return Extracted(state, [k for k in sd if k.startswith(_HEADS)], f"file{where}")

    return extract


def _wrap(state: StateDict, arch: str) -> Any:
    return dict(state)


TORCHVISION = Format(
    name="torchvision",
    description="torchvision ResNet state dict (conv1, bn1, layer1..4, fc), as saved by torch.save",
    archs=("resnet",),
    detect=lambda obj: is_state_dict(obj) and looks_resnet(obj),
    extract=_extract("torchvision"),
    wrap=_wrap,
)

TIMM = Format(
    name="timm",
    description="timm VisionTransformer state dict (cls_token, pos_embed, patch_embed, blocks)",
    archs=("vit",),
    detect=lambda obj: is_state_dict(obj) and looks_vit(obj),
    extract=_extract("timm"),
    wrap=_wrap,
)
