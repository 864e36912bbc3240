"""CIM releases (weivision/Correlational-Image-Modeling).

``models/cim.py`` is MAE's layout with a second, EMA encoder for the context: ``patch_embed_c``,
``blocks_c``, ``norm_c`` beside the online ``patch_embed``, ``blocks``, ``norm``; checkpoints are
``{"model": ..., "optimizer", "epoch", "scaler", "args"}`` (``util/misc.py:save_model``). Branch
``online`` (default) is what ``tools/main_finetune.py`` loads; ``target`` is its ``--use_ema``:
``blocks_c`` and ``norm_c`` replace ``blocks`` and ``norm``, while ``patch_embed``, ``cls_token``
and ``pos_embed`` stay the online ones, exactly as that script does.

The CIM repository releases no ResNet code; its ResNet-50 is read as torchvision names under
``model`` (optionally behind ``module.``, ``encoder.`` or ``backbone.``), a documented assumption.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from correlearn.checkpoints.formats.base import (
    Extracted,
    Format,
    StateDict,
    first_prefix,
    split_prefix,
    unwrap,
)
from correlearn.checkpoints.formats.mae import is_encoder_key

CONTAINERS = ("model",)
RESNET_PREFIXES = ("", "module.", "encoder.", "backbone.")


def _detect(obj: Any) -> bool:
    if not isinstance(obj, Mapping) or "model" not in obj:
        return False
    try:
        sd, _ = unwrap(obj, "cim", CONTAINERS)
    except ValueError:
        return False
    vit = "blocks_c.0.attn.qkv.weight" in sd
    return vit or first_prefix(sd, RESNET_PREFIXES, "layer1.0.conv1.weight") is not None


def _extract_vit(sd: Mapping[str, Any], branch: str, where: str) -> Extracted:
    online = {k: v for k, v in sd.items() if is_encoder_key(k)}
    if branch == "online":
        return Extracted(online, [k for k in sd if k not in online], f"file{where} (online)")
    # main_finetune.py --use_ema: blocks_c and norm_c replace blocks and norm, nothing else.
    state = {k: v for k, v in online.items() if not k.startswith(("blocks.", "norm."))}
    used = set(state)
    for k, v in sd.items():
        for src, dst in (("blocks_c.", "blocks."), ("norm_c.", "norm.")):
            if k.startswith(src):
                state[dst + k[len(src) :]] = v
                used.add(k)
    return Extracted(state, [k for k in sd if k not in used], f"file{where} (EMA target)")


def _extract(obj: Any, branch: str | None) -> Extracted:
    sd, where = unwrap(obj, "cim", CONTAINERS)
    prefix = first_prefix(sd, RESNET_PREFIXES, "layer1.0.conv1.weight")
    if prefix is None:
        return _extract_vit(sd, branch or "online", where)
    taken, rest = split_prefix(sd, prefix)
    state = {k: v for k, v in taken.items() if not k.startswith("fc.")}
    return Extracted(
        state,
        rest + [prefix + k for k in taken if k.startswith("fc.")],
        f"file{where}['{prefix}*']",
    )


def _wrap(state: StateDict, arch: str) -> Any:
    return {"model": dict(state)}


CIM = Format(
    name="cim",
    description="CIM releases: MAE-style ViT under 'model' (online or EMA blocks_c), ResNet-50",
    archs=("vit", "resnet"),
    detect=_detect,
    extract=_extract,
    wrap=_wrap,
    branches=("online", "target"),
)
