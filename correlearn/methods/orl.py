"""ORL stage 3: object-level BYOL on global views, intra-RoI and inter-RoI pairs (Xie et al. 2021).

Loss (ORL eq. 2): ``L = l1 L_image + l2 L_intra-RoI + l3 L_inter-RoI``, every term a symmetric BYOL
loss (ORL eq. 1 plus the swapped term, Sec. 3.1), all weights 1. Backbone and projector are shared
by the three branches; each branch has its own predictor (Sec. 3.2 "Network architecture"; reference
``openselfsup/models/orl.py``: ``global_head``, ``local_intra_head``, ``local_inter_head``). The EMA
target starts at tau = 0.99 (Sec. 3.2). Stage 3 starts from a random initialisation: the reference
config ``configs/selfsup/orl/coco/stage3/r50_bs512_ep800.py`` has ``pretrained=None``; stage 1 only
serves to mine the pairs.

Inputs (Sec. 3.1 "Stage 3", Sec. 3.2 "Image augmentations"): two 224 px BYOL views of the image;
a filtered RoI of the image and a jittered copy (:func:`correlearn.data.box_jitter.jitter_box`); a
random kNN neighbour, then a random stored RoI pair between the two images
(:mod:`correlearn.methods.orl_rois`). RoI crops are resized to 96 px "to take the place of the
random resized crop" and then get the global views' flip and colour augmentations (patch 1 with
view 1's parameters, patch 2 with view 2's, as the reference ``train_patch_pipeline1/2``), drawn
independently per crop.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from correlearn.config import StrictModel
from correlearn.data.augment import BYOL_VIEW1, BYOL_VIEW2, ViewAug, augment_view, normalize, to_chw
from correlearn.data.box_jitter import jitter_box
from correlearn.losses.byol import symmetric_byol_loss
from correlearn.methods.base import Method
from correlearn.methods.byol import heldout_groups, view_pair_grid
from correlearn.methods.orl_rois import RoIPairIndex, roi_patch
from correlearn.models import BackboneName, build_backbone
from correlearn.models.heads import mlp
from correlearn.pretext.metrics import retrieval_chance, two_view_retrieval

Branches = Literal["both", "intra", "inter"]
_LOCAL = {"both": ("intra", "inter"), "intra": ("intra",), "inter": ("inter",)}
_PAIRS = {"image": ("view1", "view2"), "intra": ("intra1", "intra2"), "inter": ("inter1", "inter2")}
_INPUTS = tuple(k for pair in _PAIRS.values() for k in pair)


class ORLConfig(StrictModel):
    """ORL stage-3 method config (ORL Sec. 3.1-3.2; Table 5a switch ``branches``).

    Attributes:
        branches: local branches next to the image-level one: ``both`` (ORL), ``intra`` or
            ``inter`` only (Table 5a).
        weight_image, weight_intra, weight_inter: lambda_1..3 of eq. 2.
        roi_size: side of the RoI patches (96).
        jitter_shift, jitter_area, jitter_aspect: intra-RoI jitter ranges (Sec. 3.1, footnote 3).
        jitter_mode: ``clip`` (clip to the image) or ``reject`` (reference ``aug_bbox``).
    """

    backbone: BackboneName = "resnet50"
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    proj_hidden_dim: int = 4096
    proj_dim: int = 256
    pred_hidden_dim: int = 4096
    base_tau: float = 0.99
    branches: Branches = "both"
    weight_image: float = 1.0
    weight_intra: float = 1.0
    weight_inter: float = 1.0
    image_size: int = Field(224, ge=16)
    roi_size: int = 96
    jitter_shift: float = 0.5
    jitter_area: tuple[float, float] = (0.5, 2.0)
    jitter_aspect: tuple[float, float] = (0.5, 2.0)
    jitter_mode: Literal["clip", "reject"] = "clip"
    view1: ViewAug = Field(default_factory=lambda: BYOL_VIEW1.model_copy())
    view2: ViewAug = Field(default_factory=lambda: BYOL_VIEW2.model_copy())


class ORL(Method):
    """ORL stage 3: BYOL's networks with one predictor per branch and an EMA target.

    Attributes:
        backbone, projector: shared online encoder and projector, (B, 3, S, S) -> (B, proj_dim).
        predictors: one predictor per active branch (``image``, ``intra``, ``inter``); a branch
            switched off has none, so it has no parameter that could miss a gradient under DDP.
        target_backbone, target_projector: EMA copies (no gradient).
    """

    pretext_metric = "roi_retrieval_top1"

    def __init__(self, cfg: ORLConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or ORLConfig()
        self.base_tau = cfg.base_tau
        self.branches = ("image", *_LOCAL[cfg.branches])
        self.backbone = build_backbone(cfg.backbone, **cfg.backbone_kwargs)
        self.projector = mlp(self.backbone.out_dim, cfg.proj_hidden_dim, cfg.proj_dim)
        self.predictors = nn.ModuleDict(
            {b: mlp(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim) for b in self.branches}
        )
        self.target_backbone = copy.deepcopy(self.backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in [*self.target_backbone.parameters(), *self.target_projector.parameters()]:
            p.requires_grad_(False)

    @torch.no_grad()
    def target(self, x: torch.Tensor) -> torch.Tensor:
        """Target projection: (B, 3, S, S) -> (B, proj_dim)."""
        return self.target_projector(self.target_backbone(x))

    def branch_loss(self, branch: str, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Symmetric BYOL loss of one branch (ORL eq. 1 + swapped term, Sec. 3.1).

        Each input goes through the networks on its own, so BatchNorm statistics are per view and
        per branch, as in the reference ``forward_train``.

        Args:
            branch: ``image``, ``intra`` or ``inter`` (selects the predictor).
            x1: (B, 3, S, S) normalised first views/patches.
            x2: (B, 3, S, S) their positives, row by row.

        Returns:
            Scalar in [0, 8].
        """
        pred = self.predictors[branch]
        p1 = pred(self.projector(self.backbone(x1)))
        p2 = pred(self.projector(self.backbone(x2)))
        return symmetric_byol_loss(p1, p2, self.target(x1), self.target(x2))

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """ORL eq. 2 on one batch.

        Args:
            batch: ``view1``/``view2`` (B, 3, S, S); ``intra1``/``intra2`` and ``inter1``/``inter2``
                (B, 3, R, R) for the active local branches (others are ignored).

        Returns:
            ``loss`` (weighted sum, back-propagated) and the unweighted ``loss_image`` and
            ``loss_intra`` / ``loss_inter`` of the active branches (detached).
        """
        out: dict[str, torch.Tensor] = {}
        total = 0.0
        for b in self.branches:
            loss = self.branch_loss(b, batch[_PAIRS[b][0]], batch[_PAIRS[b][1]])
            total = total + getattr(self.cfg, f"weight_{b}") * loss
            out[f"loss_{b}"] = loss.detach()
        return {"loss": total, **out}

    @torch.no_grad()
    def pretext_metrics(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """RoI-pair retrieval top-1 on held-out images (ORL eq. 1's task, as retrieval).

        The pairs are the held-out builder's: two jittered views of one object box per image
        (the intra pair), or the image views when the intra branch is off; ``image_top1`` is the
        image-level branch's two-view retrieval.
        """
        branch = "intra" if "intra" in self.branches else "image"
        a, b = _PAIRS[branch]
        pred = self.predictors[branch]
        roi = two_view_retrieval(
            lambda x: pred(self.projector(self.backbone(x))),
            self.target,
            [(bt[a], bt[b]) for bt in batches],
            heldout_groups(batches),
        )
        img_pred = self.predictors["image"]
        image = two_view_retrieval(
            lambda x: img_pred(self.projector(self.backbone(x))),
            self.target,
            [(bt["view1"], bt["view2"]) for bt in batches],
            heldout_groups(batches),
        )
        return {"roi_retrieval_top1": roi, "image_top1": image}

    def pretext_baselines(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, dict]:
        """Chance: the mean of 1/(gallery size) over the held-out boxes (one per image)."""
        chance = retrieval_chance(sum(len(b["view1"]) for b in batches), heldout_groups(batches))
        return {"chance": {"roi_retrieval_top1": chance, "image_top1": chance}}

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """Target backbone and projector follow the online ones (BYOL Sec. 3.1, ORL Sec. 3.2)."""
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]

    @torch.no_grad()
    def pictures(self, batch: dict[str, torch.Tensor], max_images: int = 8) -> dict[str, Any]:
        """Inputs of each branch: ``{"views"|"intra"|"inter": (H, W, 3) uint8}``, two rows each."""
        return {
            "views" if branch == "image" else branch: view_pair_grid(batch[a], batch[b], max_images)
            for branch, (a, b) in _PAIRS.items()
            if a in batch
        }


