"""MAE-style ViT releases: facebookresearch/mae, and SiamMAE as CropMAE releases it.

MAE (``models_mae.py``) and CropMAE (``models/SiamMAE.py``, a subclass of MAE's model) save
``{"model": model.state_dict(), "optimizer", "epoch", "scaler", "args"}``
(``util/misc.py:save_model``). The encoder uses timm names (``cls_token``, ``pos_embed`` with the
CLS slot, ``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``,
``norm``); the decoder (``decoder_*``, ``mask_token``) is not the backbone. Other SiamMAE
re-implementations keep the encoder under ``encoder.`` and store ``pos_embed`` without the CLS
slot; :mod:`correlearn.checkpoints.arch` restores that slot as zeros (MAE's CLS position).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from correlearn.checkpoints.formats.base import (
    Extracted,
    Format,
    StateDict,
    first_prefix,
    looks_vit,
    split_prefix,
    unwrap,
)

ENCODER_TOKENS = ("cls_token", "pos_embed")
ENCODER_PREFIXES = ("patch_embed.", "blocks.", "norm.")
CONTAINERS = ("model",)


def is_encoder_key(k: str) -> bool:
    """Whether a canonical ViT key is an encoder weight (not a decoder, head or mask token)."""
    return k in ENCODER_TOKENS or k.startswith(ENCODER_PREFIXES)


def encoder_prefix(sd: Mapping[str, Any]) -> str | None:
    """``"encoder."`` or ``""``: where the ViT encoder's names start, or None."""
    return first_prefix(sd, ("", "encoder."), "blocks.0.attn.qkv.weight")


def _detect(obj: Any) -> bool:
    if not isinstance(obj, Mapping):
        return False
    try:
        sd, where = unwrap(obj, "mae", CONTAINERS)
    except ValueError:
        return False
    prefix = encoder_prefix(sd)
    # A plain timm dict is the timm format; MAE has the "model" wrapper or the "encoder." prefix.
    return prefix is not None and (bool(where) or prefix == "encoder.") and looks_vit(sd, prefix)


def _extract(obj: Any, branch: str | None) -> Extracted:
    sd, where = unwrap(obj, "mae", CONTAINERS)
    prefix = encoder_prefix(sd) or ""
    taken, rest = split_prefix(sd, prefix)
    state = {k: v for k, v in taken.items() if is_encoder_key(k)}
    ignored = rest + [prefix + k for k in taken if not is_encoder_key(k)]
    return Extracted(state, ignored, f"file{where}['{prefix}*']")


def _wrap(state: StateDict, arch: str) -> Any:
    return {"model": dict(state)}


MAE = Format(
    name="mae",
    description="MAE / CropMAE / SiamMAE ViT releases: encoder under 'model' (or 'encoder.')",
    archs=("vit",),
    detect=_detect,
    extract=_extract,
    wrap=_wrap,
)
