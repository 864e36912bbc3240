"""ORL's RoI filter (ORL paper Sec. 3.1 step (ii), footnote 2); box arithmetic is in ``box_ops``.

The box arithmetic lives in :mod:`correlearn.data.box_ops`, below mining and the stage-3 jitter.

Convention used across ``correlearn.mining``: a box array has shape ``(N, 4)``, dtype float, rows
``(x1, y1, x2, y2)`` in pixels of the *original* image, with pixel-edge coordinates: a box covering
pixel columns ``a..b`` inclusive has ``x1 = a`` and ``x2 = b + 1``, so ``w = x2 - x1`` and
``h = y2 - y1``. OpenCV's selective search returns ``(x, y, w, h)`` rows, which map to
``(x, y, x + w, y + h)`` (:func:`xywh_to_xyxy`); the ORL reference code (Jiahao000/ORL) stores
``(x, y, w, h)`` and computes IoU as ``inter / (w1 h1 + w2 h2 - inter)`` with no ``+1``, which is
exactly :func:`iou_matrix` on the converted boxes.
"""

from __future__ import annotations

import numpy as np

from correlearn.data.box_ops import BoxFormat, iou_matrix, xywh_to_xyxy


def _shape_ok(xyxy: np.ndarray, min_size: float, aspect_range: tuple[float, float]) -> np.ndarray:
    """Rules 1 and 2 of :func:`orl_filter` on ``(N, 4)`` xyxy boxes: an ``(N,)`` bool mask."""
    w = xyxy[:, 2] - xyxy[:, 0]
    h = xyxy[:, 3] - xyxy[:, 1]
    ok = (w > 0) & (h > 0) & (w >= min_size) & (h >= min_size)
    lo, hi = aspect_range
    with np.errstate(divide="ignore", invalid="ignore"):
        # Same two divisions as the reference (w / h > 3 or h / w > 3 rejects).
        ok &= ~((w / h > hi) | (h / w > 1.0 / lo))
    return ok


def orl_filter(
    boxes: np.ndarray,
    min_size: float = 96,
    aspect_range: tuple[float, float] = (1 / 3, 3),
    iou_thresh: float = 0.5,
    max_boxes: int = 100,
    fmt: BoxFormat = "xyxy",
    return_index: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """ORL's RoI filter over selective-search proposals, in proposal order.

    ORL Sec. 3.1 (ii) and footnote 2 ("minimal scale as 96 pixels, the aspect ratio between 1/3 and
    3/1, and the maximal IoU as 0.5"), then "the top 100 proposals"; the rules are those of
    ``box_filter`` in the reference ``openselfsup/datasets/correspondence.py``. Walking the
    proposals in the order given, a box is kept when

    1. ``w >= min_size`` and ``h >= min_size`` (original-image pixels),
    2. ``w / h <= aspect_range[1]`` and ``h / w <= 1 / aspect_range[0]`` (ratios compared the way
       the reference does, so ``1:3`` exactly is kept),
    3. its IoU with every box kept so far is ``<= iou_thresh`` (greedy; ``IoU == 0.5`` is kept).

    The first ``max_boxes`` kept boxes are returned (stopping early is equivalent to the reference's
    cut after the full pass, because a box's fate depends only on earlier kept boxes). If no box
    survives, the first proposal is returned alone, as the reference does ("ensure at least one box
    for each image"). Boxes with ``w <= 0`` or ``h <= 0`` never pass rule 1.

    Args:
        boxes: ``(N, 4)`` proposals in ``fmt``, ordered by the proposal algorithm's ranking.
        min_size: Minimal width and height in pixels.
        aspect_range: ``(lo, hi)`` admissible ``w / h``.
        iou_thresh: Maximal IoU with an already-kept box.
        max_boxes: How many kept boxes to return at most.
        fmt: ``"xyxy"`` or ``"xywh"`` (what selective search and the reference JSON use).
        return_index: Also return the indices of the kept rows.

    Returns:
        ``(M, 4)`` kept boxes in the input format (``M <= max_boxes``; ``M >= 1`` unless
        ``N == 0``), and with ``return_index`` the ``(M,)`` int64 indices into ``boxes``.
    """
    if fmt not in ("xyxy", "xywh"):
        raise ValueError(f"fmt must be 'xyxy' or 'xywh', got {fmt!r}")
    raw = np.asarray(boxes).reshape(-1, 4)
    xyxy = xywh_to_xyxy(raw) if fmt == "xywh" else raw.astype(np.float64)
    ok = _shape_ok(xyxy, min_size, aspect_range)
    kept: list[int] = []
    kept_boxes = np.empty((max_boxes, 4), dtype=np.float64)
    for i in np.flatnonzero(ok):
        if len(kept) >= max_boxes:
            break
        if kept and iou_matrix(xyxy[i], kept_boxes[: len(kept)]).max() > iou_thresh:
            continue
        kept_boxes[len(kept)] = xyxy[i]
        kept.append(int(i))
    if not kept and len(raw):
        kept = [0]
    index = np.asarray(kept, dtype=np.int64)
    out = raw[index]
    return (out, index) if return_index else out
