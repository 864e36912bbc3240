"""ORL's intra-RoI box jitter (ORL paper Sec. 3.1 "Stage 3", footnote 3).

"(i) a random box center shifting within 50% of its width and height, (ii) a random area scaling
between 50% and 200% of the original box, and (iii) a random aspect ratio between 1/2 and 2/1."
The distributions follow the reference ``aug_bbox`` (``openselfsup/datasets/orl.py``): shift uniform
in ``[-shift, shift] * (w, h)``, area factor uniform in ``area_range``, aspect ratio ``w / h``
log-uniform in ``aspect_range``.

The paper does not say what happens at the image border. ``mode="clip"`` (default) clips the
jittered box to the image and keeps it at least 1 px wide and high. ``mode="reject"`` is the
reference: integer boxes, up to ``attempts`` draws until the box lies inside the image and has
IoU > ``iou_thresh`` with the original, else the original box is returned unchanged.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from correlearn.data.box_ops import iou_matrix


def sample_jitter(
    box_xyxy: np.ndarray,
    rng: np.random.Generator,
    shift: float = 0.5,
    area_range: tuple[float, float] = (0.5, 2.0),
    aspect_range: tuple[float, float] = (0.5, 2.0),
) -> np.ndarray:
    """Draw one jittered box, before any clipping (ORL Sec. 3.1, footnote 3).

    Args:
        box_xyxy: ``(4,)`` source box ``(x1, y1, x2, y2)`` with positive width and height.
        rng: Random generator (three uniform draws per call).
        shift: Maximal centre shift as a fraction of the source width / height.
        area_range: Range of the area factor ``new_area / area`` (uniform).
        aspect_range: Range of the new ``w / h`` (log-uniform).

    Returns:
        ``(4,)`` float64 xyxy box whose centre moved by at most ``shift * (w, h)``, whose area is
        ``area * U(area_range)`` and whose ``w / h`` lies in ``aspect_range``; it may leave the
        image.
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box_xyxy, dtype=np.float64).reshape(4))
    w, h = x2 - x1, y2 - y1
    if w <= 0 or h <= 0:
        raise ValueError(f"box must have positive width and height, got {box_xyxy}")
    area = rng.uniform(*area_range) * w * h
    ratio = math.exp(rng.uniform(math.log(aspect_range[0]), math.log(aspect_range[1])))
    dx, dy = rng.uniform(-shift, shift, size=2)
    cx, cy = 0.5 * (x1 + x2) + dx * w, 0.5 * (y1 + y2) + dy * h
    nw, nh = math.sqrt(area * ratio), math.sqrt(area / ratio)
    return np.array([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2])


def clip_box(box_xyxy: np.ndarray, img_w: int, img_h: int, min_size: float = 1.0) -> np.ndarray:
    """Clip a box to ``[0, img_w] x [0, img_h]`` keeping at least ``min_size`` px per side.

    Args:
        box_xyxy: ``(4,)`` xyxy box.
        img_w: Image width in pixels (``>= min_size``).
        img_h: Image height in pixels (``>= min_size``).
        min_size: Minimal width and height after clipping.

    Returns:
        ``(4,)`` float64 clipped xyxy box.
    """
    b = np.asarray(box_xyxy, dtype=np.float64).reshape(4).copy()
    for lo, hi, size in ((0, 2, img_w), (1, 3, img_h)):
        b[lo], b[hi] = np.clip(b[lo], 0, size), np.clip(b[hi], 0, size)
        if b[hi] - b[lo] < min_size:
            # A sliver (or a box entirely past the border) grows back to min_size inside the image.
            c = np.clip(0.5 * (b[lo] + b[hi]), min_size / 2, size - min_size / 2)
            b[lo], b[hi] = c - min_size / 2, c + min_size / 2
    return b


def jitter_box(
    box_xyxy: np.ndarray,
    rng: np.random.Generator,
    img_w: int,
    img_h: int,
    shift: float = 0.5,
    area_range: tuple[float, float] = (0.5, 2.0),
    aspect_range: tuple[float, float] = (0.5, 2.0),
    mode: Literal["clip", "reject"] = "clip",
    attempts: int = 200,
    iou_thresh: float = 0.5,
) -> np.ndarray:
    """Spatially jitter an RoI for ORL's intra-RoI branch (ORL Sec. 3.1 Stage 3).

    Args:
        box_xyxy: ``(4,)`` source box in image pixels.
        rng: Random generator; the output is a pure function of its state and the arguments.
        img_w: Image width in pixels.
        img_h: Image height in pixels.
        shift: See :func:`sample_jitter`.
        area_range: See :func:`sample_jitter`.
        aspect_range: See :func:`sample_jitter`.
        mode: ``"clip"``: one draw clipped to the image, at least 1 px per side. ``"reject"``: the
            reference ``aug_bbox`` (integer boxes, redraw until inside the image and IoU with the
            source ``> iou_thresh``, source box after ``attempts`` failures).
        attempts: Draws allowed in ``"reject"`` mode (reference: 200).
        iou_thresh: IoU with the source that a draw must exceed in ``"reject"`` mode (reference:
            0.5).

    Returns:
        ``(4,)`` float64 xyxy box inside ``[0, img_w] x [0, img_h]``.
    """
    if mode == "clip":
        return clip_box(sample_jitter(box_xyxy, rng, shift, area_range, aspect_range), img_w, img_h)
    if mode != "reject":
        raise ValueError(f"mode must be 'clip' or 'reject', got {mode!r}")
    src = np.asarray(box_xyxy, dtype=np.float64).reshape(4)
    for _ in range(attempts):
        b = sample_jitter(src, rng, shift, area_range, aspect_range)
        # Reference rounding: integer size first, then the integer corner from the centre.
        w, h = round(b[2] - b[0]), round(b[3] - b[1])
        x, y = round(0.5 * (b[0] + b[2]) - 0.5 * w), round(0.5 * (b[1] + b[3]) - 0.5 * h)
        cand = np.array([x, y, x + w, y + h], dtype=np.float64)
        inside = x >= 0 and y >= 0 and x + w <= img_w and y + h <= img_h and w > 0 and h > 0
        if inside and iou_matrix(cand, src)[0, 0] > iou_thresh:
            return cand
    return src.copy()
