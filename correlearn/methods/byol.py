"""BYOL (Grill et al. 2020): the image-level baseline and ORL's stage 1 (Xie et al. 2021, Sec. 3.1).

An online network (backbone f, projector g, predictor q) predicts the projection that an EMA target
network (backbone, projector) gives for the other view; the loss is the symmetrised normalised MSE
(BYOL eq. 2) and the target follows xi <- tau xi + (1 - tau) theta (BYOL Sec. 3.1), tau rising from
``base_tau`` = 0.99 to 1 (ORL Sec. 3.2).

Defaults are ORL stage 1's (ORL Sec. 3.2 "Network architecture"): ResNet-50, projector
2048 -> 4096 -> 256 and predictor 256 -> 4096 -> 256 with BN + ReLU in the hidden layer, 224 px
views augmented as BYOL Table 6. The optimiser (SGD, lr 0.2 x batch/256, wd 1e-4, momentum 0.9,
cosine, 4 warm-up epochs, 800 epochs) belongs to the training config, not to this one.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torchvision.utils import make_grid

from correlearn.config import IN_KEY_UNLESS_DEFAULT, StrictModel
from correlearn.data.augment import BYOL_VIEW1, BYOL_VIEW2, ViewAug, augment_view, denormalize
from correlearn.data.augment import normalize as normalize_img
from correlearn.losses.byol import byol_loss
from correlearn.methods.base import Method
from correlearn.models import BackboneName, build_backbone
from correlearn.models.heads import mlp
from correlearn.pretext.metrics import retrieval_chance, two_view_retrieval
from correlearn.train.config import OptimConfig, TrainConfig


def byol_optim() -> OptimConfig:
    """The optimiser of ORL's stages 1 (BYOL) and 3: ORL Sec. 4 "Implementation details".

    SGD, lr 0.2 x batch/256, wd 1e-4, momentum 0.9, cosine, 4 warm-up epochs. The reference
    configs (ORL ``configs/selfsup/orl/coco/stage{1,3}/r50_bs512_ep800.py``) give OpenSelfSup an
    SGD without ``paramwise_options``, so biases and BN parameters are decayed too
    (``exclude_bias_norm=False``; ``optim.exclude_bias_norm: true`` is the switch).
    """
    return OptimConfig(
        name="sgd",
        base_lr=0.2,
        weight_decay=1e-4,
        momentum=0.9,
        warmup_epochs=4,
        exclude_bias_norm=False,
    )


def byol_train() -> TrainConfig:
    """The loop of ORL's stages 1 and 3 (ORL Sec. 4): 800 epochs, batch 256.

    The paper uses 512 on 8 GPUs; the lr scales linearly with the batch.
    """
    return TrainConfig(epochs=800, batch_size=256)


class BYOLConfig(StrictModel):
    """BYOL method config; defaults are ORL stage 1 (ORL Sec. 3.2, BYOL Sec. 3.3 and Table 6)."""

    backbone: BackboneName = "resnet50"
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    proj_hidden_dim: int = 4096
    proj_dim: int = 256
    pred_hidden_dim: int = 4096
    base_tau: float = 0.99
    image_size: int = Field(224, ge=16)
    view1: ViewAug = Field(default_factory=lambda: BYOL_VIEW1.model_copy())
    view2: ViewAug = Field(default_factory=lambda: BYOL_VIEW2.model_copy())
    # Not in the papers: speed switches of the data path (docs/benchmarks.md). "reduced" decodes a
    # JPEG at 1/2, 1/4 or 1/8 by libjpeg's DCT scaling where the random-resized crop allows it,
    # with the same random draws; pixels then differ by a few grey levels from "full". "device"
    # decodes each batch's JPEGs in one call on the training device (nvJPEG on CUDA) and augments
    # them there, building batches in the training process (no loader workers); the same draws,
    # pixels as the decoder and the device's kernels give them.
    decode: Literal["full", "reduced", "device"] = Field(
        "full", json_schema_extra=IN_KEY_UNLESS_DEFAULT
    )


def view_pair_grid(a: torch.Tensor, b: torch.Tensor, max_images: int = 8) -> np.ndarray:
    """Contact sheet of view pairs: the first images of ``a`` in row 1, their partners below.

    Args:
        a: (B, 3, S, S) normalised views.
        b: (B, 3, S, S) their partners, row by row.
        max_images: columns of the sheet.

    Returns:
        (H, W, 3) uint8.
    """
    n = min(max_images, a.shape[0])
    views = torch.cat([a[:n], b[:n]]).detach().float().cpu()
    grid = make_grid(denormalize(views), nrow=n, padding=2, pad_value=255)
    return grid.permute(1, 2, 0).numpy()


class BYOL(Method):
    """BYOL: online backbone, projector and predictor; EMA target of backbone and projector.

    Args:
        cfg: the method config; default :class:`BYOLConfig()`.

    Attributes:
        backbone: online encoder f_theta (evaluated and exported).
        projector: online projector g_theta, (B, out_dim) -> (B, proj_dim).
        predictor: online predictor q_theta, (B, proj_dim) -> (B, proj_dim).
        target_backbone: EMA copy of ``backbone``; never receives gradients.
        target_projector: EMA copy of ``projector``.
        base_tau: the EMA decay at step 0.
    """

    pretext_metric = "retrieval_top1"

    def __init__(self, cfg: BYOLConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or BYOLConfig()
        self.base_tau = cfg.base_tau
        self.backbone = build_backbone(cfg.backbone, **cfg.backbone_kwargs)
        self.projector = mlp(self.backbone.out_dim, cfg.proj_hidden_dim, cfg.proj_dim)
        self.predictor = mlp(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim)
        # BYOL initialises the target as a copy of the online network (Sec. 3.1).
        self.target_backbone = copy.deepcopy(self.backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in self.target_parameters():
            p.requires_grad_(False)

    def target_parameters(self):
        """Parameters of the EMA target (backbone and projector)."""
        yield from self.target_backbone.parameters()
        yield from self.target_projector.parameters()

    def online(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Online projection and prediction: (B, 3, S, S) -> ((B, proj_dim), (B, proj_dim))."""
        z = self.projector(self.backbone(x))
        return z, self.predictor(z)

    @torch.no_grad()
    def target(self, x: torch.Tensor) -> torch.Tensor:
        """Target projection (no gradient): (B, 3, S, S) -> (B, proj_dim)."""
        return self.target_projector(self.target_backbone(x))

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Symmetrised BYOL loss of one batch (BYOL eq. 2 plus the swapped term; ORL L_image).

        Args:
            batch: ``"view1"``, ``"view2"``: (B, 3, S, S) normalised float views of the same images.

        Returns:
            ``"loss"`` (= L + L~, back-propagated), ``"loss_12"`` (view 1 predicts view 2's target)
            and ``"loss_21"``, all scalars.
        """
        v1, v2 = batch["view1"], batch["view2"]
        # Views go through separately so BatchNorm statistics are per view, as in the ORL ref code.
        _, p1 = self.online(v1)
        _, p2 = self.online(v2)
        z1, z2 = self.target(v1), self.target(v2)
        loss_12 = byol_loss(p1, z2)
        loss_21 = byol_loss(p2, z1)
        return {"loss": loss_12 + loss_21, "loss_12": loss_12.detach(), "loss_21": loss_21.detach()}

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """The target follows backbone and projector: xi <- tau xi + (1 - tau) theta (Sec. 3.1)."""
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised online projector output, ORL stage 2's kNN embedding (ORL ref code).

        Call ``eval()`` first so the projector's BatchNorm uses running statistics.

        Args:
            x: (B, 3, S, S) normalised images (ORL: resize 256, centre crop 224).

        Returns:
            (B, proj_dim) unit vectors.
        """
        return nn.functional.normalize(self.projector(self.backbone(x)), dim=-1)

    @torch.no_grad()
    def pretext_metrics(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Two-view retrieval top-1 on held-out images (the task of BYOL eq. 2, as retrieval).

        Args:
            batches: ``view1``/``view2`` (B, 3, S, S) of held-out images, as in training.
        """
        pairs = [(b["view1"], b["view2"]) for b in batches]
        top1 = two_view_retrieval(
            lambda x: self.online(x)[1], self.target, pairs, heldout_groups(batches)
        )
        return {"retrieval_top1": top1}

    def pretext_baselines(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, dict]:
        """Chance: the mean of 1/(gallery size) over the held-out images."""
        n = sum(len(b["view1"]) for b in batches)
        return {"chance": {"retrieval_top1": retrieval_chance(n, heldout_groups(batches))}}

    @torch.no_grad()
    def pictures(
        self, batch: dict[str, torch.Tensor], max_images: int = 8
    ) -> dict[str, np.ndarray]:
        """The two views of the first images: row 1 view 1, row 2 view 2.

        Returns:
            ``{"views": (H, W, 3) uint8}``.
        """
        return {"views": view_pair_grid(batch["view1"], batch["view2"], max_images)}


def build_byol_batch(
    samples: list[np.ndarray | torch.Tensor], rng: np.random.Generator, cfg: BYOLConfig
) -> dict[str, torch.Tensor]:
    """Make BYOL's two augmented views of each image (BYOL Table 6) and normalise them.

    Args:
        samples: B uint8 images, (H, W, 3) numpy or (3, H, W) tensors; sizes may differ.
        rng: the random generator; the batch is a pure function of its state.
        cfg: supplies ``image_size`` S and the ``view1``/``view2`` augmentation parameters.

    Returns:
        ``{"view1": (B, 3, S, S), "view2": (B, 3, S, S)}`` float32, ImageNet-normalised.
    """
    v1, v2 = [], []
    for img in samples:
        v1.append(augment_view(img, rng, cfg.image_size, cfg.view1))
        v2.append(augment_view(img, rng, cfg.image_size, cfg.view2))
    return {"view1": normalize_img(torch.stack(v1)), "view2": normalize_img(torch.stack(v2))}


def heldout_groups(batches: list[dict[str, torch.Tensor]]) -> torch.Tensor | None:
    """(N,) video of every held-out image over the batches, when the batches carry ``group``."""
    if not batches or "group" not in batches[0]:
        return None
    return torch.cat([b["group"] for b in batches])
