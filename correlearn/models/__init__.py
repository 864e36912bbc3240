"""Backbones and heads. ``build_backbone(name, **kwargs)`` looks a backbone up in :data:`BACKBONES`.

``backbone_info(name)`` (and a built backbone's ``info``) says what the family offers: its dense
layers and strides, whether it has BatchNorm, its label-propagation presets, its constructor
options (:class:`~correlearn.models.info.BackboneInfo`). Every backbone has ``out_dim``,
``forward`` (pooled), ``dense``, ``dense_dim``, ``dense_stride``, ``info`` and
``export_state_dict`` (docs/contracts.md). ResNets take ``strides``/``dilations``; ViTs take
``img_size`` (the position-embedding grid; any input size works) and ``pos_embed``
(``"learned"``, timm's default, or ``"sincos"``, MAE's fixed table).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator
from torch import nn

from correlearn.models.info import BackboneInfo, FeatureLayer, resnet_info, vit_info
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

_RESNET = resnet_info()

#: The record of every registered backbone at its constructor's defaults.
BACKBONE_INFO: dict[str, BackboneInfo] = {
    "resnet18": _RESNET,
    "resnet50": _RESNET,
    "resnet_test": _RESNET,
    "vit_small_patch16": vit_info(16),
    "vit_base_patch16": vit_info(16),
    "vit_small_patch8": vit_info(8),
    "vit_test_patch16": vit_info(16),
    "vit_tiny_patch8": vit_info(8),
}


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")


def _registered(name: str) -> str:
    if name not in BACKBONES:
        raise _unknown(name)
    return name


def backbone_info(name: str) -> BackboneInfo:
    """The record of the registered backbone ``name`` (family, dense layers, BatchNorm, presets).

    Raises:
        ValueError: the name is not registered (one line listing the known names).
    """
    try:
        return BACKBONE_INFO[name]
    except KeyError:
        raise _unknown(name) from None


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
        raise _unknown(name) from None
    return ctor(**kwargs)


__all__ = [
    "BACKBONES",
    "BACKBONE_INFO",
    "BackboneInfo",
    "BackboneName",
    "FeatureLayer",
    "ResNet",
    "ViT",
    "backbone_info",
    "build_backbone",
    "sincos_2d",
]
