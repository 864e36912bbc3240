"""Semi-supervised video object segmentation by label propagation on frozen dense features.

Protocol (VFS paper Sec. 4.1 "Fine-grained correspondence"; CRW, Jabri et al. 2020 Sec. 4; DINO,
Caron et al. 2021 Sec. 4.2.3; SiamMAE paper Sec. 4 and Table 4b): every frame's features are L2
normalised; the context of frame t is the first frame (ground-truth labels) plus m earlier frames
(their predicted soft labels); each target position attends to the context positions inside a
spatial window, keeps the top-k affinities jointly over all context frames, weights them with a
softmax of cos/T, and averages their labels. The soft labels are upsampled bilinearly and argmaxed.

The reference codes build the context of the early frames differently (``context``, see
:func:`context_indices`): ``"queue"`` is DINO's (first frame + the last m predictions, a queue
that fills up), ``"vfs"`` the VFS reference's (first frame + frames [t-m, t), so frame 0 appears
twice while t <= m), ``"crw"`` CRW's and CropMAE's (the video padded with m copies of frame 0, so
the context always holds m + 1 entries and early top-k mostly hits frame 0).

Window conventions differ too, so both are exposed (``window``):
``"circle"``: Euclidean distance strictly below ``radius`` cells (VFS ref code
``spatial_neighbor(mode='circle')`` with neighbor_range 24 -> radius 12; CRW ``MaskedAttention``);
``"square"``: Chebyshev distance at most ``radius`` (DINO ``restrict_neighborhood``).
CRW (and CropMAE's SiamMAE evaluation, built on it) leave the long-term first frame unrestricted
(``restrict_first=False``; its padded copies in the short-term context are restricted); VFS and
DINO restrict it too. First-frame labels at feature resolution are a nearest resize of the
annotation (VFS ``pil_nearest_interpolate``, DINO ``read_seg``: hard) or a bilinear resize of its
one-hot map (CRW/CropMAE ``cv2.resize(..., INTER_LINEAR)``: soft), ``first_labels``. VFS and DINO
min-max normalise each upsampled channel before the argmax (``minmax_normalize``); CRW/CropMAE do
not. VFS upsamples the soft labels to the annotation's size; DINO and CRW/CropMAE to the network
input, argmax there and resize the id map (nearest) to the annotation's size (``upsample``).
The settings and the published presets are :mod:`correlearn.eval.label_prop_config`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from correlearn.eval.davis_folder import frame_files
from correlearn.eval.davis_metrics import davis_palette, read_mask
from correlearn.eval.features import FeatureFn, frame_to_tensor, resize_short_side, resized_shape
from correlearn.eval.label_prop_config import ContextMode, LabelPropConfig
from correlearn.eval.windowed_propagation import propagate_labels

__all__ = ["LabelPropConfig", "context_indices", "propagate_labels", "propagate_sequence"]


def context_indices(t: int, m: int, mode: ContextMode) -> list[int]:
    """Frame indices of the context of target frame ``t >= 1``, long-term first frame first.

    ``queue`` (DINO ``eval_video_tracking_davis``): ``[0] + [max(1, t-m), t)``.
    ``vfs`` (VFS ``VanillaTracker.forward_test``, ``with_first``): ``[0] + [max(0, t-m), t)``.
    ``crw`` (CRW/CropMAE ``context_index_bank`` on a video padded with m copies of frame 0):
    ``[0] + [t-m, t)`` with every negative index read as frame 0, always ``m + 1`` entries.
    """
    if mode == "queue":
        return [0, *range(max(1, t - m), t)]
    if mode == "vfs":
        return [0, *range(max(0, t - m), t)]
    if mode == "crw":
        return [0, *(max(0, i) for i in range(t - m, t))]
    raise ValueError(f"unknown context mode {mode!r}")


def pil_nearest(index: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W)`` int map to ``size = (h, w)`` with PIL's nearest, as the references do.

    (torch's ``nearest-exact`` follows the same rule but rounds differently at exact half-way
    points, e.g. 8 -> 15 rows.)
    """
    im = Image.fromarray(np.ascontiguousarray(index, dtype=np.int32))
    return np.asarray(im.resize((size[1], size[0]), Image.NEAREST), dtype=np.int64)


