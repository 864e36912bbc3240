"""Frozen dense features and label-propagation settings of a checkpoint, for the propagation protocols.

Shared by ``eval_label_propagation`` (DAVIS), ``eval_pose`` (JHMDB) and ``eval_parts`` (VIP). The
preset follows the checkpoint unless given (:func:`choose_preset`: ``crw_resnet`` for an imported
CRW release, ``vfs_resnet`` for other ResNets, ``siammae_vit`` for SiamMAE checkpoints,
``dino_vit`` for other ViTs); then a protocol's own settings apply; then the user's ``params``. A
ResNet is built with the preset's strides (VFS Sec. 4.1: res4 at stride 8) and padding mode
(CRW: reflect).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from correlearn.eval.features import FeatureFn, dense_feature_fn
from correlearn.eval.label_prop_config import LabelPropConfig
from correlearn.eval.protocol_presets import propagation_overrides
from correlearn.models.io import load_backbone, read_backbone_spec
from correlearn.train.distributed import resolve_device

Preset = Literal["auto", "vfs_resnet", "crw_resnet", "dino_vit", "siammae_vit"]


def choose_preset(preset: str, spec: dict[str, Any]) -> str:
    """``preset`` itself, or for ``auto`` the protocol of the checkpoint's backbone and method.

    Args:
        preset: ``auto`` or a preset name.
        spec: the checkpoint's ``backbone.json`` (``backbone``, ``method``).
    """
    if preset != "auto":
        return preset
    if spec["backbone"].startswith("resnet"):
        return "crw_resnet" if spec.get("method") == "import:crw" else "vfs_resnet"
    return "siammae_vit" if spec.get("method") == "siammae" else "dino_vit"


def _resnet_overrides(lp: LabelPropConfig, spec: dict[str, Any]) -> dict[str, Any]:
    """The preset's ResNet constructor overrides (strides, padding mode); none for a ViT."""
    if not spec["backbone"].startswith("resnet"):
        return {}
    out: dict[str, Any] = {"strides": tuple(lp.strides)} if lp.strides else {}
    if lp.padding_mode != "zeros":
        out["padding_mode"] = lp.padding_mode
    return out


@dataclass(frozen=True)
class DenseSetup:
    """What a propagation protocol runs with.

    Attributes:
        feature_fn: ``(B, 3, H, W)`` -> ``(B, C, h, w)`` L2-normalised frozen features.
        lp: the propagation settings.
        meta: ``{"preset", "label_propagation", **backbone.json}`` for the manifest.
        device: where features are computed.
    """

    feature_fn: FeatureFn
    lp: LabelPropConfig
    meta: dict[str, Any]
    device: torch.device


def dense_setup(
    checkpoint: str | Path,
    preset: str,
    protocol: str | None,
    params: dict[str, Any],
    device: str,
    precision: Literal["fp32", "bf16"] = "fp32",
) -> DenseSetup:
    """Load the checkpoint's backbone for dense features and build the propagation settings.

    Args:
        checkpoint: the checkpoint artifact folder (``backbone.json``, ``backbone.pt``).
        preset: ``auto`` or a preset name.
        protocol: ``pose`` or ``parts``: that protocol's overrides of the preset
            (:mod:`correlearn.eval.protocol_presets`); None (DAVIS): the preset itself.
        params: the user's overrides, applied last.
        device: ``auto``, ``cpu``, ``cuda``...
        precision: feature extraction in ``fp32`` or ``bf16`` autocast (CUDA only).
    """
    spec = read_backbone_spec(checkpoint)
    name = choose_preset(preset, spec)
    lp = LabelPropConfig.preset(name, **{**propagation_overrides(protocol, name), **params})
    backbone = load_backbone(checkpoint, **_resnet_overrides(lp, spec))
    dev = resolve_device(device)
    meta = {"preset": name, "label_propagation": lp.model_dump(mode="json"), **spec}
    return DenseSetup(dense_feature_fn(backbone.to(dev), lp.layer, precision), lp, meta, dev)
