"""DAVIS region (J) and boundary (F) measures, as the DAVIS 2017 evaluation toolkit defines them.

Reference: Perazzi et al., "A Benchmark Dataset and Evaluation Methodology for Video Object
Segmentation" (CVPR 2016) Sec. 3, and the public toolkit davisvideochallenge/davis2017-evaluation
(``davis2017/metrics.py``, ``utils.db_statistics``, ``evaluation.py``), re-implemented here with
numpy/cv2 only. Semi-supervised task: the first and last frames are not scored; the objects of a
sequence are ids ``1..max(first GT frame)``; J&F-Mean = (mean over all objects of J-mean + mean over
all objects of F-mean) / 2. Scores are fractions in [0, 1], as in the toolkit's CSV.

Multi-object paths, as the toolkit has them (``DAVIS.get_all_masks``, ``Results.read_masks``,
``_evaluate_semisupervised``): an object that vanishes scores J = F = 1 on the frames where both
GT and prediction are empty and 0 where only one of them has it; an id below ``max(first frame)``
that is absent from the first frame is still an object (a propagated prediction can never contain
it, so it scores 0 where it appears); an id above ``max(first frame)`` is not scored; a predicted
id above the object count is an error; a sequence without any object in its first frame has no
object to score and contributes nothing. Per-object means are keyed ``<seq>_<id>`` as in the
toolkit's per-sequence CSV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

BOUNDARY_TH = 0.008  # fraction of the image diagonal (toolkit default ``bound_th``)


def davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL VOC colour map: ``(256, 3)`` uint8, id 1 is dark red, 255 is void."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def read_mask(path: str | Path) -> np.ndarray:
    """Read a DAVIS mask PNG as object ids, ``(H, W)`` int64.

    Palette PNGs (DAVIS 2017) hold object ids; 255 is void and becomes background, as the toolkit's
    loader does. Greyscale masks whose values are only {0, 255} (DAVIS 2016: one object) map 255 to
    object 1; other greyscale masks are read as ids.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    with Image.open(path) as im:
        if im.mode == "P":
            arr = np.array(im).astype(np.int64)
            arr[arr == 255] = 0
            return arr
        if im.mode not in ("L", "LA", "I", "I;16", "1"):
            raise ValueError(f"{path}: mask mode {im.mode!r} is neither palette nor greyscale")
        arr = np.array(im.getchannel(0) if im.mode == "LA" else im).astype(np.int64)
    values = np.unique(arr)
    if np.all(np.isin(values, (0, 255))):
        return (arr == 255).astype(np.int64)
    arr[arr == 255] = 0
    return arr


