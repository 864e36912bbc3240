"""Fitting the SiamFC head (two 1x1 convs) on frozen res5 features: the ``train_siamfc_head`` loop.

The object-tracking protocol VFS follows (VINCE / SeCo; VFS ``train_siamfc.py`` with
``frozen_stages: 4, extra_conv: True``) learns only this head, on GOT-10k pairs, before OTB is
tracked. Pairs, augmentations, label maps, losses and the lr schedule are
:mod:`correlearn.eval.siamfc_train`; the batch of step ``s`` is drawn from
``numpy.random.default_rng([seed, s])``, so a run is a pure function of its config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.sources import DataError
from correlearn.eval import otb, siamfc_train
from correlearn.eval.features import frame_to_tensor
from correlearn.eval.object_tracking import SIAMFC, SiamHead

T = siamfc_train.TRAIN
Usable = list[tuple[otb.TrackSequence, np.ndarray]]


def default_out_scale(in_channels: int) -> float:
    """The response scale of the VFS SiamFC head for res5 features of ``in_channels`` channels.

    VFS ``projects/siamfc-pytorch``: ``out_scale`` 0.001 by default, and its README trains
    ResNet-50 with ``out_scale=0.00001 out_channels=2048``: the cross-correlation sums over four
    times the channels of ResNet-18's 512, at larger magnitudes.
    """
    return 1e-5 if in_channels >= 2048 else SIAMFC["out_scale"]


class TrainSiamFCHeadConfig(StrictModel):
    """Config of ``train_siamfc_head`` (defaults: VFS ``default_config_base.py``).

    Attributes:
        dataset: a ``layout: got10k`` (or ``otb``) dataset under ``datasets:``.
        exemplar_size: exemplar patch side (reference 120).
        instance_size: search patch side before the 2 x 8 px random shift (255).
        channels: output channels of each 1x1 conv; None keeps res5's width (VFS
            ``out_channels // reduction``; VINCE uses 256).
        out_scale: response scale; None takes the reference's value for the backbone's res5 width
            (:func:`default_out_scale`: VFS 1e-3, and 1e-5 for ResNet-50's 2048 channels).
        loss: ``focal`` (VFS) or ``balanced`` (VINCE, SiamFC).
        optimizer: ``adam`` (VFS) or ``sgd`` (momentum 0.9, VINCE).
        lr: initial learning rate (VFS 1e-3; VINCE 1e-2).
        ultimate_lr: learning rate after ``epochs`` epochs of exponential decay (1e-5).
        epochs: epochs of one pair per usable sequence (50).
        batch_size: pairs per step (VFS 8).
        r_pos: positive radius of the label map in search pixels (16).
        r_neg: radius of the 0.5 band (0: none).
        max_gap: most frames between exemplar and search (100).
        max_steps: stop after this many steps (CPU budgets); None runs the full schedule.
        seed: seed of the pair draws and of the head's initialisation.
        device: ``auto`` uses CUDA when present.
    """

    dataset: str = "got10k"
    exemplar_size: int = Field(SIAMFC["exemplar_size"], ge=16)
    instance_size: int = Field(SIAMFC["instance_size"], ge=32)
    channels: int | None = Field(None, ge=1)
    out_scale: float | None = Field(None, gt=0)
    loss: Literal["focal", "balanced"] = "focal"
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(T["lr"], gt=0)
    ultimate_lr: float = Field(T["ultimate_lr"], gt=0)
    epochs: int = Field(T["epochs"], ge=1)
    batch_size: int = Field(T["batch_size"], ge=1)
    r_pos: float = Field(T["r_pos"], ge=0)
    r_neg: float = Field(T["r_neg"], ge=0)
    max_gap: int = Field(T["max_gap"], ge=1)
    max_steps: int | None = Field(None, ge=1)
    seed: int = 0
    device: str = "auto"


def usable_sequences(seqs: list[otb.TrackSequence], skip: Callable[[str, str], None]) -> Usable:
    """The sequences with two frames that pass the pair filter, with those frames' indices.

    Args:
        seqs: the training sequences.
        skip: ``skip(name, reason)`` for each sequence left out.

    Raises:
        DataError: no sequence is usable.
    """
    out = []
    for s in seqs:
        with Image.open(s.frames[0]) as im:
            idx = siamfc_train.valid_frames(s, im.size)
        if len(idx) < 2:
            skip(s.name, f"{len(idx)} frame(s) pass the pair filter (box size, aspect, cover)")
        else:
            out.append((s, idx))
    if not out:
        raise DataError(f"no sequence of {len(seqs)} has two frames that pass the pair filter")
    return out


def pair_batch(
    rng: np.random.Generator, usable: Usable, cfg: TrainSiamFCHeadConfig, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random pairs: exemplars ``(B, 3, e, e)`` and searches ``(B, 3, s, s)``."""
    zs, xs = [], []
    for i in rng.integers(0, len(usable), cfg.batch_size):
        seq, idx = usable[int(i)]
        a, b = siamfc_train.sample_pair(rng, idx, cfg.max_gap)
        z, x = siamfc_train.pair_patches(
            rng,
            otb.read_rgb(seq.frames[a]),
            otb.read_rgb(seq.frames[b]),
            seq.boxes[a],
            seq.boxes[b],
            cfg.exemplar_size,
            cfg.instance_size,
            T,
        )
        zs.append(frame_to_tensor(z, device))
        xs.append(frame_to_tensor(x, device))
    return torch.cat(zs), torch.cat(xs)


def total_steps(cfg: TrainSiamFCHeadConfig, n_usable: int) -> tuple[int, int]:
    """``(steps, steps per epoch)``: ``epochs`` epochs of one pair per sequence, or ``max_steps``."""
    spe = max(1, n_usable // cfg.batch_size)
    return min(cfg.epochs * spe, cfg.max_steps or cfg.epochs * spe), spe


def fit_head(
    features: Callable[[torch.Tensor], torch.Tensor],
    in_channels: int,
    total_stride: int,
    usable: Usable,
    cfg: TrainSiamFCHeadConfig,
    device,
    log: Callable[[int, float], None] = lambda step, loss: None,
) -> tuple[SiamHead, list[tuple[int, float]]]:
    """Train a head on frozen features (the torch RNG is seeded with ``cfg.seed`` first).

    Args:
        features: frozen ``(B, 3, H, W) -> (B, C, h, w)`` res5 features.
        in_channels: C.
        total_stride: the features' stride (label maps are in response cells).
        usable: :func:`usable_sequences`.
        cfg: the training settings.
        device: where the head trains.
        log: called with ``(step, loss)`` after every step.

    Returns:
        The trained head and the ``(step, loss)`` history.
    """
    torch.manual_seed(cfg.seed)
    scale = cfg.out_scale or default_out_scale(in_channels)
    head = SiamHead(in_channels, cfg.channels or in_channels, True, scale)
    head = head.to(device).train()
    opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
    extra = {"momentum": 0.9} if cfg.optimizer == "sgd" else {}
    # Weight decay 0: the references apply it only when the backbone is trained.
    opt = opt_cls(head.parameters(), lr=cfg.lr, weight_decay=0.0, **extra)
    loss_fn = siamfc_train.focal_loss if cfg.loss == "focal" else siamfc_train.balanced_loss
    total, spe = total_steps(cfg, len(usable))
    history = []
    for step in range(total):
        rng = np.random.default_rng([cfg.seed, step])
        for g in opt.param_groups:
            g["lr"] = siamfc_train.exp_lr(step, spe, cfg.lr, cfg.ultimate_lr, cfg.epochs)
        z, x = pair_batch(rng, usable, cfg, device)
        with torch.no_grad():
            fz, fx = features(z), features(x)
        resp = head(fz, fx)
        labels = siamfc_train.logistic_labels(
            resp.shape[-2], resp.shape[-1], cfg.r_pos, cfg.r_neg, total_stride
        )
        target = torch.from_numpy(labels).to(device).expand_as(resp)
        loss = loss_fn(resp, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append((step, loss.item()))
        log(step, history[-1][1])
    return head, history