def _intra_pair(
    img: torch.Tensor, cand: np.ndarray, rng: np.random.Generator, cfg: ORLConfig
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """An intra-RoI pair (Sec. 3.1 Stage 3): a random filtered box and its jitter (footnote 3).

    Args:
        img: (3, H, W) uint8 image.
        cand: (K, 4) filtered xyxy RoIs of the image; none -> the whole frame.
        rng: the random generator.
        cfg: sizes, jitter ranges and the two views' augmentations.

    Returns:
        The two (3, R, R) uint8 patches and their (2, 4) boxes.
    """
    h, w = img.shape[-2:]
    cand = np.asarray(cand, dtype=np.float64).reshape(-1, 4)
    b1 = cand[int(rng.integers(len(cand)))] if len(cand) else np.array([0, 0, w, h], np.float64)
    b2 = jitter_box(
        b1, rng, w, h, cfg.jitter_shift, cfg.jitter_area, cfg.jitter_aspect, cfg.jitter_mode
    )
    p1 = roi_patch(img, b1, cfg.roi_size, cfg.view1, rng)
    return p1, roi_patch(img, b2, cfg.roi_size, cfg.view2, rng), np.stack([b1, b2])


def _inter_pair(
    images: Any,
    i: int,
    img: torch.Tensor,
    pairs: RoIPairIndex,
    rng: np.random.Generator,
    cfg: ORLConfig,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, int]:
    """An inter-RoI pair of image ``i`` (Sec. 3.1 Stage 3): :meth:`RoIPairIndex.sample`.

    Without a stored pair both patches are the whole frame of image ``i`` (neighbour -1).

    Returns:
        The two (3, R, R) uint8 patches, their (2, 4) boxes and the neighbour's position.
    """
    h, w = img.shape[-2:]
    whole = np.array([0, 0, w, h], dtype=np.float64)
    hit = pairs.sample(i, rng)
    j, qb, nb = hit if hit is not None else (-1, whole, whole)
    other = img if j < 0 else to_chw(images[j]["image"])
    p1 = roi_patch(img, qb, cfg.roi_size, cfg.view1, rng)
    p2 = roi_patch(other, nb, cfg.roi_size, cfg.view2, rng)
    return p1, p2, np.stack([qb, nb]).astype(np.float64), j


def _image_inputs(
    images: Any,
    pairs: RoIPairIndex,
    boxes: Sequence[np.ndarray],
    i: int,
    rng: np.random.Generator,
    cfg: ORLConfig,
) -> dict[str, Any]:
    """Every input of image ``i``: two views, then the active branches' patch pairs and boxes."""
    img = to_chw(images[i]["image"])
    out: dict[str, Any] = {
        "view1": augment_view(img, rng, cfg.image_size, cfg.view1),
        "view2": augment_view(img, rng, cfg.image_size, cfg.view2),
    }
    if "intra" in _LOCAL[cfg.branches]:
        out["intra1"], out["intra2"], out["intra_boxes"] = _intra_pair(img, boxes[i], rng, cfg)
    if "inter" in _LOCAL[cfg.branches]:
        p1, p2, out["inter_boxes"], out["inter_nbr"] = _inter_pair(images, i, img, pairs, rng, cfg)
        out["inter1"], out["inter2"] = p1, p2
    return out


def build_orl_batch(
    images: Any,
    pairs: RoIPairIndex,
    boxes: Sequence[np.ndarray],
    idx: Sequence[int],
    rng: np.random.Generator,
    cfg: ORLConfig,
    with_boxes: bool = False,
) -> dict[str, torch.Tensor]:
    """One ORL batch (ORL Sec. 3.1 Stage 3 sampling, Sec. 3.2 augmentations).

    Intra: a random filtered box of the image and its jitter. Inter: :meth:`RoIPairIndex.sample`.
    The reference never lacks either (its filter keeps at least one box and stage 2 stores at least
    one pair per (image, neighbour)); here an image without proposals uses its whole frame as the
    intra box, and one without stored pairs (no proposals, or no neighbour) uses its whole frame
    for both inter patches, i.e. that row's inter pair degenerates to a 96 px image-level pair.

    Args:
        images: ``images[i]["image"]`` -> (H, W, 3) uint8 (e.g. ``ShardedImages``).
        pairs: the stored RoI pairs.
        boxes: per image position, (B_i, 4) filtered xyxy RoIs (the intra-RoI candidates).
        idx: the B image positions of the batch.
        rng: the random generator; the batch is a pure function of its state.
        cfg: the method config (sizes, jitter, augmentations, active branches).
        with_boxes: also return ``intra_boxes`` (B, 2, 4), ``inter_boxes`` (B, 2, 4) and
            ``inter_nbr`` (B,) (-1 for the fallback) for inspection.

    Returns:
        ``view1``/``view2`` (B, 3, S, S) and, per active branch, ``intra1``/``intra2`` and
        ``inter1``/``inter2`` (B, 3, R, R), all float32 ImageNet-normalised.
    """
    rows = [_image_inputs(images, pairs, boxes, int(i), rng, cfg) for i in idx]
    present = set(rows[0]) if rows else set()
    batch = {k: normalize(torch.stack([r[k] for r in rows])) for k in _INPUTS if k in present}
    if with_boxes:
        for k in ("intra_boxes", "inter_boxes"):
            if k in present:
                batch[k] = torch.from_numpy(np.stack([r[k] for r in rows])).float()
        if "inter_nbr" in present:
            batch["inter_nbr"] = torch.tensor([r["inter_nbr"] for r in rows], dtype=torch.long)
    return batch
