"""Backbones and heads. ``build_backbone(name, **kwargs)`` looks a backbone up in :data:`BACKBONES`.

Every backbone has ``out_dim``, ``forward`` (pooled), ``dense``, ``dense_stride`` and
``export_state_dict`` (docs/contracts.md). ResNets take ``strides``/``dilations``; ViTs take
``img_size`` (the position-embedding grid; any input size works) and ``pos_embed``
(``"learned"``, timm's default, or ``"sincos"``, MAE's fixed table).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator
from torch import nn

from correlearn.models.pos_embed import sincos_2d
from correlearn.models.resnet import ResNet, resnet18, resnet50, resnet_test
from correlearn.models.vit import (
    ViT,
    vit_base_patch16,
    vit_small_patch8,
    vit_small_patch16,
    vit_test_patch16,
    vit_tiny_patch8,
)

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "resnet_test": resnet_test,
    "vit_small_patch16": vit_small_patch16,
    "vit_base_patch16": vit_base_patch16,
    "vit_small_patch8": vit_small_patch8,
    "vit_test_patch16": vit_test_patch16,
    "vit_tiny_patch8": vit_tiny_patch8,
}


def _registered(name: str) -> str:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    return name


#: A config field naming a backbone: an unknown name is an error when the config is read.
BackboneName = Annotated[str, AfterValidator(_registered)]


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Build a randomly initialised backbone by registry name.

    Args:
        name: a key of :data:`BACKBONES`.
        **kwargs: passed to the constructor (ResNet: ``strides``, ``dilations``; ViT: ``img_size``).

    Returns:
        The backbone module.

    Raises:
        ValueError: the name is not registered (the message lists the known names).
    """
    try:
        ctor = BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; known backbones: {', '.join(sorted(BACKBONES))}"
        ) from None
    return ctor(**kwargs)


__all__ = ["BACKBONES", "BackboneName", "ResNet", "ViT", "build_backbone", "sincos_2d"]
