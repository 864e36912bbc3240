"""What the tracking protocol runs on a checkpoint: its frozen backbone and the SiamFC head files.

VFS Sec. 4.1 (the VINCE / SeCo protocol): the ResNet runs with the strides of res4/res5 removed
and dilations 2 and 4, so res5 has stride 8 (:func:`load_tracking_backbone`); the SiamFC head
(:class:`~correlearn.eval.object_tracking.SiamHead`) is trained on its frozen res5 by
``train_siamfc_head``, whose artifact holds ``head.pt`` and ``head.json`` (:func:`write_head`)
next to the backbone it was trained on (:func:`link_backbone`), and is read back by
``eval_tracking`` (:func:`tracking_head`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Literal

import torch

from correlearn.config import ConfigError
from correlearn.eval.object_tracking import RESNET_DILATIONS, RESNET_STRIDES, SiamHead
from correlearn.models import backbone_info
from correlearn.models.io import BACKBONE_FILE, BACKBONE_JSON, load_backbone, read_backbone_json
from correlearn.train.checkpoint import atomic_torch_save

HEAD_FILE = "head.pt"
HEAD_INFO = "head.json"


def load_tracking_backbone(folder: Path, device) -> tuple[torch.nn.Module, dict]:
    """The checkpoint's backbone, frozen, as the tracking protocol runs it.

    A backbone that takes strides and dilations (a ResNet) gets res4/res5 strides removed and
    dilations 2 and 4 (VFS Sec. 4.1), so res5 has stride 8; one with a single dense map (a ViT, not
    part of the protocol) gives its patch tokens at the patch stride.

    Returns:
        ``(backbone in eval mode on device, {"backbone", "channels", "total_stride"})``.
    """
    spec = read_backbone_json(folder)
    options = backbone_info(spec["backbone"]).options
    dilated = {"strides", "dilations"} <= options
    kw = {"strides": RESNET_STRIDES, "dilations": RESNET_DILATIONS} if dilated else {}
    backbone = load_backbone(folder, **kw).to(device).eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    layer = backbone.info.dense_layer("res5")
    meta = {"backbone": spec["backbone"], "channels": int(backbone.dense_dim(layer))}
    meta["total_stride"] = int(backbone.dense_stride(layer))
    return backbone, meta


def res5_features(backbone: torch.nn.Module):
    """``fn(x: (B, 3, H, W)) -> (B, C, h, w)``: raw (not normalised) res5, as SiamFC correlates.

    A backbone with a single dense map (a ViT) gives that map.
    """
    layer = backbone.info.dense_layer("res5")

    def fn(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return backbone.dense(x, layer).float()

    return fn


def write_head(head: SiamHead, info: dict[str, Any], out_dir: Path) -> None:
    """Write a trained head: ``head.pt`` (its weights) and ``head.json`` (``info``).

    ``info`` holds ``in_channels``, ``channels``, ``out_scale`` and ``exemplar_size`` (what
    :func:`tracking_head` rebuilds the head and the tracker with) and any further facts.
    """
    atomic_torch_save(head.state_dict(), out_dir / HEAD_FILE)
    (out_dir / HEAD_INFO).write_text(json.dumps(info, indent=2))


def tracking_head(
    ckpt: Path, head: Literal["trained", "none"], params: dict[str, Any], channels: int, device
) -> tuple[SiamHead, dict[str, Any]]:
    """The head to track with, and the tracker parameters it implies.

    Args:
        ckpt: the checkpoint artifact.
        head: ``trained`` (the checkpoint's ``head.pt``) or ``none`` (plain xcorr of
            ``channels``-channel features, scaled by ``params["out_scale"]``).
        params: the SiamFC parameters of the config.
        channels: the backbone's feature channels.
        device: where the head runs.

    Returns:
        ``(head on device, params)``; a trained head's ``exemplar_size`` and ``out_scale`` win.

    Raises:
        ConfigError: ``head: trained`` on a checkpoint without ``head.pt``.
    """
    params = dict(params)
    if head == "none":
        return SiamHead(channels, channels, False, params["out_scale"]).to(device), params
    if not (ckpt / HEAD_FILE).is_file():
        raise ConfigError(
            f"eval_tracking.head: trained, but checkpoint {ckpt} has no head.pt; run "
            "train_siamfc_head on it (its artifact is the checkpoint) or set head: none"
        )
    info = json.loads((ckpt / HEAD_INFO).read_text())
    net = SiamHead(info["in_channels"], info["channels"], True, info["out_scale"])
    net.load_state_dict(torch.load(ckpt / HEAD_FILE, map_location="cpu", weights_only=True))
    params.update(exemplar_size=info["exemplar_size"], out_scale=info["out_scale"])
    return net.to(device), params


def link_backbone(src: Path, dst: Path) -> None:
    """Put the backbone files of checkpoint ``src`` into ``dst`` (hard link, else a copy)."""
    # The head travels with the backbone it was trained on; a hard link costs no space.
    try:
        os.link(src / BACKBONE_FILE, dst / BACKBONE_FILE)
    except OSError:
        shutil.copy2(src / BACKBONE_FILE, dst / BACKBONE_FILE)
    shutil.copy2(src / BACKBONE_JSON, dst / BACKBONE_JSON)
