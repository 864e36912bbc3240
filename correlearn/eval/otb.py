"""OTB and GOT-10k readers and the OTB one-pass evaluation (precision at 20 px, success AUC).

Layouts (as the got10k toolkit reads them, ``got10k/datasets/otb.py`` and ``got10k.py``):

- OTB: ``<root>/<seq>/img/*.jpg`` and ``<root>/<seq>/groundtruth_rect.txt``, one 1-based
  ``x, y, w, h`` box per frame, separated by commas, tabs or spaces. A sequence with two targets
  has ``groundtruth_rect.1.txt`` and ``.2.txt`` (Jogging, Skating2): they become ``<seq>.1`` and
  ``<seq>.2``; an empty file is skipped. The five sequences whose annotation covers only part of
  the frames (David 300-770, Football1, Freeman3, Freeman4, Diving) are cut as the toolkit does.
- GOT-10k: ``<root>/<subset>/list.txt`` naming sequence folders with ``*.jpg`` frames,
  ``groundtruth.txt`` (comma-separated ``x, y, w, h``) and optionally ``cover.label`` (visible
  ratio in 0..8), which the SiamFC pair sampler uses.

Metrics are the toolkit's ``ExperimentOTB.report``: the first predicted box is the ground truth,
success = fraction of frames with IoU > t for t in ``linspace(0, 1, 21)`` (score = its mean, the
AUC), precision = fraction with centre error <= t px for t = 0..50 (score = the value at 20 px);
the dataset curves are the means of the per-sequence curves.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from correlearn.data.sources import DataError

N_IOU_BINS = 21
N_CE_BINS = 51
PRECISION_PX = 20
# got10k/datasets/otb.py: sequences whose annotation covers a sub-range of img/ (1-based, inclusive).
OTB_FRAME_RANGES = {
    "david": (300, 770),
    "football1": (1, 74),
    "freeman3": (1, 460),
    "freeman4": (1, 283),
    "diving": (1, 215),
}


@dataclass
class TrackSequence:
    """One annotated sequence.

    Attributes:
        name: sequence name (``Jogging.1`` for a second target).
        frames: image paths in frame order.
        boxes: (T, 4) ``x, y, w, h`` ground truth, as written in the file.
        cover: (T,) visible ratio 0..8 (GOT-10k ``cover.label``), None when absent.
        labels: the annotation files read for it (they enter an evaluation's key with the frames).
    """

    name: str
    frames: list[Path]
    boxes: np.ndarray
    cover: np.ndarray | None = field(default=None)
    labels: list[Path] = field(default_factory=list)


def _natural(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def parse_boxes(text: str, source: str | Path) -> np.ndarray:
    """``x, y, w, h`` rows separated by commas, tabs or spaces -> (T, 4) float64.

    Raises:
        DataError: a row without 4 numbers (the message names ``source`` and the line).
    """
    rows = [ln for ln in text.replace(",", " ").splitlines() if ln.strip()]
    try:
        boxes = np.loadtxt(io.StringIO("\n".join(rows)), ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{source}: not a table of boxes ({exc})") from None
    if boxes.shape[1] != 4:
        raise DataError(f"{source}: {boxes.shape[1]} numbers per line, expected x, y, w, h")
    return boxes


def _otb_targets(seq_dir: Path) -> list[tuple[str, Path]]:
    files = sorted(seq_dir.glob("groundtruth*.txt"))
    files = [f for f in files if f.read_text().strip()]
    if len(files) == 1:
        return [(seq_dir.name, files[0])]
    return [(f"{seq_dir.name}.{i + 1}", f) for i, f in enumerate(files)]


def read_otb(root: str | Path, sequences: list[str] | None = None) -> list[TrackSequence]:
    """Every annotated sequence under an OTB root (or only ``sequences``, in that order).

    Raises:
        DataError: no sequence, an unknown name, or a frame count that differs from the boxes'.
    """
    root = Path(root)
    dirs = sorted(p for p in root.iterdir() if (p / "img").is_dir())
    out = []
    for d in dirs:
        frames = sorted((d / "img").glob("*.jpg"), key=_natural)
        for name, ann in _otb_targets(d):
            boxes = parse_boxes(ann.read_text(), ann)
            lo, hi = OTB_FRAME_RANGES.get(d.name.lower(), (1, len(frames)))
            seq_frames = frames[lo - 1 : hi]
            if len(seq_frames) != len(boxes):
                raise DataError(
                    f"{ann}: {len(boxes)} boxes but {len(seq_frames)} frames in {d / 'img'}"
                )
            out.append(TrackSequence(name, seq_frames, boxes, labels=[ann]))
    return _select(out, sequences, root)


def read_got10k(
    root: str | Path, subset: str = "train", sequences: list[str] | None = None
) -> list[TrackSequence]:
    """GOT-10k sequences of ``<root>/<subset>`` listed in its ``list.txt`` (or all folders)."""
    base = Path(root) / subset
    listing = base / "list.txt"
    if listing.is_file():
        names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    else:
        names = sorted(p.name for p in base.iterdir() if (p / "groundtruth.txt").is_file())
    out = []
    for name in names:
        d = base / name
        ann = d / "groundtruth.txt"
        if not ann.is_file():
            raise DataError(f"{ann}: missing (listed in {listing})")
        frames = sorted(d.glob("*.jpg"), key=_natural)
        boxes = parse_boxes(ann.read_text(), ann)
        if len(frames) != len(boxes):
            raise DataError(f"{ann}: {len(boxes)} boxes but {len(frames)} frames in {d}")
        cover_file = d / "cover.label"
        has_cover = cover_file.is_file()
        cover = np.loadtxt(cover_file, ndmin=1) if has_cover else None
        labels = [ann, cover_file] if has_cover else [ann]
        out.append(TrackSequence(name, frames, boxes, cover, labels))
    return _select(out, sequences, base)


def _select(seqs: list[TrackSequence], names: list[str] | None, root: Path) -> list:
    if names is not None:
        by_name = {s.name: s for s in seqs}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise DataError(f"{root}: unknown sequence(s) {missing}; have {sorted(by_name)}")
        seqs = [by_name[n] for n in names]
    if not seqs:
        raise DataError(
            f"{root}: no annotated sequence found; expected an OTB folder (<seq>/img/*.jpg, "
            "<seq>/groundtruth_rect.txt) or a GOT-10k subset (list.txt, <seq>/*.jpg, "
            "<seq>/groundtruth.txt)"
        )
    return seqs


def center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre distance in pixels; ``pred``, ``gt``: (T, 4) ``x, y, w, h`` -> (T,)."""
    c1 = pred[:, :2] + (pred[:, 2:] - 1) / 2
    c2 = gt[:, :2] + (gt[:, 2:] - 1) / 2
    return np.sqrt(((c1 - c2) ** 2).sum(axis=1))


def rect_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Overlap of ``x, y, w, h`` boxes (T, 4) and (T, 4) -> (T,) in [0, 1] (toolkit's rect_iou)."""
    x1 = np.maximum(pred[:, 0], gt[:, 0])
    y1 = np.maximum(pred[:, 1], gt[:, 1])
    x2 = np.minimum(pred[:, 0] + pred[:, 2], gt[:, 0] + gt[:, 2])
    y2 = np.minimum(pred[:, 1] + pred[:, 3], gt[:, 1] + gt[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def curves(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Success (21 IoU thresholds) and precision (0..50 px) curves of one sequence.

    Args:
        pred: (T, 4) tracked boxes; row 0 is replaced by the ground truth, as the toolkit does.
        gt: (T, 4) ground truth.

    Returns:
        ``(success (21,), precision (51,))``.
    """
    pred = np.array(pred, dtype=np.float64)
    pred[0] = gt[0]
    ious = rect_iou(pred, gt)[:, None]
    errs = center_error(pred, gt)[:, None]
    success = (ious > np.linspace(0, 1, N_IOU_BINS)[None]).mean(axis=0)
    precision = (errs <= np.arange(N_CE_BINS)[None]).mean(axis=0)
    return success, precision


def otb_report(results: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Per-sequence and mean scores of ``{seq: (pred, gt)}`` (percentages, as VFS Table 8).

    Returns:
        ``{"precision", "success", "success_curve", "precision_curve", "per_sequence":
        {seq: {"precision", "success"}}}``; the mean curves average the sequences' curves.
    """
    per, succ, prec = {}, [], []
    for name, (pred, gt) in results.items():
        s, p = curves(pred, gt)
        succ.append(s)
        prec.append(p)
        per[name] = {"precision": 100 * float(p[PRECISION_PX]), "success": 100 * float(s.mean())}
    s_mean, p_mean = np.mean(succ, axis=0), np.mean(prec, axis=0)
    return {
        "precision": 100 * float(p_mean[PRECISION_PX]),
        "success": 100 * float(s_mean.mean()),
        "success_curve": s_mean.tolist(),
        "precision_curve": p_mean.tolist(),
        "per_sequence": per,
    }


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file; an unreadable file is a :class:`DataError`."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: cannot read image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
