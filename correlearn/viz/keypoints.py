"""Contact sheets of propagated keypoints: predictions against the ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

GT_COLOUR = (0, 200, 0)
PRED_COLOUR = (230, 30, 30)


def draw_keypoints(frame: np.ndarray, pred: np.ndarray, gt: np.ndarray | None) -> np.ndarray:
    """One frame with GT joints (green), predictions (red) and the error of each as a line.

    Args:
        frame: ``(H, W, 3)`` uint8 RGB.
        pred: ``(J, 2)`` predicted ``(x, y)`` pixels; ``x < 0`` is a lost joint (not drawn).
        gt: ``(J, 2)`` ground truth, or None.
    """
    img = np.ascontiguousarray(frame.copy())
    r = max(1, round(min(img.shape[:2]) / 80))
    for j, p in enumerate(pred):
        if p[0] < 0:
            continue
        if gt is not None:
            g = tuple(int(round(v)) for v in gt[j])
            cv2.line(img, tuple(int(round(v)) for v in p), g, (255, 255, 0), 1)
        cv2.circle(img, tuple(int(round(v)) for v in p), r, PRED_COLOUR, -1)
    if gt is not None:
        for g in gt:
            cv2.circle(img, tuple(int(round(v)) for v in g), r, GT_COLOUR, 1)
    return img


def keypoint_sheet(
    frames: Sequence[np.ndarray],
    pred: np.ndarray,
    gt: np.ndarray | None = None,
    n: int = 6,
    thumb_height: int = 160,
    path: str | Path | None = None,
) -> np.ndarray:
    """A row of ``n`` evenly spaced frames (first and last included) with their joints drawn.

    Args:
        frames: ``T`` RGB frames ``(H, W, 3)`` uint8.
        pred: ``(T, J, 2)`` predicted joints in pixels.
        gt: ``(T, J, 2)`` ground-truth joints, or None.
        n: number of tiles (capped at T).
        thumb_height: tile height (aspect kept).
        path: when given, the sheet is saved there as PNG.

    Returns:
        ``(thumb_height, n * thumb_width, 3)`` uint8 RGB.
    """
    picks = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
    h, w = frames[0].shape[:2]
    size = (max(1, round(w * thumb_height / h)), thumb_height)
    tiles = [
        cv2.resize(draw_keypoints(frames[t], pred[t], None if gt is None else gt[t]), size)
        for t in picks
    ]
    sheet = np.concatenate(tiles, axis=1)
    if path is not None:
        Image.fromarray(sheet).save(path)
    return sheet
