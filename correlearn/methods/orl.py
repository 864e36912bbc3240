"""ORL stage 3: object-level BYOL on global views, intra-RoI and inter-RoI pairs (Xie et al. 2021).

Loss (ORL eq. 2): ``L = l1 L_image + l2 L_intra-RoI + l3 L_inter-RoI``, every term a symmetric BYOL
loss (ORL eq. 1 plus the swapped term, Sec. 3.1), all weights 1. Backbone and projector are shared
by the three branches; each branch has its own predictor (Sec. 3.2 "Network architecture"; reference
``openselfsup/models/orl.py``: ``global_head``, ``local_intra_head``, ``local_inter_head``). The EMA
target starts at tau = 0.99 (Sec. 3.2). Stage 3 starts from a random initialisation: the reference
config ``configs/selfsup/orl/coco/stage3/r50_bs512_ep800.py`` has ``pretrained=None``; stage 1 only
serves to mine the pairs.

Inputs (Sec. 3.1 "Stage 3", Sec. 3.2 "Image augmentations"): two 224 px BYOL views of the image;
a filtered RoI of the image and a jittered copy (:func:`correlearn.mining.jitter_box`); a random
kNN neighbour, then a random stored RoI pair between the two images. RoI crops are resized to 96 px
"to take the place of the random resized crop" and then get the global views' flip and colour
augmentations (patch 1 with view 1's parameters, patch 2 with view 2's, as the reference
``train_patch_pipeline1/2``), drawn independently per crop.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import torch
import torchvision.transforms.v2.functional as TF
from pydantic import Field
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.utils import make_grid

from correlearn.config import StrictModel
from correlearn.data.augment import (
    BYOL_VIEW1,
    BYOL_VIEW2,
    ViewAug,
    augment_view,
    denormalize,
    hflip,
    normalize,
    photometric,
    to_chw,
)
from correlearn.methods.ema import ema_update
from correlearn.methods.losses import symmetric_byol_loss
from correlearn.mining.jitter import jitter_box
from correlearn.models import build_backbone
from correlearn.models.heads import mlp

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

    backbone: str = "resnet50"
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    proj_hidden_dim: int = 4096
    proj_dim: int = 256
    pred_hidden_dim: int = 4096
    base_tau: float = 0.99
    branches: Branches = "both"
    weight_image: float = 1.0
    weight_intra: float = 1.0
    weight_inter: float = 1.0
    image_size: int = 224
    roi_size: int = 96
    jitter_shift: float = 0.5
    jitter_area: tuple[float, float] = (0.5, 2.0)
    jitter_aspect: tuple[float, float] = (0.5, 2.0)
    jitter_mode: Literal["clip", "reject"] = "clip"
    view1: ViewAug = Field(default_factory=lambda: BYOL_VIEW1.model_copy())
    view2: ViewAug = Field(default_factory=lambda: BYOL_VIEW2.model_copy())


class ORL(nn.Module):
    """ORL stage 3 (contracts: ``training_step``, ``backbone``, ``momentum_update``, ``base_tau``).

    Attributes:
        backbone, projector: shared online encoder and projector, (B, 3, S, S) -> (B, proj_dim).
        predictors: one predictor per active branch (``image``, ``intra``, ``inter``); a branch
            switched off has none, so it has no parameter that could miss a gradient under DDP.
        target_backbone, target_projector: EMA copies (no gradient).
    """

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

    def momentum_update(self, tau: float) -> None:
        """EMA step of the target: xi <- tau xi + (1 - tau) theta (BYOL Sec. 3.1, ORL Sec. 3.2)."""
        ema_update(self.target_backbone, self.backbone, tau)
        ema_update(self.target_projector, self.projector, tau)

    @torch.no_grad()
    def pictures(self, batch: dict[str, torch.Tensor], max_images: int = 8) -> dict[str, Any]:
        """Inputs of each branch: ``{"views"|"intra"|"inter": (H, W, 3) uint8}``, two rows each."""
        out = {}
        for branch, (a, b) in _PAIRS.items():
            if a in batch:
                n = min(max_images, batch[a].shape[0])
                x = torch.cat([batch[a][:n], batch[b][:n]]).detach().float().cpu()
                grid = make_grid(denormalize(x), nrow=n, padding=2, pad_value=255)
                out["views" if branch == "image" else branch] = grid.permute(1, 2, 0).numpy()
        return out


class RoIPairIndex:
    """Stored inter-RoI pairs (ORL Sec. 3.1 Stage 2 (iii)), grouped by (image, neighbour rank).

    Args:
        table: a ``pairs.parquet`` table (``key, nbr_key, nbr_rank, q_box, n_box, score``).
        keys: image keys; positions in it are the image ids used by :meth:`sample`.
        knn_k: use only the first ``knn_k`` stored neighbours (reference ``topk_knn_image``).
    """

    def __init__(self, table: pa.Table, keys: Sequence[str], knn_k: int | None = None):
        pos = {k: i for i, k in enumerate(keys)}
        img = np.array([pos[k] for k in table.column("key").to_pylist()], dtype=np.int64)
        nbr = np.array([pos[k] for k in table.column("nbr_key").to_pylist()], dtype=np.int64)
        rank = table.column("nbr_rank").to_numpy().astype(np.int64)
        q = table.column("q_box").combine_chunks().flatten().to_numpy().reshape(-1, 4)
        n = table.column("n_box").combine_chunks().flatten().to_numpy().reshape(-1, 4)
        keep = rank < knn_k if knn_k is not None else np.ones(len(rank), bool)
        order = np.lexsort((rank[keep], img[keep]))
        img, rank = img[keep][order], rank[keep][order]
        self.nbr, self.q_boxes, self.n_boxes = nbr[keep][order], q[keep][order], n[keep][order]
        new = np.ones(len(img), bool)
        new[1:] = (img[1:] != img[:-1]) | (rank[1:] != rank[:-1])
        starts = np.flatnonzero(new)
        self.row_start = np.append(starts, len(img))
        self.image_group = np.searchsorted(img[starts], np.arange(len(keys) + 1))

    def num_neighbours(self, i: int) -> int:
        """Neighbours of image ``i`` with at least one stored pair."""
        return int(self.image_group[i + 1] - self.image_group[i])

    def sample(self, i: int, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray] | None:
        """A random neighbour of image ``i``, then a random stored pair (ORL Sec. 3.1 Stage 3).

        Returns:
            ``(neighbour position, (4,) query box, (4,) neighbour box)`` (xyxy), or None when image
            ``i`` has no stored pair.
        """
        g0, g1 = self.image_group[i], self.image_group[i + 1]
        if g0 == g1:
            return None
        g = g0 + int(rng.integers(g1 - g0))
        r = self.row_start[g] + int(rng.integers(self.row_start[g + 1] - self.row_start[g]))
        return int(self.nbr[r]), self.q_boxes[r], self.n_boxes[r]


def roi_patch(
    img: torch.Tensor, box: np.ndarray, size: int, aug: ViewAug, rng: np.random.Generator
) -> torch.Tensor:
    """Crop an RoI, resize it to ``size`` and augment it as a global view (ORL Sec. 3.2).

    Args:
        img: (3, H, W) uint8 image.
        box: (4,) xyxy box in image pixels (rounded and clipped, at least 1 px).
        size: output side R.
        aug: flip and colour parameters (the random-resized crop fields are unused).
        rng: the random generator.

    Returns:
        (3, R, R) uint8 patch.
    """
    h, w = img.shape[-2:]
    x1, y1, x2, y2 = np.round(np.asarray(box, dtype=np.float64)).astype(int).tolist()
    x1, y1 = min(max(x1, 0), w - 1), min(max(y1, 0), h - 1)
    x2, y2 = min(max(x2, x1 + 1), w), min(max(y2, y1 + 1), h)
    x = TF.resized_crop(
        img, y1, x1, y2 - y1, x2 - x1, [size, size], InterpolationMode.BILINEAR, antialias=True
    )
    return photometric(hflip(x, aug.flip_p, rng), rng, aug)


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
    local = _LOCAL[cfg.branches]
    out: dict[str, list] = {k: [] for k in (*_INPUTS, "intra_boxes", "inter_boxes", "inter_nbr")}
    for i in (int(j) for j in idx):
        img = to_chw(images[i]["image"])
        h, w = img.shape[-2:]
        whole = np.array([0, 0, w, h], dtype=np.float64)
        out["view1"].append(augment_view(img, rng, cfg.image_size, cfg.view1))
        out["view2"].append(augment_view(img, rng, cfg.image_size, cfg.view2))
        if "intra" in local:
            cand = np.asarray(boxes[i], dtype=np.float64).reshape(-1, 4)
            b1 = cand[int(rng.integers(len(cand)))] if len(cand) else whole
            b2 = jitter_box(
                b1, rng, w, h, cfg.jitter_shift, cfg.jitter_area, cfg.jitter_aspect, cfg.jitter_mode
            )
            out["intra1"].append(roi_patch(img, b1, cfg.roi_size, cfg.view1, rng))
            out["intra2"].append(roi_patch(img, b2, cfg.roi_size, cfg.view2, rng))
            out["intra_boxes"].append(np.stack([b1, b2]))
        if "inter" in local:
            hit = pairs.sample(i, rng)
            j, qb, nb = hit if hit is not None else (-1, whole, whole)
            other = img if j < 0 else to_chw(images[j]["image"])
            out["inter1"].append(roi_patch(img, qb, cfg.roi_size, cfg.view1, rng))
            out["inter2"].append(roi_patch(other, nb, cfg.roi_size, cfg.view2, rng))
            out["inter_boxes"].append(np.stack([qb, nb]).astype(np.float64))
            out["inter_nbr"].append(j)
    batch = {k: normalize(torch.stack(out[k])) for k in _INPUTS if out[k]}
    if with_boxes:
        for k in ("intra_boxes", "inter_boxes"):
            if out[k]:
                batch[k] = torch.from_numpy(np.stack(out[k])).float()
        if out["inter_nbr"]:
            batch["inter_nbr"] = torch.tensor(out["inter_nbr"], dtype=torch.long)
    return batch
