"""Box arithmetic on ``(N, 4)`` arrays: format conversion, areas, pairwise IoU.

Convention: rows ``(x1, y1, x2, y2)`` in pixels of the *original* image, with pixel-edge
coordinates: a box covering pixel columns ``a..b`` inclusive has ``x1 = a`` and ``x2 = b + 1``, so
``w = x2 - x1`` and ``h = y2 - y1``. OpenCV's selective search returns ``(x, y, w, h)`` rows, which
map to ``(x, y, x + w, y + h)`` (:func:`xywh_to_xyxy`); the ORL reference code (Jiahao000/ORL)
stores ``(x, y, w, h)`` and computes IoU as ``inter / (w1 h1 + w2 h2 - inter)`` with no ``+1``,
which is exactly :func:`iou_matrix` on the converted boxes. Used by mining (ORL stage 2) and by the
stage-3 box jitter, so it sits below both.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

BoxFormat = Literal["xyxy", "xywh"]


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Convert ``(x, y, w, h)`` rows to ``(x1, y1, x2, y2)``.

    Args:
        boxes: ``(N, 4)`` boxes as ``(x, y, w, h)``.

    Returns:
        ``(N, 4)`` float64 boxes as ``(x1, y1, x2, y2)``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """Convert ``(x1, y1, x2, y2)`` rows to ``(x, y, w, h)``.

    Args:
        boxes: ``(N, 4)`` boxes as ``(x1, y1, x2, y2)``.

    Returns:
        ``(N, 4)`` float64 boxes as ``(x, y, w, h)``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas of ``(N, 4)`` xyxy boxes; degenerate (inverted) boxes have area 0.

    Args:
        boxes: ``(N, 4)`` xyxy boxes.

    Returns:
        ``(N,)`` float64 areas.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection-over-union of two box sets.

    Args:
        a: ``(Na, 4)`` xyxy boxes.
        b: ``(Nb, 4)`` xyxy boxes.

    Returns:
        ``(Na, Nb)`` float64 IoU in ``[0, 1]``; pairs whose union is empty get 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou
