"""SiamMAE: Siamese Masked Autoencoders (Gupta, Wu, Deng & Fei-Fei 2023).

Two frames f1, f2 of one video, a gap in [4, 48] frames at 30 fps apart (Sec. 4.1, Table 3b), get
the same random-resized crop (scale 0.5..1) and flip, no colour jitter (Table 3a). A siamese ViT
encodes each frame on its own (shared weights, CLS token, MAE's fixed 2-D sin-cos position
embedding, no temporal one; Sec. 3 "Patchify", "Encoder"): f1 whole, f2 with 95% of its patches
randomly dropped (asymmetric masking, Sec. 3 "Masking", Table 2d). The decoder (Sec. 3 "Decoder", Table 2b) projects both token sets,
fills f2's masked slots with a [MASK] token, adds fixed 2-D sin-cos position embeddings (MAE), and
then ``cross_self`` (default): each block cross-attends f2 -> f1, then self-attends among f2, then
an MLP; ``cross``: cross-attention and MLP only; ``joint``: plain blocks over [f1; f2]. It predicts
the per-patch normalised pixels of f2 and the loss is their MSE on masked patches only (MAE's
``norm_pix_loss``). Encoder and decoder sizes not given in the paper are MAE's (App. A: "we use the
parameters specified in the original implementation"): decoder width 512, depth 8, 16 heads.

Masking keeps ``n_keep = int(N (1 - ratio))`` patches, as MAE's ``random_masking``: at 224 px and
patch 16, N = 196 -> 9 kept, 187 masked (95.4%); at 96 px N = 36 -> 1 kept, 35 masked.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn
from torchvision.utils import make_grid

from correlearn.config import StrictModel
from correlearn.data.augment import denormalize, hflip, random_resized_crop, to_tchw
from correlearn.data.augment import normalize as normalize_img
from correlearn.data.frame_index import FrameSampler
from correlearn.losses.mae import masked_mse, norm_pix
from correlearn.methods.base import Method
from correlearn.methods.siammae_decoder import DecoderBlock
from correlearn.models import BackboneName, ViT, build_backbone, sincos_2d
from correlearn.models.patches import patchify, random_masking, unpatchify
from correlearn.pretext.metrics import mean_patch_prediction
from correlearn.train.config import OptimConfig, TrainConfig


class SiamMAEConfig(StrictModel):
    """SiamMAE defaults (paper Sec. 4.1, Tables 2-4; decoder sizes from MAE, App. A)."""

    backbone: BackboneName = "vit_small_patch16"
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    # Encoder position table: MAE's fixed 2-D sin-cos (models_mae.py, requires_grad=False), which
    # SiamMAE inherits; "learned" is timm's trainable table. The decoder's is always sin-cos.
    pos_embed: Literal["sincos", "learned"] = "sincos"
    sampler: FrameSampler = Field(default_factory=lambda: FrameSampler(kind="gap_pair"))
    image_size: int = Field(224, ge=16)
    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    mask_ratio: float = Field(0.95, ge=0.0, lt=1.0)  # on f2; f1 is never masked
    decoder: Literal["cross_self", "cross", "joint"] = "cross_self"
    decoder_dim: int = Field(512, ge=4)
    decoder_depth: int = Field(8, ge=1)
    decoder_heads: int = Field(16, ge=1)
    decoder_mlp_ratio: float = Field(4.0, gt=0)
    norm_pix_loss: bool = True
    repeated_sampling: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _check(self) -> SiamMAEConfig:
        if self.sampler.kind != "gap_pair":
            raise ValueError("SiamMAE samples frame pairs: sampler.kind must be gap_pair")
        if self.decoder_dim % 4 or self.decoder_dim % self.decoder_heads:
            raise ValueError("decoder_dim must be divisible by 4 and by decoder_heads")
        return self


class SiamMAE(Method):
    """SiamMAE: a siamese ViT encoder and a cross-attention decoder; no EMA target.

    Attributes:
        backbone: the siamese ViT encoder (evaluated and exported).
        decoder_embed, mask_token, blocks, decoder_norm, decoder_pred: the decoder.
    """

    pretext_metric = "recon_error"
    pretext_higher_is_better = False

    def __init__(self, cfg: SiamMAEConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SiamMAEConfig()
        self.backbone = build_backbone(cfg.backbone, **cfg.backbone_kwargs)
        if isinstance(self.backbone, ViT):
            self.backbone.set_pos_embed(cfg.pos_embed)
        self.patch_size = p = self.backbone.patch_size
        d = cfg.decoder_dim
        self.decoder_embed = nn.Linear(self.backbone.embed_dim, d)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        cross, self_attn = cfg.decoder != "joint", cfg.decoder != "cross"
        self.blocks = nn.ModuleList(
            DecoderBlock(d, cfg.decoder_heads, cfg.decoder_mlp_ratio, cross, self_attn)
            for _ in range(cfg.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(d)
        self.decoder_pred = nn.Linear(d, p * p * 3)
        # MAE's init of the decoder (xavier linears, unit LayerNorms, N(0, .02) mask token).
        for m in [self.decoder_embed, *self.blocks.modules(), self.decoder_norm, self.decoder_pred]:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def encode(self, f1, f2, gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Siamese encoding: f1 whole, f2 with ``mask_ratio`` of its patches dropped.

        Args:
            f1: (B, 3, S, S) normalised past frame (never masked).
            f2: (B, 3, S, S) normalised future frame.
            gen: generator of the mask (None: the global RNG, saved in checkpoints).

        Returns:
            ``"z1"`` (B, 1 + N, D), ``"z2"`` (B, 1 + n_keep, D), ``"mask"`` (B, N),
            ``"ids_restore"`` (B, N).
        """
        h, w = self.backbone.grid_size(f2.shape[-2], f2.shape[-1])
        keep, mask, ids_restore = random_masking(
            f2.shape[0], h * w, self.cfg.mask_ratio, gen, f2.device
        )
        z1 = self.backbone.forward_tokens(f1)
        z2 = self.backbone.forward_tokens(f2, keep)
        return {"z1": z1, "z2": z2, "mask": mask, "ids_restore": ids_restore}

    def decode(self, z1, z2, ids_restore, grid: tuple[int, int]) -> torch.Tensor:
        """Decode f2's full token set against f1 (Sec. 3 "Decoder") and predict every patch.

        Both frames' projected tokens get the same fixed sin-cos embedding of their grid
        position (CLS: zeros): the paper builds "the full set of tokens" per frame this way; the
        CropMAE re-implementation adds it to f2 only (f1's tokens carry the encoder's).

        Args:
            z1: (B, 1 + N, D) encoded f1.
            z2: (B, 1 + n_keep, D) encoded visible f2 tokens.
            ids_restore: (B, N) from :func:`random_masking`.
            grid: the patch grid (h, w), h * w = N.

        Returns:
            (B, N, p*p*3) predictions in target space (per-patch normalised pixels).
        """
        x1, x2 = self.decoder_embed(z1), self.decoder_embed(z2)
        b, n = ids_restore.shape
        fill = self.mask_token.to(x2.dtype).expand(b, n + 1 - x2.shape[1], -1)
        x2_ = torch.cat([x2[:, 1:], fill], dim=1)
        x2_ = torch.gather(x2_, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x2.shape[-1]))
        # Space only: no temporal embedding tells the frames apart (Sec. 3 "Patchify").
        pe = F.pad(sincos_2d(x1.shape[-1], *grid, x1.device), (0, 0, 1, 0)).to(x1)
        x1 = x1 + pe
        x2 = torch.cat([x2[:, :1], x2_], dim=1) + pe
        if self.cfg.decoder == "joint":
            x = torch.cat([x1, x2], dim=1)
            for blk in self.blocks:
                x = blk(x)
            x2 = x[:, x1.shape[1] :]
        else:
            for blk in self.blocks:
                x2 = blk(x2, x1)
        return self.decoder_pred(self.decoder_norm(x2))[:, 1:]

    def target(self, f2: torch.Tensor) -> torch.Tensor:
        """Regression target of f2: (B, N, p*p*3) patches, per-patch normalised if norm_pix_loss."""
        t = patchify(f2, self.patch_size)
        return norm_pix(t) if self.cfg.norm_pix_loss else t

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Masked-patch MSE of f2's reconstruction (Sec. 3 "Decoder").

        Args:
            batch: ``"f1"``, ``"f2"``: (B, 3, S, S) normalised past and future frames.

        Returns:
            ``{"loss": scalar}``.
        """
        out = self.reconstruct(batch)
        return {"loss": masked_mse(out["pred"], self.target(batch["f2"]), out["mask"])}

    def reconstruct(self, batch, gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Encode and decode one batch: ``"pred"`` (B, N, p*p*3) in target space, ``"mask"``."""
        f2 = batch["f2"]
        enc = self.encode(batch["f1"], f2, gen)
        grid = self.backbone.grid_size(f2.shape[-2], f2.shape[-1])
        pred = self.decode(enc["z1"], enc["z2"], enc["ids_restore"], grid)
        return {"pred": pred, "mask": enc["mask"]}

    def _heldout_mask(self, f2: torch.Tensor, i: int) -> torch.Tensor:
        """The fixed mask of held-out batch ``i``: (B, N), drawn from a generator seeded by i."""
        gen = torch.Generator(device=f2.device).manual_seed(i)
        n = self.backbone.grid_size(f2.shape[-2], f2.shape[-1])
        return random_masking(f2.shape[0], n[0] * n[1], self.cfg.mask_ratio, gen, f2.device)[1]

    @torch.no_grad()
    def pretext_metrics(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """The loss itself on held-out frame pairs: masked-patch error of f2 (Sec. 3 "Decoder").

        Each batch's mask comes from a generator seeded by its position, so every evaluation
        (and :meth:`pretext_baselines`) scores the same patches.

        Args:
            batches: ``f1``, ``f2`` (B, 3, S, S) held-out past and future frames.
        """
        errs = []
        for i, b in enumerate(batches):
            gen = torch.Generator(device=b["f2"].device).manual_seed(i)
            out = self.reconstruct(b, gen)
            errs.append(float(masked_mse(out["pred"].float(), self.target(b["f2"]), out["mask"])))
        return {"recon_error": float(np.mean(errs))}

    @torch.no_grad()
    def pretext_baselines(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, dict]:
        """Copy the co-located patch of the past frame f1; or predict each patch's own mean."""
        copy, mean = [], []
        for i, b in enumerate(batches):
            mask, target = self._heldout_mask(b["f2"], i), self.target(b["f2"])
            copy.append(float(masked_mse(self.target(b["f1"]), target, mask)))
            mean.append(float(masked_mse(mean_patch_prediction(target), target, mask)))
        return {
            "copy_past": {"recon_error": float(np.mean(copy))},
            "patch_mean": {"recon_error": float(np.mean(mean))},
        }

    @torch.no_grad()
    def pictures(self, batch, max_pairs: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
        """Paper Fig. 2 sheet, one row per pair: f1 | masked f2 | reconstruction | f2.

        The reconstruction pastes predicted patches into the masked slots and the true ones
        elsewhere; with ``norm_pix_loss`` predictions are de-normalised with each true patch's
        mean and std (they carry structure, not absolute colour).

        Returns:
            ``{"reconstruction": (H, W, 3) uint8}``.
        """
        f1, f2 = batch["f1"][:max_pairs].float(), batch["f2"][:max_pairs].float()
        gen = torch.Generator(device=f2.device).manual_seed(seed)
        out = self.reconstruct({"f1": f1, "f2": f2}, gen)
        p, (h, w) = self.patch_size, self.backbone.grid_size(f2.shape[-2], f2.shape[-1])
        true = patchify(f2, p)
        pred = out["pred"].float()
        if self.cfg.norm_pix_loss:
            pred = pred * (true.var(-1, keepdim=True) + 1e-6) ** 0.5 + true.mean(-1, keepdim=True)
        m = out["mask"].unsqueeze(-1)
        masked = unpatchify(true * (1 - m), p, h, w)
        recon = unpatchify(true * (1 - m) + pred * m, p, h, w)
        crop = f1[..., : h * p, : w * p], f2[..., : h * p, : w * p]
        rows = torch.stack([crop[0], masked, recon, crop[1]], dim=1).flatten(0, 1).cpu()
        grid = make_grid(denormalize(rows), nrow=4, padding=2, pad_value=255)
        return {"reconstruction": grid.permute(1, 2, 0).numpy()}


def build_siammae_batch(videos, video_ids, rng: np.random.Generator, cfg: SiamMAEConfig) -> dict:
    """Frame pairs with one shared crop and flip each (Sec. 4.1, Table 3a), repeated sampling.

    Every video contributes ``cfg.repeated_sampling`` independently drawn pairs (Hoffer et al.
    2020, as MAE-ST), each with its own gap (:func:`~correlearn.data.frame_index.gap_pair`, scaled
    by the video's fps) and crop.

    Args:
        videos: a :class:`~correlearn.data.readers.ShardedVideos`.
        video_ids: V row positions of usable videos; the batch has B = V * repeated_sampling pairs.
        rng: the random generator; the batch is a pure function of its state.
        cfg: the method config.

    Returns:
        ``"f1"``, ``"f2"`` (B, 3, S, S) float32 ImageNet-normalised, ``"frame_ids"`` (B, 2) long
        (f1's and f2's frame indices), ``"video_ids"`` (B,) long.
    """
    f1, f2, frame_ids, vids = [], [], [], []
    for vid in video_ids:
        for _ in range(cfg.repeated_sampling):
            ts = cfg.sampler.sample(int(videos.n_frames[vid]), float(videos.fps[vid]), rng)
            pair = to_tchw(videos.frames(int(vid), ts))  # (2, 3, H, W): one crop for both
            pair = random_resized_crop(pair, rng, cfg.image_size, cfg.crop_scale, cfg.crop_ratio)
            pair = hflip(pair, cfg.flip_p, rng)
            f1.append(pair[0])
            f2.append(pair[1])
            frame_ids.append(torch.as_tensor(ts, dtype=torch.long))
            vids.append(int(vid))
    return {
        "f1": normalize_img(torch.stack(f1)),
        "f2": normalize_img(torch.stack(f2)),
        "frame_ids": torch.stack(frame_ids),
        "video_ids": torch.tensor(vids, dtype=torch.long),
    }


def siammae_optim() -> OptimConfig:
    """The optimiser of SiamMAE pre-training (Table 4a, MAE's recipe).

    AdamW (0.9, 0.95), wd 0.05 (none on biases and norms, as MAE), lr 1.5e-4 x batch/256,
    cosine, 40 warm-up epochs.
    """
    return OptimConfig(
        name="adamw", base_lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05, warmup_epochs=40
    )


def siammae_train() -> TrainConfig:
    """The loop of SiamMAE pre-training (Table 4a): 400 effective epochs, batch 2048 pairs."""
    return TrainConfig(epochs=400, batch_size=2048)