def mask_to_labels(
    mask: np.ndarray, ids: np.ndarray, size: tuple, device, mode: str = "nearest"
) -> torch.Tensor:
    """``(K, h, w)`` labels of an ``(H, W)`` id map at feature size ``size = (h, w)``.

    ``nearest``: one-hot of the id map resized with PIL's nearest (VFS
    ``pil_nearest_interpolate``, DINO ``read_seg``). ``bilinear``: the full-size one-hot map
    resized bilinearly without antialiasing (CRW/CropMAE ``cv2.resize(onehot, INTER_LINEAR)``),
    soft at object borders.
    """
    index = np.searchsorted(ids, mask)
    if mode == "bilinear":
        onehot = F.one_hot(torch.from_numpy(index).to(device), len(ids))
        onehot = onehot.permute(2, 0, 1).float()[None]
        return F.interpolate(onehot, size=tuple(size), mode="bilinear", align_corners=False)[0]
    small = torch.from_numpy(pil_nearest(index, tuple(size))).to(device)
    return F.one_hot(small, len(ids)).permute(2, 0, 1).float()


def labels_to_mask(
    soft: torch.Tensor,
    ids: np.ndarray,
    size: tuple[int, int],
    minmax_normalize: bool = True,
    via: tuple[int, int] | None = None,
) -> np.ndarray:
    """Upsample ``(K, h, w)`` soft labels bilinearly to ``size`` and argmax into an id map.

    ``minmax_normalize`` rescales each channel to [0, 1] first (VFS/DINO ref code), which keeps a
    small object from being swallowed by the background channel's larger mass. ``via`` (the
    network input size) upsamples to that size, argmaxes there and resizes the id map to ``size``
    with PIL's nearest (DINO ``eval_video_tracking_davis``, CRW/CropMAE ``dump_predictions`` +
    ``convert_davis``); without it the soft labels go straight to ``size`` (VFS).
    """
    if via is not None and tuple(via) != tuple(size):
        index = labels_to_mask(soft, np.arange(len(ids)), via, minmax_normalize)
        return ids[pil_nearest(index, size)]
    up = F.interpolate(soft[None].float(), size=size, mode="bilinear", align_corners=False)[0]
    if minmax_normalize:
        lo = up.amin(dim=(1, 2), keepdim=True)
        hi = up.amax(dim=(1, 2), keepdim=True)
        up = torch.where(hi > 0, (up - lo) / (hi - lo + 1e-12), up)
    # Channel-last first: argmax over a strided leading dim is ~10x slower on CPU.
    return ids[up.permute(1, 2, 0).contiguous().argmax(-1).cpu().numpy()]


def upsample_via(cfg: LabelPropConfig, size: tuple[int, int]) -> tuple[int, int] | None:
    """The network input size of an ``(H, W)`` frame when ``cfg.upsample == "input"``, else None."""
    if cfg.upsample == "annotation":
        return None
    return resized_shape(size[0], size[1], cfg.short_side, cfg.size_multiple)


def propagate_soft_labels(
    feats: Iterable[torch.Tensor], first_label: torch.Tensor, cfg: LabelPropConfig
) -> Iterator[torch.Tensor]:
    """Soft labels of frames 1, 2, ... from per-frame features and the first frame's labels.

    Args:
        feats: ``(C, h, w)`` L2-normalised features of frames 0, 1, 2, ... (consumed lazily).
        first_label: ``(K, h, w)`` labels of frame 0 (:func:`mask_to_labels`).
        cfg: propagation settings; ``context`` and ``context_frames`` choose the context.

    Yields:
        ``(K, h, w)`` soft labels of frame t, for t = 1, 2, ...; frame t's own soft labels are
        the context labels of later frames (frame 0 always keeps ``first_label``).
    """
    bank: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    m = cfg.context_frames
    for t, feat in enumerate(feats):
        if t == 0:
            bank[0] = (feat, first_label)
            continue
        idx = context_indices(t, m, cfg.context)
        soft = propagate_labels(
            feat,
            [bank[i][0] for i in idx],
            [bank[i][1] for i in idx],
            radius=cfg.radius,
            topk=cfg.topk,
            temperature=cfg.temperature,
            window=cfg.window,
            restrict_first=cfg.restrict_first,
            tile=cfg.tile,
            normalized=True,
        )
        bank[t] = (feat, soft)
        if t - m > 0:
            del bank[t - m]  # in no later frame's context
        yield soft


