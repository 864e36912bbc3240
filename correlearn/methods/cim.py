"""CIM: Correlational Image Modeling (Li, Xie & Loy, CVPR 2023), crop-and-correlate pre-training.

The online encoder f_theta encodes the exemplars, an EMA target f_xi the context (eq. 2-3); a
lightweight decoder with one cross-attention layer (context queries, exemplar keys/values, eq. 4-5)
and a linear predictor (eq. 6) predicts each exemplar's correlation map over the context, trained
with cross-entropy (eq. 7). Pairs come from :mod:`correlearn.data.cim_pairs`, the decoder from
:mod:`correlearn.methods.cim_decoder`, the losses from :mod:`correlearn.losses.cim`.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torchvision.utils import make_grid

from correlearn.config import StrictModel
from correlearn.data.augment import denormalize
from correlearn.data.cim_pairs import CIMPairConfig
from correlearn.losses.cim import correlation_loss, map_iou
from correlearn.methods.base import Method
from correlearn.methods.cim_decoder import CorrelationDecoder
from correlearn.models import BackboneName, ViT, build_backbone
from correlearn.pretext.metrics import centre_prior, peak_in_box, thresholded_iou
from correlearn.train.config import OptimConfig, TrainConfig


class CIMConfig(StrictModel):
    """CIM method config: paper defaults (Sec. 3.2, 4.1) and ref-code details where it is silent.

    Attributes:
        backbone: encoder architecture (paper ablations: ViT-B/16; ResNet-50 in Table 6).
        backbone_kwargs: passed to ``build_backbone``.
        base_tau: EMA decay at step 0, rising to 1 on a cosine (eq. 3; ref code 0.99).
        bootstrap: Table 2. ``online_exemplar_target_context``: theta encodes exemplars, the EMA
            xi the context (best); ``shared``: one encoder, no EMA; ``reverse`` (xi -> theta):
            the EMA target encodes the exemplars and the online encoder the context.
        decoder_dim: decoder width (Fig. 4d: 512).
        decoder_depth: cross-attention layers (Fig. 4c: 1 is best).
        decoder_heads: attention heads (ref code ``decoder_num_heads=16``).
        mlp_ratio: hidden width of the decoder MLP / decoder_dim (ref code 4).
        correlation: Fig. 4a. ``cross_attention`` (eq. 4, global) or ``conv``: SiamFC/SiamRPN++
            depthwise correlation, the exemplar's feature map as kernels slid over the context.
        loss: Table 3: ``ce`` (eq. 7, best), ``balanced_ce``, ``mse``, ``focal``.
        exemplar_reduction: ``sum`` over exemplars of the per-exemplar mean loss (ref code:
            ``loss += CrossEntropyLoss()(pred_e, mask_e)``; eq. 7 defines one map only) or ``mean``.
        focal_alpha: alpha of the focal loss.
        focal_gamma: gamma of the focal loss.
        align_corners: of the logit upsampling. False puts token centres at patch centres; the
            ref code's ``nn.Upsample(align_corners=True)`` stretches them to the border pixels.
        freeze_patch_embed: ViT only, fix the random patch projection (the ref code's
            ``stop_grad_conv=True``, MoCo v3's trick; the paper does not mention it).
        pos_embed: ViT only, the encoder's position table: ``sincos``, MAE's fixed 2-D sin-cos
            (the ref code's ``pos_embed``, ``requires_grad=False``, ``get_2d_sincos_pos_embed``),
            or ``learned`` (timm's trainable table). Ignored for ResNets.
        pair: exemplar-context pair generation.
    """

    backbone: BackboneName = "vit_base_patch16"
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    base_tau: float = Field(0.99, ge=0.0, le=1.0)
    bootstrap: Literal["online_exemplar_target_context", "shared", "reverse"] = (
        "online_exemplar_target_context"
    )
    decoder_dim: int = Field(512, ge=1)
    decoder_depth: int = Field(1, ge=1)
    decoder_heads: int = Field(16, ge=1)
    mlp_ratio: float = Field(4.0, gt=0.0)
    correlation: Literal["cross_attention", "conv"] = "cross_attention"
    loss: Literal["ce", "balanced_ce", "mse", "focal"] = "ce"
    exemplar_reduction: Literal["sum", "mean"] = "sum"
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    align_corners: bool = False
    freeze_patch_embed: bool = False
    pos_embed: Literal["sincos", "learned"] = "sincos"
    pair: CIMPairConfig = Field(default_factory=CIMPairConfig)


class CIM(Method):
    """Correlational Image Modeling: online encoder, EMA target encoder, correlation decoder.

    Args:
        cfg: the method config; default :class:`CIMConfig()`.

    Attributes:
        backbone: online encoder f_theta (evaluated and exported).
        target_backbone: EMA encoder f_xi (None for ``bootstrap="shared"``); never gets gradients.
        decoder: :class:`~correlearn.methods.cim_decoder.CorrelationDecoder`.
        base_tau: EMA decay at step 0.
    """

    pretext_metric = "peak_in_box"

    def __init__(self, cfg: CIMConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or CIMConfig()
        self.base_tau = cfg.base_tau
        self.backbone = build_backbone(cfg.backbone, **cfg.backbone_kwargs)
        if isinstance(self.backbone, ViT):
            self.backbone.set_pos_embed(cfg.pos_embed)
        if cfg.freeze_patch_embed:
            self.backbone.model.patch_embed.proj.requires_grad_(False)
        self.target_backbone = None
        if cfg.bootstrap != "shared":
            self.target_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.decoder = CorrelationDecoder(
            self.backbone.out_dim,
            cfg.decoder_dim,
            cfg.decoder_depth,
            cfg.decoder_heads,
            cfg.mlp_ratio,
            cfg.correlation,
        )

    def encode(
        self, context: torch.Tensor, exemplars: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 2: h_c and h_z as feature maps; all B * E exemplars go through in one pass.

        Args:
            context: (B, 3, m, m) normalised contexts.
            exemplars: (B, E, 3, n, n) normalised exemplars.

        Returns:
            (B, D, hc, wc) and (B * E, D, hz, wz) (ViT patch tokens / ResNet res5 cells).
        """
        flat = exemplars.flatten(0, 1)
        if self.cfg.bootstrap == "shared":
            return self.backbone.dense(context), self.backbone.dense(flat)
        if self.cfg.bootstrap == "reverse":
            with torch.no_grad():
                hz = self.target_backbone.dense(flat)
            return self.backbone.dense(context), hz
        with torch.no_grad():
            hc = self.target_backbone.dense(context)
        return hc, self.backbone.dense(flat)

    def forward_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Eq. 2-6 on a batch (``context``, ``exemplars``) -> (B, E, m, m) logits."""
        context, exemplars = batch["context"], batch["exemplars"]
        hc, hz = self.encode(context, exemplars)
        logits = self.decoder(hc, hz, tuple(context.shape[-2:]), self.cfg.align_corners)
        return logits.view(*exemplars.shape[:2], *logits.shape[-2:])

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """CIM loss of one batch (eq. 7 or a Table 3 alternative).

        Args:
            batch: ``context`` (B, 3, m, m), ``exemplars`` (B, E, 3, n, n) normalised floats and
                ``maps`` (B, E, m, m) in {0, 1}, as ``cim_pairs.build_cim_batch`` makes them.

        Returns:
            ``loss`` (back-propagated), ``loss_<cfg.loss>`` (same value, detached) and ``map_iou``
            (thresholded prediction vs ground truth, a monitor).
        """
        cfg = self.cfg
        logits, maps = self.forward_logits(batch).float(), batch["maps"]
        loss = correlation_loss(
            logits, maps, cfg.loss, cfg.exemplar_reduction, cfg.focal_alpha, cfg.focal_gamma
        )
        return {
            "loss": loss,
            f"loss_{cfg.loss}": loss.detach(),
            "map_iou": map_iou(logits.flatten(0, 1), maps.flatten(0, 1)),
        }

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """Eq. 3: the target encoder xi follows theta; none for ``bootstrap="shared"``."""
        if self.target_backbone is None:
            return []
        return [(self.backbone, self.target_backbone)]

    @torch.no_grad()
    def predict_maps(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Predicted correlation maps y_hat (eq. 6): (B, E, m, m) probabilities."""
        return torch.sigmoid(self.forward_logits(batch).float())

    @torch.no_grad()
    def pretext_metrics(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Exemplar localisation on held-out contexts (the task of eq. 6-7).

        ``peak_in_box``: share of exemplars whose predicted map peaks inside the ground-truth
        region; ``iou``: mean IoU of the map thresholded at 0.5 (CIM's decision level).

        Args:
            batches: ``context``, ``exemplars`` and ground-truth ``maps`` (B, E, m, m).
        """
        probs = torch.cat([self.predict_maps(b).flatten(0, 1) for b in batches])
        return _localisation(probs, torch.cat([b["maps"].flatten(0, 1) for b in batches]))

    def pretext_baselines(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, dict]:
        """The centre prior: a centred square of the mean ground-truth area."""
        maps = torch.cat([b["maps"].flatten(0, 1) for b in batches]).float()
        return {"centre_prior": _localisation(centre_prior(maps), maps)}

    @torch.no_grad()
    def pictures(self, batch: dict[str, torch.Tensor], max_rows: int = 8) -> dict[str, np.ndarray]:
        """Paper Fig. 5: rows of exemplar | context | ground-truth map | predicted map.

        Returns:
            ``{"cim_maps": (H, W, 3) uint8}``; up to two exemplars of each of the first contexts.
        """
        per_ctx = min(batch["maps"].shape[1], 2)
        # Only the pictured contexts go through the model: the loop passes a full training batch.
        batch = {k: batch[k][: -(-max_rows // per_ctx)] for k in ("context", "exemplars", "maps")}
        probs = self.predict_maps(batch).cpu()
        ctx, ex, maps = (batch[k].detach().float().cpu() for k in ("context", "exemplars", "maps"))
        m = tuple(ctx.shape[-2:])
        rows = [(i, j) for i in range(maps.shape[0]) for j in range(per_ctx)][:max_rows]
        tiles = []
        for i, j in rows:
            z = F.interpolate(ex[i, j][None], m, mode="bilinear", align_corners=False)[0]
            tiles += [denormalize(z), denormalize(ctx[i])]
            for mp in (maps[i, j], probs[i, j]):
                tiles.append((mp.clamp(0, 1) * 255).round().to(torch.uint8).expand(3, *m))
        grid = make_grid(torch.stack(tiles), nrow=4, padding=2, pad_value=255)
        return {"cim_maps": grid.permute(1, 2, 0).numpy()}


def _localisation(probs: torch.Tensor, maps: torch.Tensor) -> dict[str, float]:
    """Peak-in-box share and mean IoU of (N, m, m) predicted maps against their ground truth."""
    maps = maps.to(probs.device)
    return {
        "peak_in_box": float(peak_in_box(probs, maps).mean()),
        "iou": float(thresholded_iou(probs, maps).mean()),
    }


def cim_optim() -> OptimConfig:
    """The optimiser of CIM pre-training (ref code ``scripts/dist_pretrain.sh``).

    AdamW betas (0.9, 0.95), base lr 1.5e-4 x batch/256, wd 0.05 (none on biases and norms,
    timm's ``add_weight_decay``), 40 warm-up epochs, cosine, gradient clipping at norm 1.0.
    """
    return OptimConfig(
        name="adamw",
        base_lr=1.5e-4,
        weight_decay=0.05,
        betas=(0.9, 0.95),
        warmup_epochs=40,
        clip_grad=1.0,
    )


def cim_train() -> TrainConfig:
    """The loop of CIM pre-training: 300 epochs (Sec. 4.1), batch 4096.

    The ref code's batch is 256 per GPU x 2 accumulation steps x 8 GPUs = 4096 effective; here
    ``batch_size`` is per process, so split it over ``devices`` when scaling out.
    """
    return TrainConfig(epochs=300, batch_size=4096)
