"""Semantic part propagation on VIP, scored with mIoU: the UVC / CRW protocol of SiamMAE Table 1.

Protocol (UVC, Li et al. 2019, ``test_mask_vip.py --scale_size 560 560 --pre_num 1`` and
``eval_vip.py`` from TimeCycle; CRW's ``code/eval/eval_vip.py`` is the same file): frames and the
first frame's part map are resized to 560x560 (aspect not kept; the map nearest-neighbour), the
map is propagated with the label-propagation core with a single context frame, the result is
resized back to the original size (nearest) and scored against every annotated frame. mIoU is
computed from one confusion matrix accumulated over all frames of all videos (``fast_hist``):
IoU_c = TP / (GT_c + Pred_c - TP) per class, the mean over the classes that occur (NaN excluded),
background included, in percent. VIP has 20 classes: background and 19 human parts
(``CLASSES``). The reference scores the first frame too (UVC copies its ground truth into the
results); ``score_first=False`` leaves it out. GT values outside ``[0, n_classes)`` are ignored
in scoring (``fast_hist``) and treated as background in the first frame's map.

VIP layout: ``Images/<video>/*.jpg``, ``Category_ids/<video>/*.png`` (also found under
``Annotations/Category_ids``, as in VIP_Fine), video lists ``lists/<split>_videos.txt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from correlearn.data.sources import DataError
from correlearn.eval.features import FeatureFn
from correlearn.eval.label_propagation import LabelPropConfig, propagate_sequence

LAYOUT = "a VIP folder: Images/<video>/*.jpg, Category_ids/<video>/*.png, lists/<split>_videos.txt"

IMAGE_SIZE = 560  # UVC --scale_size 560 560; SiamMAE Sec. 4.2
CLASSES = (
    "background", "hat", "hair", "sun-glasses", "upper-clothes", "dress", "coat", "socks",
    "pants", "gloves", "scarf", "skirt", "torso-skin", "face", "right-arm", "left-arm",
    "right-leg", "left-leg", "right-shoe", "left-shoe",
)  # fmt: skip


def read_video_list(root: str | Path, split: str = "val") -> list[str]:
    """Video names of ``lists/<split>_videos.txt`` (the last path component of each line)."""
    path = Path(root) / "lists" / f"{split}_videos.txt"
    if not path.is_file():
        raise DataError(f"{path}: missing video list; expected {LAYOUT}")
    return [
        line.strip().rstrip("/").split("/")[-1]
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def annotation_dir(root: str | Path) -> Path:
    """``Category_ids`` under the root, or under ``Annotations`` (VIP_Fine)."""
    for cand in (Path(root) / "Category_ids", Path(root) / "Annotations" / "Category_ids"):
        if cand.is_dir():
            return cand
    raise DataError(f"{root}: neither Category_ids nor Annotations/Category_ids; expected {LAYOUT}")


def load_video(
    root: str | Path, video: str
) -> tuple[list[np.ndarray], list[np.ndarray | None], list[str]]:
    """Frames, part maps and PNG names of one VIP video.

    Returns:
        RGB frames ``(H, W, 3)`` uint8; per frame its class map ``(H, W)`` int64 or None when the
        frame has no annotation; the names ``<frame>.png``. The first frame must be annotated.
    """
    root = Path(root)
    jpgs = sorted((root / "Images" / video).glob("*.jpg"))
    if not jpgs:
        raise DataError(f"{root / 'Images' / video}: no frames; expected {LAYOUT}")
    ann = annotation_dir(root) / video
    names = [p.with_suffix(".png").name for p in jpgs]
    masks = [
        np.array(Image.open(ann / n), dtype=np.int64) if (ann / n).is_file() else None
        for n in names
    ]
    if masks[0] is None:
        raise DataError(f"{ann / names[0]}: missing; the first frame has no annotation")
    frames = [np.array(Image.open(p).convert("RGB")) for p in jpgs]
    return frames, masks, names


def fast_hist(gt: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """``(n, n)`` confusion counts, rows GT, columns prediction; GT outside [0, n) ignored."""
    k = (gt >= 0) & (gt < n)
    return np.bincount(n * gt[k].astype(int) + pred[k].astype(int), minlength=n * n).reshape(n, n)


def miou(hist: np.ndarray) -> dict[str, object]:
    """Mean IoU (percent) and per-class IoU from a confusion matrix (``eval_vip.py show_result``).

    Returns:
        ``{"mIoU", "pixel_accuracy", "per_class": {name: IoU or None}}``; a class absent from both
        GT and predictions has no IoU (None) and is left out of the mean.
    """
    tp = np.diag(hist).astype(np.float64)
    union = hist.sum(1) + hist.sum(0) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / union
    names = CLASSES if len(iou) == len(CLASSES) else [str(i) for i in range(len(iou))]
    return {
        "mIoU": float(100.0 * np.nanmean(iou)),
        "pixel_accuracy": float(100.0 * tp.sum() / max(hist.sum(), 1)),
        "per_class": {
            n: (None if np.isnan(v) else float(100.0 * v)) for n, v in zip(names, iou, strict=True)
        },
    }


def frame_size(
    shape: tuple[int, int], image_size: int | None = IMAGE_SIZE, long_side: int | None = None
) -> tuple[int, int]:
    """``(W, H)`` the frames of a video are resized to.

    A square of ``image_size`` (UVC), or ``long_side`` with the short side scaled and floored to
    a multiple of 64 (CropMAE ``src/data/vos.py``).

    Args:
        shape: ``(H, W)`` of the original frames.
        image_size: side of the square (used when ``long_side`` is None).
        long_side: the long side.
    """
    if long_side is None:
        if image_size is None:
            raise ValueError("give image_size or long_side")
        return image_size, image_size
    h, w = shape
    scale = long_side / max(h, w)
    short = max(64, int(min(h, w) * scale) // 64 * 64)
    return (long_side, short) if w >= h else (short, long_side)


def propagate_parts(
    feature_fn: FeatureFn,
    frames: Sequence[np.ndarray],
    first_mask: np.ndarray,
    cfg: LabelPropConfig,
    size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE),
    n_classes: int = len(CLASSES),
    device=None,
) -> list[np.ndarray]:
    """Propagate the first frame's part map through a video (module doc).

    Args:
        feature_fn: frozen dense features (``(1, 3, H, W)`` -> ``(1, C, h, w)``).
        frames: ``T`` RGB frames ``(H, W, 3)`` uint8 at their original size.
        first_mask: ``(H, W)`` class ids of frame 0.
        cfg: propagation settings (frames are resized here, so ``short_side`` is not used).
        size: ``(W, H)`` the frames are resized to (:func:`frame_size`).
        n_classes: ids at or above it are treated as background.
        device: where features and labels live (default CPU).

    Returns:
        ``T`` class maps ``(H, W)`` int64 at the original size; entry 0 is ``first_mask``.
    """
    h, w = first_mask.shape
    square = [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames]
    first = np.where((first_mask >= 0) & (first_mask < n_classes), first_mask, 0)
    small = cv2.resize(first.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    cfg = cfg.model_copy(update={"short_side": None, "size_multiple": 1})
    preds = propagate_sequence(feature_fn, square, small.astype(np.int64), cfg, device)
    out = [
        cv2.resize(p.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int64)
        for p in preds[1:]
    ]
    return [np.asarray(first_mask, dtype=np.int64).copy(), *out]


def score_video(
    preds: Sequence[np.ndarray],
    gts: Sequence[np.ndarray | None],
    n_classes: int = len(CLASSES),
    score_first: bool = True,
) -> np.ndarray:
    """Confusion counts ``(n, n)`` of one video over its annotated frames."""
    hist = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, (pred, gt) in enumerate(zip(preds, gts, strict=True)):
        if gt is None or (t == 0 and not score_first):
            continue
        if pred.shape != gt.shape:
            raise ValueError(f"frame {t}: prediction {pred.shape} and GT {gt.shape} differ in size")
        hist += fast_hist(gt, pred, n_classes)
    return hist
