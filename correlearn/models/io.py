"""Load an exported backbone (``backbone.pt`` + ``backbone.json`` of a checkpoint artifact).

``backbone.pt`` holds torchvision/timm key names, so the same file loads into
``torchvision.models.resnet50()`` or ``timm.create_model(...)`` outside correlearn too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from correlearn.models import build_backbone

BACKBONE_FILE = "backbone.pt"
BACKBONE_JSON = "backbone.json"


class BackboneLoadError(RuntimeError):
    """A checkpoint folder has no usable exported backbone; the message names the file."""


def write_backbone_json(folder: str | Path, name: str, kwargs: dict[str, Any], method: str) -> None:
    """Write ``backbone.json``: the registry name and kwargs that rebuild the exported backbone."""
    spec = {"backbone": name, "backbone_kwargs": kwargs, "method": method}
    (Path(folder) / BACKBONE_JSON).write_text(json.dumps(spec, indent=2))


def read_backbone_json(folder: str | Path) -> dict[str, Any]:
    """``backbone.json``: ``{"backbone": name, "backbone_kwargs": {...}, "method": ...}``."""
    path = Path(folder) / BACKBONE_JSON
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BackboneLoadError(f"{path} is missing: not a checkpoint artifact") from None
    except json.JSONDecodeError as exc:
        raise BackboneLoadError(f"{path}: corrupt ({exc})") from None


def load_backbone(folder: str | Path, **kwargs_override: Any) -> nn.Module:
    """Rebuild the backbone of a checkpoint artifact and load its exported weights.

    Args:
        folder: the artifact folder (``backbone.pt``, ``backbone.json``).
        **kwargs_override: constructor overrides that do not change weight shapes, e.g. ResNet
            ``strides``/``dilations`` for evaluation protocols.

    Returns:
        The backbone in eval mode, on CPU.
    """
    folder = Path(folder)
    spec = read_backbone_json(folder)
    kwargs = {**spec.get("backbone_kwargs", {}), **kwargs_override}
    backbone = build_backbone(spec["backbone"], **kwargs)
    path = folder / BACKBONE_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BackboneLoadError(f"{path} is missing") from None
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a bad file
        raise BackboneLoadError(f"{path}: cannot load ({exc})") from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        # Such weights propagate NaN and score 0 everywhere: refuse them rather than score them.
        raise BackboneLoadError(
            f"{path}: {len(bad)} of {len(state)} tensors hold NaN or Inf (first: {bad[0]}); "
            "the weights are unusable"
        )
    inner = backbone.net if hasattr(backbone, "net") else backbone.model
    missing, unexpected = inner.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("fc.", "head."))]
    if missing or unexpected:
        raise BackboneLoadError(
            f"{path} does not match {spec['backbone']}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return backbone.eval()
