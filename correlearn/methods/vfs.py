"""VFS: Video Frame-level Similarity (Xu & Wang 2021), with and without negative pairs.

n frames of one video are sampled (distant sampling by default, Sec. 3.2 "Temporal Sampling"),
each cropped and flipped on its own (Sec. 3.2 "Data Augmentation", Table 2), and their frame-level
embeddings are pulled together (Sec. 3.2 "Learning Objectives", Fig. 2):

- without negatives (default, Table 5): SimSiam, eq. 5, 2 - 2 p.sg(z), symmetrised, backbone and
  3-FC projector shared, 2-FC predictor on the predictor side (Sec. 4.1);
- with negatives: MoCo v2, eq. 4, InfoNCE at tau = 0.2 against a FIFO queue of K = 65536 keys from
  other videos, keys from a momentum encoder (eq. 2, m = 0.999), 2-layer projector (Sec. 4.1).

Pairs (Sec. 3.2): ``"halves"`` splits the n frames into two halves and uses all n/2 x n/2 cross
pairs (the paper's affinity; the ref code's ``intra_video`` loop over clip_len rolls covers the
same pairs with weight 1/clip_len each, so the loss value is the same); ``"roll"`` pairs sampled
frame i with frame (i + 1) mod n, n pairs weighted 1/n (a non-paper variant: consecutive samples).
All n frames share one backbone pass (the ref code runs each half separately: BN statistics per
half). The optimiser (SGD 0.05, batch 256, 200 epochs for R18) belongs to the stage config.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from pydantic import Field, model_validator
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from correlearn.config import StrictModel
from correlearn.data.augment import ViewAug, augment_view, denormalize, to_tchw
from correlearn.data.augment import normalize as normalize_img
from correlearn.data.frame_index import FrameSampler
from correlearn.losses.moco import moco_pair_loss
from correlearn.losses.simsiam import simsiam_pair_loss
from correlearn.methods.base import Method
from correlearn.models import BackboneName, build_backbone
from correlearn.models.heads import mlp, simsiam_predictor, simsiam_projector
from correlearn.models.key_queue import KeyQueue, all_gather
from correlearn.pretext.metrics import symmetric_retrieval
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.schedules import ema_tau


class VFSConfig(StrictModel):
    """VFS defaults: R18, distant n = 8, halves, no colour aug, no negatives (paper Sec. 4.1)."""

    backbone: BackboneName = "resnet18"
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    # None -> the backbone width: R18 512 (ref code projector 512-512-512, predictor 512-128-512),
    # R50 2048 (2048-2048-2048, 2048-512-2048); the predictor bottleneck is a quarter of it.
    proj_dim: int | None = Field(None, ge=1)
    pred_hidden_dim: int | None = Field(None, ge=1)
    # The projector's output BN: affine in the VFS ref code (SimSiamHead builds it with
    # build_norm1d(norm_cfg), default affine), non-affine in SimSiam's code (False).
    proj_last_bn_affine: bool = True
    sampler: FrameSampler = Field(default_factory=lambda: FrameSampler(kind="distant", n=8))
    pairing: Literal["halves", "roll"] = "halves"
    image_size: int = Field(224, ge=16)  # ref code: RandomResizedCrop then Resize(224, 224)
    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    color_aug: bool = False  # Table 2: helps OTB, hurts DAVIS by > 3 points
    negatives: bool = False
    moco_dim: int = Field(128, ge=1)
    temperature: float = Field(0.2, gt=0)
    queue_size: int = Field(65536, ge=1)
    momentum: float = Field(0.999, ge=0, le=1)
    # MoCo keeps m constant; "cosine" rises from ``momentum`` to 1 as BYOL's tau (ema_tau).
    ema_schedule: Literal["constant", "cosine"] = "constant"
    # Zero the last BN scale of every residual block (SimSiam and the VFS ref code).
    zero_init_residual: bool = True

    @model_validator(mode="after")
    def _check(self) -> VFSConfig:
        if self.sampler.kind == "gap_pair":
            raise ValueError("VFS samples n frames: sampler.kind must be distant or continuous")
        if self.sampler.n < 2 or (self.pairing == "halves" and self.sampler.n % 2):
            raise ValueError(f"pairing {self.pairing!r} needs an even n >= 2, got {self.sampler.n}")
        return self

    def view_aug(self) -> ViewAug:
        """Per-frame augmentation: RRC + flip, plus MoCo v2's colour ops when ``color_aug``."""
        colour = dict(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, jitter_p=0.8,
                      gray_p=0.2, blur_p=0.5)  # fmt: skip
        if not self.color_aug:
            colour = dict(jitter_p=0.0, gray_p=0.0, blur_p=0.0)
        return ViewAug(scale=self.crop_scale, ratio=self.crop_ratio, flip_p=self.flip_p,
                       solarize_p=0.0, **colour)  # fmt: skip