def db_eval_iou(gt: np.ndarray, pred: np.ndarray) -> float:
    """Region similarity J: IoU of two binary masks; 1 when both are empty (toolkit convention).

    Args:
        gt: ``(H, W)`` binary ground-truth mask of one object.
        pred: ``(H, W)`` binary predicted mask of the same object.
    """
    gt, pred = gt.astype(bool), pred.astype(bool)
    union = np.count_nonzero(gt | pred)
    if union == 0:
        return 1.0
    return np.count_nonzero(gt & pred) / union


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary map of a binary mask (D. Martin's seg2bmap, as in the toolkit).

    A pixel is a boundary pixel when it differs from its east, south or south-east neighbour, so the
    boundary sits half a pixel towards the origin of the true edge; the last row/column only compare
    along the border, and the bottom-right pixel is never a boundary.

    Args:
        seg: ``(H, W)`` binary mask.

    Returns:
        ``(H, W)`` bool boundary map.
    """
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def _disk(radius: int) -> np.ndarray:
    """skimage.morphology.disk: the pixels with x^2 + y^2 <= radius^2, as a uint8 kernel."""
    grid = np.arange(-radius, radius + 1)
    return ((grid[None, :] ** 2 + grid[:, None] ** 2) <= radius**2).astype(np.uint8)


def boundary_tolerance(shape: Sequence[int], bound_th: float = BOUNDARY_TH) -> int:
    """Matching distance in pixels: ``bound_th`` itself if >= 1, else ceil(bound_th * diagonal)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def db_eval_boundary(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUNDARY_TH) -> float:
    """Boundary measure F: F-measure of boundary pixels matched within a disk (toolkit f_measure).

    Empty boundaries follow the toolkit: none predicted but some in GT -> P=1, R=0; some predicted
    but none in GT -> P=0, R=1; both empty -> P=R=1 (F=1); F=0 when P+R=0.

    Args:
        gt: ``(H, W)`` binary ground-truth mask of one object.
        pred: ``(H, W)`` binary predicted mask of the same object.
        bound_th: tolerance as a fraction of the image diagonal (or pixels when >= 1).
    """
    kernel = _disk(boundary_tolerance(gt.shape, bound_th))
    fg_b = seg2bmap(pred)
    gt_b = seg2bmap(gt)
    n_fg, n_gt = np.count_nonzero(fg_b), np.count_nonzero(gt_b)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        fg_dil = cv2.dilate(fg_b.astype(np.uint8), kernel).astype(bool)
        gt_dil = cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool)
        precision = np.count_nonzero(fg_b & gt_dil) / n_fg
        recall = np.count_nonzero(gt_b & fg_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def db_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, recall (fraction > 0.5) and decay of one object's per-frame scores (toolkit utils).

    Decay splits the frames into 4 bins at ``round(linspace(1, n, 5)) - 1`` (bins share their edge
    frames) and returns mean(first bin) - mean(last bin). The toolkit casts the bin edges to uint8,
    which wraps for sequences over 255 frames; plain ints are used here (identical below that).

    Args:
        values: ``(n_frames,)`` per-frame J or F of one object.
    """
    values = np.asarray(values, dtype=np.float64)
    mean = float(np.nanmean(values))
    recall = float(np.nanmean(values > 0.5))
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(int)
    bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
    decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


def _score_frames(
    preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], n_objects: int
) -> dict[str, np.ndarray]:
    """J and F for objects ``1..n_objects`` over aligned frames: ``(n_objects, n_frames)`` each."""
    j = np.zeros((n_objects, len(gts)))
    f = np.zeros((n_objects, len(gts)))
    for t, (pred, gt) in enumerate(zip(preds, gts, strict=True)):
        if pred.shape != gt.shape:
            raise ValueError(f"frame {t}: prediction {pred.shape} and GT {gt.shape} differ in size")
        for k in range(n_objects):
            j[k, t] = db_eval_iou(gt == k + 1, pred == k + 1)
            f[k, t] = db_eval_boundary(gt == k + 1, pred == k + 1)
    return {"J": j, "F": f, "object_ids": np.arange(1, n_objects + 1)}


def evaluate_sequence(
    pred_masks: Sequence[np.ndarray], gt_masks: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """Per-object, per-frame J and F of one sequence (semi-supervised: first and last frames out).

    Args:
        pred_masks: ``T`` predicted id maps ``(H, W)`` int (entries 0 and T-1 are ignored).
        gt_masks: ``T`` ground-truth id maps ``(H, W)`` int; objects are ``1..max(gt_masks[0])``.

    Returns:
        ``{"J": (n_objects, T-2), "F": (n_objects, T-2), "object_ids": (n_objects,)}``.
    """
    if len(pred_masks) != len(gt_masks):
        raise ValueError(f"{len(pred_masks)} predictions for {len(gt_masks)} GT frames")
    if len(gt_masks) < 3:
        raise ValueError("a sequence needs at least 3 frames (first and last are not scored)")
    n_objects = int(np.max(gt_masks[0]))
    preds = [np.asarray(p) for p in pred_masks[1:-1]]
    for t, p in enumerate(preds, start=1):
        if p.size and p.max() > n_objects:
            raise ValueError(f"frame {t}: predicted id {p.max()} > {n_objects} objects in GT")
    return _score_frames(preds, [np.asarray(g) for g in gt_masks[1:-1]], n_objects)


def _read_sequence(
    pred_dir: Path, gt_dir: Path, seq: str, max_frames: int | None
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Scored frames (first and last left out) of one sequence and its object count."""
    gt_files = sorted((gt_dir / seq).glob("*.png"))[:max_frames]
    if len(gt_files) < 3:
        raise ValueError(f"{gt_dir / seq}: needs at least 3 annotated frames")
    n_objects = int(read_mask(gt_files[0]).max())
    gts, preds = [], []
    for gt_file in gt_files[1:-1]:
        pred_file = pred_dir / seq / gt_file.name
        if not pred_file.is_file():
            raise FileNotFoundError(f"missing prediction: {pred_file}")
        pred = read_mask(pred_file)
        if pred.max() > n_objects:
            raise ValueError(f"{pred_file}: id {pred.max()} > {n_objects} objects in GT")
        gt = read_mask(gt_file)
        if pred.shape != gt.shape:
            raise ValueError(f"{pred_file}: size {pred.shape} differs from GT {gt.shape}")
        preds.append(pred)
        gts.append(gt)
    return preds, gts, n_objects


def _means(stats: dict[str, list[float]]) -> dict[str, object]:
    """Dataset means over all objects of the per-object mean, recall and decay of J and F."""
    names = {"M": "mean", "R": "recall", "D": "decay"}
    out: dict[str, object] = {
        f"{m}_{names[k]}": float(np.mean(stats[m + k])) for k in "MRD" for m in "JF"
    }
    out["JF_mean"] = (out["J_mean"] + out["F_mean"]) / 2
    return out


def evaluate_dataset(
    pred_dir: str | Path,
    gt_dir: str | Path,
    sequences: Sequence[str],
    max_frames: int | None = None,
) -> dict[str, object]:
    """DAVIS semi-supervised J&F over sequences read from PNGs in DAVIS layout.

    Args:
        pred_dir: folder with ``<seq>/<frame>.png`` predictions (palette or {0,255} greyscale).
        gt_dir: folder with ``<seq>/<frame>.png`` annotations (e.g. ``Annotations/480p``); its file
            names define the frames; predictions are needed for all but the first and last.
        sequences: sequence names.
        max_frames: score only the first N annotated frames of each sequence (the last of them
            is then the excluded last frame), for runs that propagated a prefix.

    Returns:
        ``JF_mean, J_mean, F_mean, J_recall, F_recall, J_decay, F_decay`` (means over all objects of
        all sequences), ``per_sequence: {seq: {J_mean, F_mean, JF_mean}}`` (means over the
        sequence's objects), ``per_object: {"<seq>_<id>": {J_mean, F_mean, JF_mean}}`` (the
        toolkit's per-object table) and ``unscored_sequences`` (no object in the first frame).

    Raises:
        ValueError: no sequence has an object to score, or a file is inconsistent (see above).
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    stats: dict[str, list[float]] = {k: [] for k in ("JM", "JR", "JD", "FM", "FR", "FD")}
    per_sequence: dict[str, dict[str, float]] = {}
    per_object: dict[str, dict[str, float]] = {}
    unscored: list[str] = []
    for seq in sequences:
        preds, gts, n_objects = _read_sequence(pred_dir, gt_dir, seq, max_frames)
        if n_objects == 0:
            unscored.append(seq)
            continue
        scores = _score_frames(preds, gts, n_objects)
        for k in range(n_objects):
            for name in ("J", "F"):
                for stat, value in zip("MRD", db_statistics(scores[name][k]), strict=True):
                    stats[name + stat].append(value)
            jm, fm = stats["JM"][-1], stats["FM"][-1]
            per_object[f"{seq}_{k + 1}"] = {"J_mean": jm, "F_mean": fm, "JF_mean": (jm + fm) / 2}
        jm, fm = float(np.mean(stats["JM"][-n_objects:])), float(np.mean(stats["FM"][-n_objects:]))
        per_sequence[seq] = {"J_mean": jm, "F_mean": fm, "JF_mean": (jm + fm) / 2}
    if not per_sequence:
        raise ValueError(f"{gt_dir}: no sequence has an object in its first GT frame")
    out = {**_means(stats), "per_sequence": per_sequence, "per_object": per_object}
    return {**out, "unscored_sequences": unscored}
