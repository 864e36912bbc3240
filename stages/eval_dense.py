"""Frozen dense features and label-propagation settings for the propagation protocols.

Shared by ``eval_pose`` (JHMDB) and ``eval_parts`` (VIP): the preset is resolved from the
checkpoint as ``eval_label_propagation`` does (``auto``: ``vfs_resnet`` for ResNets,
``siammae_vit`` for SiamMAE checkpoints, ``dino_vit`` for other ViTs); then the protocol's own
settings apply; then the user's ``params``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from correlearn.eval.features import FeatureFn, dense_feature_fn
from correlearn.eval.label_propagation import LabelPropConfig
from correlearn.models.io import load_backbone, read_backbone_spec
from correlearn.stage import StageContext
from correlearn.train.distributed import resolve_device

Preset = Literal["auto", "vfs_resnet", "dino_vit", "siammae_vit"]


def resolve_preset(preset: str, spec: dict[str, Any]) -> str:
    """The label-propagation preset of a checkpoint (``backbone.json`` ``spec``)."""
    if preset != "auto":
        return preset
    if spec["backbone"].startswith("resnet"):
        return "vfs_resnet"
    return "siammae_vit" if spec.get("method") == "siammae" else "dino_vit"


def propagation_setup(
    ctx: StageContext,
    preset: str,
    protocol: dict[str, Any],
    params: dict[str, Any],
    device: str,
) -> tuple[FeatureFn, LabelPropConfig, dict[str, Any], torch.device]:
    """Load the checkpoint's backbone for dense features and build the propagation settings.

    Args:
        ctx: the running stage (input ``checkpoint``).
        preset: ``auto`` or a preset name.
        protocol: the protocol's overrides of the preset (its context length, k, radius).
        params: the user's overrides, applied last.
        device: ``auto``, ``cpu``, ``cuda``...

    Returns:
        ``(feature_fn, settings, metadata, device)``; metadata names the preset and settings.
    """
    spec = read_backbone_spec(ctx.input_path("checkpoint"))
    name = resolve_preset(preset, spec)
    lp = LabelPropConfig.preset(name, **{**protocol, **params})
    is_resnet = spec["backbone"].startswith("resnet")
    overrides = {"strides": tuple(lp.strides)} if lp.strides and is_resnet else {}
    backbone = load_backbone(ctx.input_path("checkpoint"), **overrides)
    dev = resolve_device(device)
    meta = {"preset": name, "label_propagation": lp.model_dump(mode="json"), **spec}
    return dense_feature_fn(backbone.to(dev), lp.layer), lp, meta, dev
