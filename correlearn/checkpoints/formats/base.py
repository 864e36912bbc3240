"""What a checkpoint format is: where its backbone sits in the file and how its names map.

Every format maps a file's object to the *canonical* names (torchvision ResNet, timm ViT: what
``backbone.pt`` holds) and back, with explicit prefixes and rename rules, never by guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from correlearn.checkpoints.files import CheckpointError, is_state_dict

StateDict = dict[str, torch.Tensor]


@dataclass
class Extracted:
    """The backbone part of a file, in canonical names.

    Attributes:
        state: canonical name -> tensor.
        ignored: file keys that are not the backbone (heads, decoders, the other branch), reported.
        source: where the backbone came from, e.g. ``state_dict['backbone.*']``.
    """

    state: StateDict
    ignored: list[str] = field(default_factory=list)
    source: str = ""


@dataclass(frozen=True)
class Format:
    """A checkpoint format.

    Attributes:
        name: ``--format`` value.
        description: one line: whose releases these are and the reference code.
        archs: the canonical families it can hold (``resnet``, ``vit``).
        detect: ``detect(obj) -> bool``: whether a loaded file looks like this format.
        extract: ``extract(obj, branch) -> Extracted``.
        wrap: ``wrap(state, arch) -> obj``: canonical weights as a file the reference code loads.
        branches: selectable sub-networks (first is the default), e.g. ``online``/``target``.
    """

    name: str
    description: str
    archs: tuple[str, ...]
    detect: Callable[[Any], bool]
    extract: Callable[[Any, str | None], Extracted]
    wrap: Callable[[StateDict, str], Any]
    branches: tuple[str, ...] = ()


def unwrap(obj: Any, fmt: str, containers: tuple[str, ...]) -> tuple[Mapping[str, Any], str]:
    """The state dict inside ``obj``: under the first present key of ``containers``, or ``obj``.

    Raises:
        CheckpointError: no state dict is there (the message lists the top-level keys).
    """
    if isinstance(obj, Mapping):
        for c in containers:
            if c in obj and is_state_dict(obj[c]):
                return obj[c], f"[{c!r}]"
        if is_state_dict(obj):
            return obj, ""
    keys = sorted(map(str, obj))[:8] if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointError(
        f"not a {fmt} checkpoint: no state dict under {list(containers)} ({keys})"
    )


def split_prefix(sd: Mapping[str, Any], prefix: str) -> tuple[StateDict, list[str]]:
    """Tensors whose key starts with ``prefix`` (prefix removed), and every other key."""
    taken = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
    rest = [k for k in sd if not k.startswith(prefix)]
    return {k: v for k, v in taken.items() if isinstance(v, torch.Tensor)}, rest


def first_prefix(sd: Mapping[str, Any], prefixes: tuple[str, ...], probe: str) -> str | None:
    """The first prefix ``p`` with ``p + probe`` among the keys (``probe`` names a backbone key)."""
    return next((p for p in prefixes if p + probe in sd), None)


def rename(state: StateDict, rules: list[tuple[str, str]]) -> StateDict:
    """Apply the first matching ``(regex, replacement)`` rule to each key; unmatched keys stay."""
    out = {}
    for k, v in state.items():
        for pat, rep in rules:
            new, n = re.subn(pat, rep, k)
            if n:
                k = new
                break
        out[k] = v
    return out


def looks_resnet(sd: Mapping[str, Any], prefix: str = "") -> bool:
    """Torchvision ResNet names under ``prefix`` (the stem conv and a first block)."""
    return f"{prefix}conv1.weight" in sd and f"{prefix}layer1.0.conv1.weight" in sd


def looks_vit(sd: Mapping[str, Any], prefix: str = "") -> bool:
    """timm/MAE/DINO ViT names under ``prefix`` (patch embedding and a first block)."""
    return f"{prefix}patch_embed.proj.weight" in sd and f"{prefix}blocks.0.attn.qkv.weight" in sd
