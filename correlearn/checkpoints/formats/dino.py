"""DINO full checkpoints (facebookresearch/dino, ``main_dino.py``).

``{"student", "teacher", "optimizer", "epoch", "args", "dino_loss"}``; each network is a
``MultiCropWrapper`` with ``backbone`` (DINO's ViT, timm names; or torchvision ResNet with ``fc``
replaced) and ``head`` (``DINOHead``). The student is wrapped in DistributedDataParallel
(``module.backbone.``); the teacher is too for ResNets (batch norms), not for ViTs
(``backbone.``). Branch ``teacher`` is the default, as in DINO's evaluation scripts
(``--checkpoint_key teacher``), which strip ``module.`` and ``backbone.`` the same way
(``utils.load_pretrained_weights``). Backbone-only DINO releases are plain torchvision/timm dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from correlearn.checkpoints.files import is_state_dict
from correlearn.checkpoints.formats.base import Extracted, Format, StateDict, split_prefix, unwrap

BRANCHES = ("teacher", "student")
PREFIXES = ("module.backbone.", "backbone.", "module.", "")


def _detect(obj: Any) -> bool:
    return isinstance(obj, Mapping) and any(is_state_dict(obj.get(b)) for b in BRANCHES)


def _extract(obj: Any, branch: str | None) -> Extracted:
    branch = branch or "teacher"
    sd, where = unwrap(obj, "dino", (branch,))
    prefix = next(
        p for p in PREFIXES if any(k.startswith(p) and not k.startswith(p + "head.") for k in sd)
    )
    taken, rest = split_prefix(sd, prefix)
    state = {k: v for k, v in taken.items() if not k.startswith(("head.", "fc."))}
    ignored = rest + [prefix + k for k in taken if k not in state]
    return Extracted(state, ignored, f"file{where}['{prefix}*']")


def _wrap(state: StateDict, arch: str) -> Any:
    return {"teacher": {f"backbone.{k}": v for k, v in state.items()}}


DINO = Format(
    name="dino",
    description="DINO full checkpoints: 'teacher'/'student', 'module.' and 'backbone.' prefixes",
    archs=("vit", "resnet"),
    detect=_detect,
    extract=_extract,
    wrap=_wrap,
    branches=BRANCHES,
)
