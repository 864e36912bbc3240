"""ORL and BYOL releases (Jiahao000/ORL, open-mmlab/OpenSelfSup).

The models (``openselfsup/models/byol.py``, ``orl.py``) hold ``online_net = Sequential(backbone,
neck)`` and ``target_net`` (the EMA copy), and alias ``self.backbone = self.online_net[0]``, so a
training checkpoint (mmcv: ``{"meta", "state_dict", "optimizer"}``) has the online backbone twice,
under ``online_net.0.`` and ``backbone.``. Inside, the mmdet-style ResNet uses torchvision names
(``conv1``, ``bn1``, ``layerL.B.convK``/``bnK``, ``downsample.0``/``.1``). The repositories'
``tools/extract_backbone_weights.py`` writes ``{"state_dict": <backbone, prefix removed>}``, which
is also what :func:`_wrap` writes.
"""

from __future__ import annotations

from typing import Any

from correlearn.checkpoints.formats.base import (
    Extracted,
    Format,
    StateDict,
    first_prefix,
    looks_resnet,
    split_prefix,
    unwrap,
)

BRANCHES = {"online": ("online_net.0.", "backbone.", ""), "target": ("target_net.0.",)}


def _detect(obj: Any) -> bool:
    if not isinstance(obj, dict) or "state_dict" not in obj:
        return False
    try:
        sd, _ = unwrap(obj, "openselfsup", ("state_dict",))
    except ValueError:
        return False
    return first_prefix(sd, BRANCHES["online"], "layer1.0.conv1.weight") is not None


def _extract(obj: Any, branch: str | None) -> Extracted:
    sd, where = unwrap(obj, "openselfsup", ("state_dict",))
    prefixes = BRANCHES[branch or "online"]
    prefix = first_prefix(sd, prefixes, "layer1.0.conv1.weight")
    if prefix is None or not looks_resnet(sd, prefix):
        prefix = prefixes[0]  # nothing there: the coverage check names what is missing
    taken, rest = split_prefix(sd, prefix)
    return Extracted(taken, rest, f"file{where}['{prefix}*']")


def _wrap(state: StateDict, arch: str) -> Any:
    return {"state_dict": dict(state)}


OPENSELFSUP = Format(
    name="openselfsup",
    description="ORL / BYOL releases (OpenSelfSup): 'online_net.0.' or 'backbone.', torchvision names",
    archs=("resnet",),
    detect=_detect,
    extract=_extract,
    wrap=_wrap,
    branches=tuple(BRANCHES),
)
