"""MoCo releases: v1/v2 (facebookresearch/moco) and v3 (facebookresearch/moco-v3).

The training scripts save ``{"epoch", "arch", "state_dict", "optimizer"}`` from a
``DistributedDataParallel`` model, so every key starts with ``module.``:

- v1/v2 (``moco/builder.py``): ``encoder_q`` (the query encoder, a torchvision ResNet whose ``fc``
  is the projection head: one linear layer in v1, ``fc.0``/``fc.2`` in v2) and ``encoder_k`` (its
  momentum copy);
- v3 (``moco/builder.py`` of moco-v3): ``base_encoder`` (a torchvision ResNet with an MLP ``fc``,
  or a timm-named ViT whose ``head`` is the projector) with its ``predictor`` beside it, and
  ``momentum_encoder``.

Their own ``main_lincls.py`` keeps ``module.encoder_q.`` (v3: ``module.base_encoder.``) minus the
head, which is what import takes; the head, the predictor and the other branch are reported as
ignored. Export writes the v3 layout (``module.base_encoder.`` + a canonical backbone), which both
linear-probe scripts load after their prefix rename.
"""

from __future__ import annotations

from typing import Any

from correlearn.checkpoints.formats.base import (
    Extracted,
    Format,
    StateDict,
    looks_resnet,
    looks_vit,
    split_prefix,
    unwrap,
)

# branch -> prefixes, v1/v2 first; "module." is absent when the model was saved without DDP.
BRANCHES = {
    "online": ("module.encoder_q.", "module.base_encoder.", "encoder_q.", "base_encoder."),
    "target": ("module.encoder_k.", "module.momentum_encoder.", "encoder_k.", "momentum_encoder."),
}
_HEADS = ("fc.", "head.", "fc_norm.")


def _prefix(sd: Any, prefixes: tuple[str, ...]) -> str | None:
    for p in prefixes:
        if looks_resnet(sd, p) or looks_vit(sd, p):
            return p
    return None


def _detect(obj: Any) -> bool:
    if not isinstance(obj, dict) or "state_dict" not in obj:
        return False
    try:
        sd, _ = unwrap(obj, "moco", ("state_dict",))
    except ValueError:
        return False
    return _prefix(sd, BRANCHES["online"]) is not None


def _extract(obj: Any, branch: str | None) -> Extracted:
    sd, where = unwrap(obj, "moco", ("state_dict",))
    prefixes = BRANCHES[branch or "online"]
    prefix = _prefix(sd, prefixes) or prefixes[0]  # nothing there: coverage names what is missing
    taken, rest = split_prefix(sd, prefix)
    heads = [k for k in taken if k.startswith(_HEADS)]
    state = {k: v for k, v in taken.items() if not k.startswith(_HEADS)}
    return Extracted(state, [prefix + k for k in heads] + rest, f"file{where}['{prefix}*']")


def _wrap(state: StateDict, arch: str) -> Any:
    return {"state_dict": {f"module.base_encoder.{k}": v for k, v in state.items()}}


MOCO = Format(
    name="moco",
    description="MoCo v1/v2/v3 releases: 'module.encoder_q.' or 'module.base_encoder.', heads ignored",
    archs=("resnet", "vit"),
    detect=_detect,
    extract=_extract,
    wrap=_wrap,
    branches=tuple(BRANCHES),
)