def vfs_pairs(n: int, pairing: str) -> list[tuple[int, int]]:
    """Frame pairs of one video (Sec. 3.2 "multiple pairs"): halves -> (n/2)^2, roll -> n."""
    if pairing == "halves":
        return [(a, b) for a in range(n // 2) for b in range(n // 2, n)]
    return [(i, (i + 1) % n) for i in range(n)]


class VFS(Method):
    """VFS: SimSiam over frame pairs, or MoCo v2 with a momentum encoder and a key queue.

    Attributes:
        backbone: the ResNet, (B, 3, S, S) -> (B, out_dim); evaluated and exported.
        projector: SimSiam 3-FC (BN) or MoCo v2 2-FC projector.
        predictor: SimSiam 2-FC bottleneck (no negatives only).
        target_backbone, target_projector, queue: MoCo's momentum encoder and negative bank.
    """

    pretext_metric = "video_retrieval_top1"

    def __init__(self, cfg: VFSConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or VFSConfig()
        self.pairs = vfs_pairs(cfg.sampler.n, cfg.pairing)
        self.backbone = build_backbone(cfg.backbone, **cfg.backbone_kwargs)
        if cfg.zero_init_residual:
            for m in self.backbone.modules():
                if isinstance(m, BasicBlock | Bottleneck):
                    nn.init.zeros_(m.bn2.weight if isinstance(m, BasicBlock) else m.bn3.weight)
        width = self.backbone.out_dim
        if not cfg.negatives:
            dim = cfg.proj_dim or width
            self.projector = simsiam_projector(width, dim, cfg.proj_last_bn_affine)
            self.predictor = simsiam_predictor(dim, cfg.pred_hidden_dim or dim // 4)
            return
        self.projector = mlp(width, width, cfg.moco_dim, hidden_bn=False)
        self.target_backbone = copy.deepcopy(self.backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in [*self.target_backbone.parameters(), *self.target_projector.parameters()]:
            p.requires_grad_(False)
        self.queue = KeyQueue(cfg.queue_size, cfg.moco_dim)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss of one batch over the frame pairs of each video.

        Args:
            batch: ``"frames"``: (B, n, 3, S, S) normalised frames of B videos, in temporal order.

        Returns:
            ``"loss"``; with negatives also ``"nce_acc"`` (positive ranked first).
        """
        frames = batch["frames"]
        b, n = frames.shape[:2]
        x = frames.flatten(0, 1)
        z = self.projector(self.backbone(x))
        if not self.cfg.negatives:
            p = self.predictor(z)
            return {"loss": simsiam_pair_loss(p.view(b, n, -1), z.view(b, n, -1), self.pairs)}
        with torch.no_grad():
            k = F.normalize(self.target_projector(self.target_backbone(x)), dim=1)
        # MoCo's logits read a snapshot of the queue: enqueueing mutates it before backward.
        negs = self.queue.keys.clone()
        loss, acc = moco_pair_loss(
            z.view(b, n, -1), k.view(b, n, -1), negs, self.pairs, self.cfg.temperature
        )
        self.queue.enqueue(all_gather(k.float()))
        return {"loss": loss, "nce_acc": acc.detach()}

    @torch.no_grad()
    def pretext_metrics(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Cross-frame video retrieval top-1 on held-out videos (the task of Sec. 3, as retrieval).

        For each positive slot pair (a, b) of the sampler, frame a of every held-out video
        retrieves frame b of the same video among frame b of all held-out videos (distant frames,
        drawn by the training sampler): SimSiam's prediction against the projection, or MoCo's
        query against the momentum key. Each batch is one draw of every held-out video.
        Uncentred: a gallery of a few videos gives too noisy a mean to subtract (centred, the
        inits of the demo's six videos score 0.078 and 0.197 around a chance of 0.167).

        Args:
            batches: ``frames`` (V, n, 3, S, S) of the V held-out videos.
        """
        scores = []
        for b in batches:
            # Every frame is embedded once and each slot pair reads its rows: a frame sits in
            # n/2 pairs, and embedding it per pair made this metric the demo's slowest.
            p, z = self._predictions_and_targets(b["frames"])
            scores += [
                symmetric_retrieval(p[:, i], z[:, i], p[:, j], z[:, j], center=False)
                for i, j in self.pairs
            ]
        return {"video_retrieval_top1": float(np.mean(scores))}

    def _predictions_and_targets(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(V, n, 3, S, S) frames -> (V, n, D) predictions and target projections.

        SimSiam: p = predictor(projector(backbone(x))) against z = projector(backbone(x)); MoCo:
        the query projection against the momentum encoder's key.
        """
        v, n = frames.shape[:2]
        flat = frames.flatten(0, 1)
        if self.cfg.negatives:
            p = self.projector(self.backbone(flat))
            z = self.target_projector(self.target_backbone(flat))
        else:
            z = self.projector(self.backbone(flat))
            p = self.predictor(z)
        return p.view(v, n, -1), z.view(v, n, -1)

    def pretext_baselines(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, dict]:
        """Chance: 1/V for V held-out videos."""
        return {"chance": {"video_retrieval_top1": 1.0 / len(batches[0]["frames"])}}

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """MoCo's momentum encoder follows backbone and projector (eq. 2); none for SimSiam."""
        if not self.cfg.negatives:
            return []
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]

    def ema_momentum(self, step: int, total_steps: int) -> float:
        """The m of eq. 2: ``cfg.momentum`` throughout (MoCo), or its cosine rise to 1 (``cosine``)."""
        if self.cfg.ema_schedule == "constant":
            return self.cfg.momentum
        return ema_tau(step, total_steps, self.cfg.momentum)

    @torch.no_grad()
    def pictures(
        self, batch: dict[str, torch.Tensor], max_videos: int = 4
    ) -> dict[str, np.ndarray]:
        """The sampled frames with their pairing: one row per video, frames in temporal order.

        Each frame is labelled with its slot and frame index. Halves: orange bar (first half) or
        blue bar (second half), every orange-blue pair is positive; roll: ``#i>j`` names the
        partner.

        Returns:
            ``{"frames": (H, W, 3) uint8}``.
        """
        frames = batch["frames"][:max_videos].detach().float().cpu()
        v, n, _, s, _ = frames.shape
        ids = batch.get("frame_ids")
        imgs = denormalize(frames.flatten(0, 1)).permute(0, 2, 3, 1).numpy()
        band, pad = 14, 2
        sheet = Image.new("RGB", (n * (s + pad) + pad, v * (s + band + pad) + pad), "white")
        draw = ImageDraw.Draw(sheet)
        for r in range(v):
            for i in range(n):
                x, y = pad + i * (s + pad), pad + r * (s + band + pad)
                sheet.paste(Image.fromarray(imgs[r * n + i]), (x, y + band))
                colour = (230, 140, 20) if i < n // 2 else (40, 100, 220)
                label = f"#{i}"
                if self.cfg.pairing == "roll":
                    colour, label = (120, 120, 120), f"#{i}>{(i + 1) % n}"
                if ids is not None:
                    label += f" t{int(ids[r, i])}"
                draw.rectangle([x, y, x + s - 1, y + 3], fill=colour)
                draw.text((x + 1, y + 3), label, fill=(0, 0, 0))
        return {"frames": np.asarray(sheet)}


def build_vfs_batch(videos, video_ids, rng: np.random.Generator, cfg: VFSConfig) -> dict:
    """Sample n frames per video (Sec. 3.2) and crop/flip/(colour) each independently (Table 2).

    Args:
        videos: a :class:`~correlearn.data.readers.ShardedVideos`.
        video_ids: B row positions of usable videos (long enough for ``cfg.sampler``).
        rng: the random generator; the batch is a pure function of its state.
        cfg: the method config.

    Returns:
        ``"frames"`` (B, n, 3, S, S) float32 ImageNet-normalised, ``"frame_ids"`` (B, n) long,
        ``"video_ids"`` (B,) long.
    """
    aug = cfg.view_aug()
    out, frame_ids = [], []
    for vid in video_ids:
        ts = cfg.sampler.sample(int(videos.n_frames[vid]), float(videos.fps[vid]), rng)
        clip = to_tchw(videos.frames(int(vid), ts))
        out.append(torch.stack([augment_view(f, rng, cfg.image_size, aug) for f in clip]))
        frame_ids.append(torch.as_tensor(ts, dtype=torch.long))
    return {
        "frames": normalize_img(torch.stack(out)),
        "frame_ids": torch.stack(frame_ids),
        "video_ids": torch.as_tensor(np.asarray(video_ids), dtype=torch.long),
    }


def vfs_optim() -> OptimConfig:
    """The optimiser of VFS pre-training (Sec. 4.1): SGD lr 0.05 at batch 256, cosine, no warm-up.

    Momentum 0.9, wd 1e-4; the ref code's mmcv SGD has no paramwise options, so biases and BN
    parameters are decayed too.
    """
    return OptimConfig(
        name="sgd",
        base_lr=0.05,
        weight_decay=1e-4,
        momentum=0.9,
        warmup_epochs=0,
        exclude_bias_norm=False,
    )


def vfs_train() -> TrainConfig:
    """The loop of VFS pre-training (Sec. 4.1): ResNet-18's 200 epochs, batch 256 videos."""
    return TrainConfig(epochs=200, batch_size=256)
