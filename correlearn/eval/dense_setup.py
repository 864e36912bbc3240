"""Frozen dense features and label-propagation settings of a checkpoint, for the propagation protocols.

Shared by ``eval_label_propagation`` (DAVIS), ``eval_pose`` (JHMDB) and ``eval_parts`` (VIP). The
preset follows the checkpoint unless given (:func:`choose_preset`: the method's own preset where
it has one, ``crw_resnet`` for an imported CRW release and ``siammae_vit`` for SiamMAE checkpoints,
else the backbone's default, ``vfs_resnet`` for ResNets and ``dino_vit`` for ViTs); then a
protocol's own settings apply; then the user's ``params``. A backbone that takes them (a ResNet) is
built with the preset's strides (VFS Sec. 4.1: res4 at stride 8) and padding mode (CRW: reflect).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from correlearn.eval.features import FeatureFn, dense_feature_fn
from correlearn.eval.label_prop_config import LabelPropConfig
from correlearn.eval.protocol_presets import propagation_overrides
from correlearn.models import backbone_info
from correlearn.models.io import load_backbone, read_backbone_json
from correlearn.train.distributed import resolve_device

Preset = Literal["auto", "vfs_resnet", "crw_resnet", "dino_vit", "siammae_vit"]

#: The preset a method's checkpoints are evaluated with under ``auto`` (its paper's protocol), by
#: the ``method`` of ``backbone.json``: a methods-registry name or ``import:<format>``. A method not
#: listed gets its backbone's default preset.
METHOD_PRESETS: dict[str, str] = {
    "siammae": "siammae_vit",  # CropMAE's SiamMAE evaluation
    "cropmae": "siammae_vit",  # the same: CropMAE's downstreams/propagation settings
    "import:crw": "crw_resnet",  # ajabri/videowalk code/test.py
}


def choose_preset(preset: str, spec: dict[str, Any]) -> str:
    """``preset`` itself, or for ``auto`` the protocol of the checkpoint's backbone and method.

    The method's preset (:data:`METHOD_PRESETS`) when it suits the backbone, else the backbone's
    default (:func:`~correlearn.models.backbone_info`).

    Args:
        preset: ``auto`` or a preset name.
        spec: the checkpoint's ``backbone.json`` (``backbone``, ``method``).

    Raises:
        ValueError: ``auto`` with a backbone that is not registered.
    """
    if preset != "auto":
        return preset
    info = backbone_info(spec["backbone"])
    wanted = METHOD_PRESETS.get(spec.get("method") or "")
    return wanted if wanted in info.lp_presets else info.default_preset


def _constructor_overrides(lp: LabelPropConfig, spec: dict[str, Any]) -> dict[str, Any]:
    """The preset's strides and padding mode, for a backbone that takes them (a ResNet)."""
    options = backbone_info(spec["backbone"]).options
    out: dict[str, Any] = {}
    if lp.strides and "strides" in options:
        out["strides"] = tuple(lp.strides)
    if lp.padding_mode != "zeros" and "padding_mode" in options:
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
    spec = read_backbone_json(checkpoint)
    name = choose_preset(preset, spec)
    lp = LabelPropConfig.preset(name, **{**propagation_overrides(protocol, name), **params})
    backbone = load_backbone(checkpoint, **_constructor_overrides(lp, spec))
    dev = resolve_device(device)
    meta = {"preset": name, "label_propagation": lp.model_dump(mode="json"), **spec}
    return DenseSetup(dense_feature_fn(backbone.to(dev), lp.layer, precision), lp, meta, dev)
