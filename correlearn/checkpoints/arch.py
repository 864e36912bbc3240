"""Which registered backbone a canonical state dict is, and whether it covers all of it.

A file that covers only part of a backbone would evaluate a half-random network, so the import
refuses it and names the first missing keys. BatchNorm ``num_batches_tracked`` counters are the
exception: older torch versions did not save them and they change no output in eval mode, so a
missing one keeps the backbone's own value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from correlearn.checkpoints.files import CheckpointError
from correlearn.models import BACKBONES, build_backbone

StateDict = dict[str, torch.Tensor]

# (block kind, blocks per stage) -> registry name.
RESNETS = {
    ("basic", (2, 2, 2, 2)): "resnet18",
    ("bottleneck", (3, 4, 6, 3)): "resnet50",
    ("basic", (1, 1, 1, 1)): "resnet_test",
}
# (width, depth, patch) -> registry name.
VITS = {
    (384, 12, 16): "vit_small_patch16",
    (768, 12, 16): "vit_base_patch16",
    (384, 12, 8): "vit_small_patch8",
    (64, 2, 16): "vit_test_patch16",
}


@dataclass
class Coverage:
    """How a canonical state dict fits a backbone.

    Attributes:
        loaded: backbone keys taken from the file.
        total: the backbone's keys.
        unexpected: canonical keys the backbone does not have (reported, not loaded).
        filled: missing ``num_batches_tracked`` counters kept from the backbone.
    """

    loaded: int
    total: int
    unexpected: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)


def arch_family(state: StateDict) -> str:
    """``"resnet"`` or ``"vit"`` from the canonical names; an error for anything else."""
    if "conv1.weight" in state or any(k.startswith("layer1.") for k in state):
        return "resnet"
    if "patch_embed.proj.weight" in state or any(k.startswith("blocks.") for k in state):
        return "vit"
    raise CheckpointError(f"neither a ResNet nor a ViT (first keys {sorted(state)[:4]})")


def add_cls_pos_slot(state: StateDict) -> str | None:
    """Give ``pos_embed`` the CLS slot when a file stores patches only, in place.

    ``pos_embed``: (1, N, D) with N a square -> (1, 1 + N, D), the CLS slot zero: the value MAE's
    sin-cos table gives it, and what "no position for CLS" means in the reference code.

    Returns:
        A note for the import report, or None when nothing changed.
    """
    pe = state.get("pos_embed")
    if pe is None or pe.dim() != 3:
        return None
    n = pe.shape[1]
    if math.isqrt(n) ** 2 != n:
        return None
    state["pos_embed"] = torch.cat([pe.new_zeros(1, 1, pe.shape[2]), pe], dim=1)
    return f"pos_embed had no CLS slot ({n} patches): added a zero one"


def _smallest_cover(options: dict[tuple[int, ...], str], found: tuple[int, ...]) -> str | None:
    """The smallest registered layout with at least ``found`` blocks per stage, or None.

    A file missing whole stages or blocks is then named as the backbone it falls short of, and
    the coverage check refuses it with the first missing keys instead of "unknown architecture".
    """
    fits = [b for b in options if all(x >= y for x, y in zip(b, found, strict=True))]
    return options[min(fits, key=sum)] if fits and any(found) else None


def _resnet_name(state: StateDict) -> str:
    blocks = []
    for i in range(1, 5):
        ids = {int(m.group(1)) for k in state if (m := re.match(rf"layer{i}\.(\d+)\.", k))}
        blocks.append(max(ids) + 1 if ids else 0)
    kind = "bottleneck" if "layer1.0.conv3.weight" in state else "basic"
    name = RESNETS.get((kind, tuple(blocks))) or _smallest_cover(
        {b: n for (k, b), n in RESNETS.items() if k == kind}, tuple(blocks)
    )
    if name is None:
        raise CheckpointError(
            f"a {kind} ResNet with {tuple(blocks)} blocks per stage, not a registered backbone "
            f"({', '.join(sorted(RESNETS.values()))})"
        )
    return name


def _vit_name(state: StateDict) -> tuple[str, dict[str, Any]]:
    proj = state.get("patch_embed.proj.weight")
    if proj is None:
        raise CheckpointError("a ViT without patch_embed.proj.weight: not the whole backbone")
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    width, patch = int(proj.shape[0]), int(proj.shape[-1])
    name = VITS.get((width, depth, patch)) or _smallest_cover(
        {(d,): n for (w, d, p), n in VITS.items() if (w, p) == (width, patch)}, (depth,)
    )
    if name is None:
        raise CheckpointError(
            f"a ViT of width {width}, depth {depth}, patch {patch}: not a registered backbone "
            f"({', '.join(sorted(VITS.values()))})"
        )
    kwargs: dict[str, Any] = {}
    pe = state.get("pos_embed")
    if pe is not None:
        grid = math.isqrt(pe.shape[1] - 1)
        kwargs["img_size"] = grid * patch  # the position table's native size
    return name, kwargs


def infer_backbone(state: StateDict) -> tuple[str, dict[str, Any]]:
    """The registry name and constructor kwargs of the backbone a canonical state dict holds."""
    if arch_family(state) == "resnet":
        return _resnet_name(state), {}
    return _vit_name(state)


def load_covering(
    state: StateDict, name: str, kwargs: dict[str, Any]
) -> tuple[nn.Module, Coverage]:
    """Build backbone ``name`` and load ``state``, refusing a file that does not cover it.

    Raises:
        CheckpointError: a backbone weight is missing or has another shape (the message names
            the first few).
    """
    if name not in BACKBONES:
        raise CheckpointError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    backbone = build_backbone(name, **kwargs)
    expected = backbone.export_state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise CheckpointError(
            f"covers {len(expected) - len(missing)} of {len(expected)} {name} weights; "
            f"first missing: {', '.join(missing[:3])}"
        )
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if wrong:
        k = wrong[0]
        raise CheckpointError(
            f"not a {name}: {k} is {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
            + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else "")
        )
    filled = [k for k in expected if k not in state]
    full = {k: state.get(k, expected[k]) for k in expected}
    inner = backbone.net if hasattr(backbone, "net") else backbone.model
    inner.load_state_dict(full, strict=True)
    unexpected = sorted(k for k in state if k not in expected)
    return backbone.eval(), Coverage(len(expected) - len(filled), len(expected), unexpected, filled)
