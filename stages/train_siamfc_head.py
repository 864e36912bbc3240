"""Stage ``train_siamfc_head``: the SiamFC head (two 1x1 convs) trained on frozen res5 features.

The object-tracking protocol VFS follows (VINCE / SeCo; VFS ``train_siamfc.py`` with
``frozen_stages: 4, extra_conv: True``) learns only this head, on GOT-10k pairs, before OTB is
tracked. Its own data spec: ``datasets.<name>`` with ``layout: got10k`` (or ``otb``). The artifact
holds the backbone it was trained on (``backbone.pt``, ``backbone.json``) next to ``head.pt`` and
``head.json``, so it is the checkpoint ``eval_tracking`` takes.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Literal

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.sources import DataError
from correlearn.eval import otb, siamfc_train
from correlearn.eval.features import frame_to_tensor
from correlearn.eval.tracking import SIAMFC, SiamHead
from correlearn.models.io import BACKBONE_FILE, BACKBONE_SPEC
from correlearn.stage import StageContext, StageSpec
from correlearn.train.checkpoint import atomic_torch_save
from correlearn.train.distributed import resolve_device
from correlearn.viz.curves import plot_loss_curve
from stages.eval_datasets import EvalDatasetSpec, eval_root, fingerprint_files, get_eval_dataset
from stages.tracking_common import load_tracking_backbone, res5_features

T = siamfc_train.TRAIN


class TrainSiamFCHeadConfig(StrictModel):
    """Config of ``train_siamfc_head`` (defaults: VFS ``default_config_base.py``).

    Attributes:
        dataset: a ``layout: got10k`` (or ``otb``) dataset under ``datasets:``.
        exemplar_size: exemplar patch side (reference 120).
        instance_size: search patch side before the 2 x 8 px random shift (255).
        channels: output channels of each 1x1 conv; None keeps res5's width (VFS
            ``out_channels // reduction``; VINCE uses 256).
        out_scale: response scale (VFS: 0.001, "1e-5 for r50").
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
    out_scale: float = Field(SIAMFC["out_scale"], gt=0)
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


def _sequences(spec: EvalDatasetSpec, root) -> list[otb.TrackSequence]:
    if spec.layout == "otb":
        seqs = otb.read_otb(root, spec.videos)
    else:
        seqs = otb.read_got10k(root, spec.subset, spec.videos)
    return seqs[: spec.max_items]


def _resolve(cfg: TrainSiamFCHeadConfig, pipe) -> dict:
    specs = (pipe.raw.get("datasets") or {}).get(cfg.dataset) or {}
    layout = "otb" if specs.get("layout") == "otb" else "got10k"
    spec = get_eval_dataset(pipe, cfg.dataset, layout)
    root = eval_root(spec, pipe.base_dir)
    files = []
    for s in _sequences(spec, root):
        files += s.frames
    return {"source": fingerprint_files(spec, root, files)}


def _usable(ctx: StageContext, seqs) -> list[tuple[otb.TrackSequence, np.ndarray]]:
    out = []
    for s in seqs:
        with Image.open(s.frames[0]) as im:
            idx = siamfc_train.valid_frames(s, im.size)
        if len(idx) < 2:
            ctx.skip(s.name, f"{len(idx)} frame(s) pass the pair filter (box size, aspect, cover)")
        else:
            out.append((s, idx))
    if not out:
        raise DataError(f"no sequence of {len(seqs)} has two frames that pass the pair filter")
    return out


def _batch(rng, usable, cfg: TrainSiamFCHeadConfig, device):
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


def _link_backbone(src, dst) -> None:
    # The head travels with the backbone it was trained on; a hard link costs no space.
    try:
        os.link(src / BACKBONE_FILE, dst / BACKBONE_FILE)
    except OSError:
        shutil.copy2(src / BACKBONE_FILE, dst / BACKBONE_FILE)
    shutil.copy2(src / BACKBONE_SPEC, dst / BACKBONE_SPEC)


def run(ctx: StageContext) -> dict:
    """Train the head, write ``head.pt``, ``head.json``, the backbone files and a loss curve."""
    cfg: TrainSiamFCHeadConfig = ctx.config
    spec = EvalDatasetSpec.model_validate(ctx.resolved["source"]["dataset"])
    usable = _usable(ctx, _sequences(spec, eval_root(spec, ctx.base_dir)))
    device = resolve_device(cfg.device)
    backbone, meta = load_tracking_backbone(ctx.input_path("checkpoint"), device)
    features = res5_features(backbone)
    torch.manual_seed(cfg.seed)
    in_ch = meta["channels"]
    head = SiamHead(in_ch, cfg.channels or in_ch, True, cfg.out_scale).to(device).train()
    opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
    extra = {"momentum": 0.9} if cfg.optimizer == "sgd" else {}
    # Weight decay 0: the references apply it only when the backbone is trained.
    opt = opt_cls(head.parameters(), lr=cfg.lr, weight_decay=0.0, **extra)
    loss_fn = siamfc_train.focal_loss if cfg.loss == "focal" else siamfc_train.balanced_loss
    spe = max(1, len(usable) // cfg.batch_size)
    total = min(cfg.epochs * spe, cfg.max_steps or cfg.epochs * spe)
    ctx.info(f"{len(usable)} sequences, {total} steps of {cfg.batch_size} pairs ({device})")
    history = []
    for step in range(total):
        rng = np.random.default_rng([cfg.seed, step])
        for g in opt.param_groups:
            g["lr"] = siamfc_train.exp_lr(step, spe, cfg.lr, cfg.ultimate_lr, cfg.epochs)
        z, x = _batch(rng, usable, cfg, device)
        with torch.no_grad():
            fz, fx = features(z), features(x)
        resp = head(fz, fx)
        labels = siamfc_train.logistic_labels(
            resp.shape[-2], resp.shape[-1], cfg.r_pos, cfg.r_neg, meta["total_stride"]
        )
        target = torch.from_numpy(labels).to(device).expand_as(resp)
        loss = loss_fn(resp, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append((step, loss.item()))
        ctx.log_metrics({"loss": history[-1][1]}, step=step)
    atomic_torch_save(head.state_dict(), ctx.out_dir / "head.pt")
    info = {"in_channels": in_ch, "channels": cfg.channels or in_ch, "convs": True}
    info.update(out_scale=cfg.out_scale, exemplar_size=cfg.exemplar_size, steps=total)
    (ctx.out_dir / "head.json").write_text(json.dumps(info, indent=2))
    _link_backbone(ctx.input_path("checkpoint"), ctx.out_dir)
    plot_loss_curve(history, ctx.out_dir / "loss.png", "SiamFC head")
    ctx.picture(ctx.out_dir / "loss.png")
    ctx.count("sequences", len(usable))
    ctx.count("steps", total)
    return {**meta, "head": info, "final_loss": history[-1][1]}


STAGE = StageSpec(
    name="train_siamfc_head",
    version=1,
    config_model=TrainSiamFCHeadConfig,
    run=run,
    inputs={"checkpoint": "pretrain_image"},
    resolve=_resolve,
    description="SiamFC head (1x1 convs) on frozen res5, GOT-10k pairs",
)