def propagate_sequence(
    feature_fn: FeatureFn,
    frames: Sequence[np.ndarray],
    first_mask: np.ndarray,
    cfg: LabelPropConfig,
    device: torch.device | str | None = None,
) -> list[np.ndarray]:
    """Segment a video from its first-frame mask (protocol in the module doc).

    Each frame's features are computed exactly once (``cfg.feature_batch`` frames per call) and
    kept while some later frame's context needs them.

    Args:
        feature_fn: ``(B, 3, H', W')`` ImageNet-normalised frames -> ``(B, C, h, w)`` features.
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
    via = upsample_via(cfg, size)

    def features() -> Iterator[torch.Tensor]:
        for b in range(0, len(frames), cfg.feature_batch):
            chunk = frames[b : b + cfg.feature_batch]
            x = torch.cat(
                [
                    frame_to_tensor(resize_short_side(f, cfg.short_side, cfg.size_multiple), device)
                    for f in chunk
                ]
            )
            # Channels-last: the kernel's (h, w, T, C) context stack then copies C-long runs.
            feats = F.normalize(feature_fn(x).float(), dim=1)
            yield from feats.contiguous(memory_format=torch.channels_last)

    with torch.inference_mode():
        feats = features()
        first_feat = next(feats)
        hw = tuple(first_feat.shape[-2:])
        first_label = mask_to_labels(first_mask, ids, hw, device, cfg.first_labels)
        preds = [np.asarray(first_mask, dtype=np.int64).copy()]
        for soft in propagate_soft_labels(itertools.chain([first_feat], feats), first_label, cfg):
            preds.append(labels_to_mask(soft, ids, size, cfg.minmax_normalize, via))
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
        # Through a temporary name: a kill mid-write leaves no truncated PNG for a resume to trust.
        tmp = path.with_name(f".{path.name}.tmp")
        im.save(tmp, format="PNG")
        os.replace(tmp, path)
        paths.append(path)
    return paths


def masks_read_back(folder: Path, n: int) -> bool:
    """Whether ``folder`` holds ``n`` PNG masks that all decode (a resumable run's finished work)."""
    pngs = sorted(folder.glob("*.png"))
    if len(pngs) != n:
        return False
    try:
        for p in pngs:
            with Image.open(p) as im:
                im.load()
    except (OSError, SyntaxError):
        return False
    return True


def load_davis_sequence(
    root: str | Path, seq: str, max_frames: int | None = None, resolution: str = "480p"
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Read ``root/JPEGImages/<res>/<seq>/`` frames and the matching annotations.

    Frames are the ``.jpg``, ``.jpeg`` and ``.png`` files of the folder (any case) in frame order;
    each frame's annotation is ``Annotations/<res>/<seq>/<frame stem>.png``. Check the folder
    first with :func:`correlearn.eval.davis_folder.check_davis`.

    Returns:
        RGB frames ``(H, W, 3)`` uint8, id maps ``(H, W)`` int64 (see :func:`read_mask`), and the
        PNG file names, for the first ``max_frames`` frames.
    """
    root = Path(root)
    files = frame_files(root / "JPEGImages" / resolution / seq)[0][:max_frames]
    if not files:
        raise FileNotFoundError(f"no frames in {root / 'JPEGImages' / resolution / seq}")
    frames = [np.array(Image.open(p).convert("RGB")) for p in files]
    names = [f"{p.stem}.png" for p in files]
    masks = [read_mask(root / "Annotations" / resolution / seq / n) for n in names]
    return frames, masks, names
