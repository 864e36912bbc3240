"""Semi-supervised video object segmentation by label propagation on frozen dense features.

Protocol (VFS paper Sec. 4.1 "Fine-grained correspondence"; CRW, Jabri et al. 2020 Sec. 4; DINO,
Caron et al. 2021 Sec. 4.2.3; SiamMAE paper Sec. 4 and Table 4b): every frame's features are L2
normalised; the context of frame t is the first frame (ground-truth labels) plus the last m frames
(their predicted soft labels); each target position attends to the context positions inside a
spatial window, keeps the top-k affinities jointly over all context frames, weights them with a
softmax of cos/T, and averages their labels. The soft labels are upsampled bilinearly and argmaxed.

Window conventions differ between the reference codes, so both are exposed (``window``):
``"circle"``: Euclidean distance strictly below ``radius`` cells (VFS ref code
``spatial_neighbor(mode='circle')`` with neighbor_range 24 -> radius 12; CRW ``MaskedAttention``);
``"square"``: Chebyshev distance at most ``radius`` (DINO ``restrict_neighborhood``).
CRW (and CropMAE's SiamMAE evaluation, built on it) leave the first frame unrestricted
(``restrict_first=False``); VFS and DINO restrict it too. VFS and DINO min-max normalise each
upsampled channel before the argmax (``minmax_normalize``); CRW/CropMAE do not.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.eval.davis_metrics import davis_palette, read_mask
from correlearn.eval.features import FeatureFn, frame_to_tensor, resize_short_side

Window = Literal["circle", "square"]

PRESETS: dict[str, dict[str, Any]] = {
    # VFS ref code (xvjiarui/VFS configs/r18_*.py test_cfg): res4 (out_indices (2,)) with strides
    # (1,2,1,1) -> stride 8, precede_frames 20, topk 10, temperature 0.07, neighbor_range 24
    # (circle of radius 12), with_first_neighbor (first frame restricted too); frames resized to
    # short side 480 without rounding.
    "vfs_resnet": {},
    # DINO eval_video_segmentation.py: n_last_frames 7, topk 5, exp(cos/0.1), square window of 12
    # patches. DINO floors the long side to a multiple of 64 (854 -> 832); we floor both sides to
    # the patch size (854 -> 848), which keeps the short side at 480 as DINO does.
    "dino_vit": dict(
        context_frames=7,
        topk=5,
        temperature=0.1,
        radius=12,
        window="square",
        size_multiple=16,
        layer=None,
        strides=None,
    ),
    # SiamMAE Table 4b (DAVIS): top-k 7, queue 20, neighbourhood 20. The paper gives no temperature;
    # CropMAE's public SiamMAE evaluation (CRW code) uses 0.7, no first-frame restriction and no
    # min-max normalisation.
    "siammae_vit": dict(
        context_frames=20,
        topk=7,
        temperature=0.7,
        radius=20,
        window="circle",
        restrict_first=False,
        minmax_normalize=False,
        size_multiple=16,
        layer=None,
        strides=None,
    ),
}


class LabelPropConfig(StrictModel):
    """Label-propagation settings; the defaults are the VFS ResNet protocol (``vfs_resnet``).

    ``layer`` and ``strides`` are for the caller that builds the backbone (docs/contracts.md);
    propagation itself only sees the feature maps.
    """

    context_frames: int = Field(20, ge=0, description="m: previous frames kept as context")
    topk: int = Field(10, ge=1, description="k: affinities kept jointly over all context")
    temperature: float = Field(0.07, gt=0, description="T in softmax(cos / T)")
    radius: float = Field(12.0, gt=0, description="window radius in feature cells")
    window: Window = "circle"
    restrict_first: bool = True
    minmax_normalize: bool = True
    short_side: int | None = Field(480, ge=1, description="frames resized to this short side")
    size_multiple: int = Field(1, ge=1, description="resized sides floored to a multiple")
    layer: str | None = "res4"
    strides: tuple[int, int, int, int] | None = (1, 2, 1, 1)
    tile: int = Field(16, ge=1, description="target cells per side of a propagation tile (speed)")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> LabelPropConfig:
        """The published settings ``vfs_resnet | dino_vit | siammae_vit``, with overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown label-propagation preset {name!r}; known: {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


@functools.lru_cache(maxsize=32)
def _window_plan(h: int, w: int, radius: float, window: str, tile: int, device: str) -> tuple:
    """Per tile of target cells: its bounds, the context bounds in reach, the window mask.

    Bounds are ``(row0, row1, col0, col1)``; the mask is ``(n_t, n_c)`` bool, row-major. Built
    once per (resolution, window); a tile only compares against the context cells within reach
    of it, which is what makes a large radius affordable at 480p. Tiles and their context are
    rectangles, so both are read by slicing (a block copy, far cheaper than a gather).
    """
    reach = math.floor(radius) if window == "square" else math.ceil(radius) - 1
    plan = []
    for i0 in range(0, h, tile):
        for j0 in range(0, w, tile):
            tgt = (i0, min(h, i0 + tile), j0, min(w, j0 + tile))
            ctx = (max(0, i0 - reach), min(h, tgt[1] + reach), max(0, j0 - reach))
            ctx = (*ctx, min(w, tgt[3] + reach))
            ty, tx = torch.meshgrid(torch.arange(*tgt[:2]), torch.arange(*tgt[2:]), indexing="ij")
            cy, cx = torch.meshgrid(torch.arange(*ctx[:2]), torch.arange(*ctx[2:]), indexing="ij")
            dy = ty.reshape(-1, 1) - cy.reshape(1, -1)
            dx = tx.reshape(-1, 1) - cx.reshape(1, -1)
            if window == "square":
                mask = torch.maximum(dy.abs(), dx.abs()) <= radius
            else:
                mask = (dy**2 + dx**2) < radius**2
            plan.append((tgt, ctx, mask.to(device)))
    return tuple(plan)


def propagate_labels(
    target_feat: torch.Tensor,
    ctx_feats: torch.Tensor,
    ctx_labels: torch.Tensor,
    radius: float,
    topk: int,
    temperature: float,
    window: Window = "circle",
    restrict_first: bool = True,
    tile: int = 16,
) -> torch.Tensor:
    """One propagation step: soft labels of the target frame from its context (see module doc).

    Args:
        target_feat: ``(C, h, w)`` target features (L2-normalised here over C).
        ctx_feats: ``(T, C, h, w)`` context features; index 0 is the first frame.
        ctx_labels: ``(T, K, h, w)`` context soft labels.
        radius: window radius in cells (``window`` gives the metric).
        topk: number of affinities kept jointly over all ``T * h * w`` context cells.
        temperature: softmax temperature on the kept cosine similarities.
        window: ``"circle"`` (Euclidean < radius) or ``"square"`` (Chebyshev <= radius).
        restrict_first: apply the window to context frame 0 too (False: it is seen whole, CRW).
        tile: target tile side for the blocked computation (does not change the result).

    Returns:
        ``(K, h, w)`` soft labels (each cell's weights sum to 1).
    """
    c, h, w = target_feat.shape
    t, k = ctx_labels.shape[:2]
    q = F.normalize(target_feat.float(), dim=0)
    # (C, T, h, w): slicing a rectangle of cells then yields a (C, T * n_c) matrix in one copy.
    keys = F.normalize(ctx_feats.float(), dim=1).transpose(0, 1).contiguous()
    vals = ctx_labels.float().transpose(0, 1).contiguous()
    plan = _window_plan(h, w, float(radius), window, tile, str(q.device))
    first = 0 if restrict_first else 1
    out = q.new_empty(k, h, w)
    for (i0, i1, j0, j1), (r0, r1, c0, c1), mask in plan:
        qt = q[:, i0:i1, j0:j1].reshape(c, -1).T  # (n_t, C)
        affs, labs = [], []
        if not restrict_first:
            affs.append(qt @ keys[:, 0].reshape(c, -1))
            labs.append(vals[:, 0].reshape(k, -1))
        if t > first:
            kt = keys[:, first:, r0:r1, c0:c1].reshape(c, -1)  # (C, T' * n_c)
            aff = qt @ kt  # (n_t, T' * n_c)
            aff.view(len(qt), -1, mask.shape[1]).masked_fill_(~mask[:, None], float("-inf"))
            affs.append(aff)
            labs.append(vals[:, first:, r0:r1, c0:c1].reshape(k, -1))  # (K, T' * n_c)
        aff = affs[0] if len(affs) == 1 else torch.cat(affs, dim=1)
        lab = labs[0] if len(labs) == 1 else torch.cat(labs, dim=1)
        top, idx = aff.topk(min(topk, aff.shape[1]), dim=1)
        weights = torch.softmax(top / temperature, dim=1)  # (n_t, k)
        out[:, i0:i1, j0:j1] = (lab[:, idx] * weights).sum(-1).view(k, i1 - i0, j1 - j0)
    return out


def mask_to_labels(mask: np.ndarray, ids: np.ndarray, size: tuple, device) -> torch.Tensor:
    """``(K, h, w)`` one-hot labels of an id map, nearest-resized as the reference codes do."""
    index = torch.from_numpy(np.searchsorted(ids, mask)).to(device=device, dtype=torch.float32)
    index = F.interpolate(index[None, None], size=size, mode="nearest-exact")[0, 0].long()
    return F.one_hot(index, len(ids)).permute(2, 0, 1).float()


def labels_to_mask(
    soft: torch.Tensor, ids: np.ndarray, size: tuple[int, int], minmax_normalize: bool = True
) -> np.ndarray:
    """Upsample ``(K, h, w)`` soft labels bilinearly to ``size`` and argmax into an id map.

    ``minmax_normalize`` rescales each channel to [0, 1] first (VFS/DINO ref code), which keeps a
    small object from being swallowed by the background channel's larger mass.
    """
    up = F.interpolate(soft[None].float(), size=size, mode="bilinear", align_corners=False)[0]
    if minmax_normalize:
        lo = up.amin(dim=(1, 2), keepdim=True)
        hi = up.amax(dim=(1, 2), keepdim=True)
        up = torch.where(hi > 0, (up - lo) / (hi - lo + 1e-12), up)
    # Channel-last first: argmax over a strided leading dim is ~10x slower on CPU.
    return ids[up.permute(1, 2, 0).contiguous().argmax(-1).cpu().numpy()]


def propagate_sequence(
    feature_fn: FeatureFn,
    frames: Sequence[np.ndarray],
    first_mask: np.ndarray,
    cfg: LabelPropConfig,
    device: torch.device | str | None = None,
) -> list[np.ndarray]:
    """Segment a video from its first-frame mask (protocol in the module doc).

    Each frame's features are computed exactly once: the context queue keeps features and soft
    labels, so a frame costs one ``feature_fn`` call plus one :func:`propagate_labels`.

    Args:
        feature_fn: ``(1, 3, H', W')`` ImageNet-normalised frame -> ``(1, C, h, w)`` features.
        frames: ``T`` RGB frames ``(H, W, 3)`` uint8 (resized internally per ``cfg``).
        first_mask: ``(H, W)`` int object ids of frame 0; labels are one-hot over the ids present
            (plus background 0).
        cfg: propagation settings.
        device: where frames, features and labels live (default CPU).

    Returns:
        ``T`` id maps ``(H, W)`` int64 at the frames' size; entry 0 is ``first_mask``.
    """
    if frames[0].shape[:2] != first_mask.shape:
        raise ValueError(f"frame size {frames[0].shape[:2]} != mask size {first_mask.shape}")
    device = torch.device(device or "cpu")
    ids = np.union1d([0], np.unique(first_mask)).astype(np.int64)
    size = tuple(first_mask.shape)

    def features(frame: np.ndarray) -> torch.Tensor:
        x = frame_to_tensor(resize_short_side(frame, cfg.short_side, cfg.size_multiple), device)
        return F.normalize(feature_fn(x)[0].float(), dim=0)

    with torch.inference_mode():
        first_feat = features(frames[0])
        first_label = mask_to_labels(first_mask, ids, tuple(first_feat.shape[-2:]), device)
        queue: deque = deque(maxlen=cfg.context_frames)
        preds = [np.asarray(first_mask, dtype=np.int64).copy()]
        for frame in frames[1:]:
            feat = features(frame)
            soft = propagate_labels(
                feat,
                torch.stack([first_feat] + [f for f, _ in queue]),
                torch.stack([first_label] + [lab for _, lab in queue]),
                radius=cfg.radius,
                topk=cfg.topk,
                temperature=cfg.temperature,
                window=cfg.window,
                restrict_first=cfg.restrict_first,
                tile=cfg.tile,
            )
            queue.append((feat, soft))
            preds.append(labels_to_mask(soft, ids, size, cfg.minmax_normalize))
    return preds


def write_davis_masks(
    out_dir: str | Path, seq: str, masks: Sequence[np.ndarray], names: Sequence[str] | None = None
) -> list[Path]:
    """Write id maps as DAVIS palette PNGs ``out_dir/<seq>/<frame:05d>.png`` (or ``names``)."""
    folder = Path(out_dir) / seq
    folder.mkdir(parents=True, exist_ok=True)
    palette = davis_palette().ravel().tolist()
    paths = []
    for i, mask in enumerate(masks):
        if mask.min() < 0 or mask.max() > 255:
            raise ValueError(f"frame {i}: ids must be in [0, 255] for a palette PNG")
        im = Image.fromarray(np.asarray(mask, dtype=np.uint8))
        im.putpalette(palette)
        path = folder / (names[i] if names is not None else f"{i:05d}.png")
        im.save(path)
        paths.append(path)
    return paths


def load_davis_sequence(
    root: str | Path, seq: str, max_frames: int | None = None, resolution: str = "480p"
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Read ``root/JPEGImages/<res>/<seq>/*.jpg`` and the matching annotations.

    Returns:
        RGB frames ``(H, W, 3)`` uint8, id maps ``(H, W)`` int64 (see :func:`read_mask`), and the
        PNG file names, for the first ``max_frames`` frames.
    """
    root = Path(root)
    jpgs = sorted((root / "JPEGImages" / resolution / seq).glob("*.jpg"))[:max_frames]
    if not jpgs:
        raise FileNotFoundError(f"no frames in {root / 'JPEGImages' / resolution / seq}")
    frames = [np.array(Image.open(p).convert("RGB")) for p in jpgs]
    names = [p.with_suffix(".png").name for p in jpgs]
    masks = [read_mask(root / "Annotations" / resolution / seq / n) for n in names]
    return frames, masks, names
