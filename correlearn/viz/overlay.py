"""Mask overlays and contact sheets for label-propagation results (DAVIS colours)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from correlearn.eval.davis_metrics import davis_palette


def overlay_mask(
    frame: np.ndarray, mask: np.ndarray, alpha: float = 0.5, contour: bool = True
) -> np.ndarray:
    """Blend object colours over a frame: background pixels are left untouched.

    Args:
        frame: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` int object ids (0 = background), coloured with the DAVIS palette.
        alpha: weight of the colour on object pixels.
        contour: draw each object's outline in its full colour (easier to judge boundaries).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if frame.shape[:2] != mask.shape:
        raise ValueError(f"frame {frame.shape[:2]} and mask {mask.shape} differ in size")
    palette = davis_palette()
    ids = np.asarray(mask).astype(np.int64) % 256
    colour = palette[ids].astype(np.float32)
    out = frame.astype(np.float32)
    fg = ids > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colour[fg]
    out = out.round().clip(0, 255).astype(np.uint8)
    if contour:
        for obj in np.unique(ids[fg]):
            binary = (ids == obj).astype(np.uint8)
            contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, contours, -1, tuple(int(c) for c in palette[obj]), 1)
    return out


def contact_sheet(
    frames: Sequence[np.ndarray],
    pred_masks: Sequence[np.ndarray],
    gt_masks: Sequence[np.ndarray] | None = None,
    n: int = 6,
    alpha: float = 0.5,
    thumb_height: int = 160,
    path: str | Path | None = None,
) -> np.ndarray:
    """Grid of ``n`` evenly spaced frames: a prediction row, and a ground-truth row below it.

    Args:
        frames: ``T`` RGB frames ``(H, W, 3)`` uint8.
        pred_masks: ``T`` predicted id maps ``(H, W)``.
        gt_masks: optional ``T`` ground-truth id maps ``(H, W)``.
        n: number of columns (capped at T); the first and last frames are always included.
        alpha: overlay weight.
        thumb_height: each tile is resized to this height (aspect kept).
        path: when given, the sheet is saved there as PNG.

    Returns:
        ``(rows * thumb_height, n * thumb_width, 3)`` uint8 RGB.
    """
    count = len(frames)
    if len(pred_masks) != count or (gt_masks is not None and len(gt_masks) != count):
        raise ValueError("frames, pred_masks and gt_masks must have the same length")
    picks = np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))
    h, w = frames[0].shape[:2]
    size = (max(1, round(w * thumb_height / h)), thumb_height)
    rows = [pred_masks] + ([gt_masks] if gt_masks is not None else [])
    grid = [
        np.concatenate(
            [cv2.resize(overlay_mask(frames[i], masks[i], alpha), size) for i in picks], axis=1
        )
        for masks in rows
    ]
    sheet = np.concatenate(grid, axis=0)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet).save(path)
    return sheet
