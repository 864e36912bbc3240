"""Selective-search RoI proposals for ORL stage 2 (ORL paper Sec. 3.1 step (ii)).

The reference (``openselfsup/datasets/selective_search.py`` in Jiahao000/ORL) runs OpenCV's
``createSelectiveSearchSegmentation`` in fast mode on the full-resolution image (RGB converted to
BGR) and stores every proposal. Here the image may first be shrunk so that its long side is
``long_side`` pixels (selective search cost grows faster than linearly with the pixel count) and the
boxes are mapped back to original-image pixels, so that ORL's 96-pixel minimum size still refers to
the original image. ``long_side=None`` is the reference behaviour.

This module imports only numpy and OpenCV, so that spawned workers start quickly.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Literal

import cv2
import numpy as np

from correlearn.data.box_ops import iou_matrix

ImageLike = np.ndarray | str | os.PathLike

try:
    _LIBC = ctypes.CDLL(None)
    _srand = _LIBC.srand
except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
    _srand = None


_RAND_LOCK = threading.Lock()


def _reseed_c_rand(seed: int | None) -> None:
    # OpenCV ranks selective-search regions by ``rand() * level`` (C ``rand``, process-global), so
    # the proposal order depends on how many images the process has seen before. Re-seeding per
    # image makes proposals a pure function of (image, long_side, seed); seed 1 is glibc's start
    # state, i.e. what the reference gets for the first image of a fresh worker.
    if seed is not None and _srand is not None:
        _srand(ctypes.c_uint(seed))


def _load_rgb(image: ImageLike) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    bgr = cv2.imread(os.fspath(image), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {image}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def selective_search(
    img: np.ndarray,
    long_side: int | None,
    mode: Literal["fast", "quality"] = "fast",
    seed: int | None = 1,
) -> np.ndarray:
    """Selective-search proposals of one image, in the algorithm's ranking order.

    Args:
        img: ``(H, W, 3)`` uint8 RGB image.
        long_side: Run on a copy resized (``INTER_AREA``) so that ``max(H, W) == long_side``;
            ``None``, or a value ``>= max(H, W)``, runs at full resolution (the reference behaviour;
            images are never enlarged).
        mode: ``"fast"`` (``switchToSelectiveSearchFast``, what ORL uses) or ``"quality"``.
        seed: Seed for C ``rand`` before the run (OpenCV ranks regions with it); ``None`` leaves the
            process state alone, like the reference.

    Returns:
        ``(N, 4)`` float32 xyxy boxes in original-image pixels (integer-valued: rounded after
        scaling), clipped to ``[0, W] x [0, H]``, in proposal order.
    """
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
    h, w = img.shape[:2]
    work = img
    if long_side is not None and long_side < max(h, w):
        s = long_side / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        work = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    bgr = np.ascontiguousarray(work[:, :, ::-1])
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(bgr)
    if mode == "fast":
        ss.switchToSelectiveSearchFast()
    elif mode == "quality":
        ss.switchToSelectiveSearchQuality()
    else:
        raise ValueError(f"mode must be 'fast' or 'quality', got {mode!r}")
    # C rand() is process-wide: two threads of one process (Prefect's default thread runner maps
    # shard tasks onto threads) would interleave their draws, so the reseed and the run are atomic.
    with _RAND_LOCK:
        _reseed_c_rand(seed)
        rects = np.asarray(ss.process(), dtype=np.float64).reshape(-1, 4)
    sx, sy = w / work.shape[1], h / work.shape[0]
    boxes = np.stack(
        [
            rects[:, 0] * sx,
            rects[:, 1] * sy,
            (rects[:, 0] + rects[:, 2]) * sx,
            (rects[:, 1] + rects[:, 3]) * sy,
        ],
        axis=1,
    )
    boxes = np.round(boxes)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
    return boxes.astype(np.float32)


def _worker_init() -> None:
    # One OpenCV thread per worker: parallelism comes from the pool, and the workers must not
    # oversubscribe the cores they share.
    cv2.setNumThreads(1)


def _propose_one(args: tuple[ImageLike, int | None, str, int | None]) -> np.ndarray:
    image, long_side, mode, seed = args
    return selective_search(_load_rgb(image), long_side, mode=mode, seed=seed)  # type: ignore[arg-type]


def propose_many(
    images: Iterable[ImageLike],
    long_side: int | None,
    processes: int,
    progress: bool = True,
    mode: Literal["fast", "quality"] = "fast",
    seed: int | None = 1,
    total: int | None = None,
    mp_context: str = "spawn",
) -> Iterator[np.ndarray]:
    """Selective search over many images in a process pool, yielding results in input order.

    Args:
        images: ``(H, W, 3)`` uint8 RGB arrays or image paths (paths are decoded in the workers,
            which avoids pickling pixels).
        long_side: See :func:`selective_search`.
        processes: Worker processes; ``<= 1`` runs in this process.
        progress: Show a tqdm bar.
        mode: See :func:`selective_search`.
        seed: See :func:`selective_search`; with a seed the output does not depend on ``processes``.
        total: Length for the progress bar when ``images`` has no ``len``.
        mp_context: Multiprocessing start method; ``"spawn"`` is safe next to torch/FAISS threads.

    Yields:
        ``(N_i, 4)`` float32 xyxy boxes per image, as :func:`selective_search` returns them.
    """
    from tqdm.auto import tqdm

    if total is None and hasattr(images, "__len__"):
        total = len(images)  # type: ignore[arg-type]
    tasks = ((im, long_side, mode, seed) for im in images)
    bar = tqdm(total=total, desc="selective search", unit="img", disable=not progress)
    try:
        if processes <= 1:
            for t in tasks:
                yield _propose_one(t)
                bar.update()
            return
        ctx = mp.get_context(mp_context)
        with ctx.Pool(processes, initializer=_worker_init) as pool:
            for boxes in pool.imap(_propose_one, tasks, chunksize=1):
                yield boxes
                bar.update()
    finally:
        bar.close()


def gt_boxes_from_mask(mask: np.ndarray) -> np.ndarray | None:
    """Tight xyxy box of the non-zero pixels of a mask (pixel-edge convention, see ``boxes``).

    Args:
        mask: ``(H, W)`` array; non-zero is foreground.

    Returns:
        ``(4,)`` float32 ``(x1, y1, x2, y2)`` with ``x2 = last column + 1``, or ``None`` if the mask
        is empty.
    """
    ys, xs = np.nonzero(np.asarray(mask))
    if xs.size == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def recall_at_iou(proposals: np.ndarray, gt_boxes: np.ndarray, thresh: float = 0.5) -> float:
    """Fraction of ground-truth boxes matched by at least one proposal with ``IoU >= thresh``.

    Args:
        proposals: ``(N, 4)`` xyxy proposals.
        gt_boxes: ``(G, 4)`` xyxy ground-truth boxes.
        thresh: IoU threshold.

    Returns:
        Recall in ``[0, 1]``; ``nan`` when there is no ground-truth box.
    """
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if len(gt) == 0:
        return float("nan")
    props = np.asarray(proposals, dtype=np.float64).reshape(-1, 4)
    if len(props) == 0:
        return 0.0
    best = iou_matrix(gt, props).max(axis=1)
    return float(np.mean(best >= thresh))
