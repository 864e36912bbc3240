"""Tracking and fine-tuning fixtures in the real layouts, generated from ``data/davis-mini``.

The object's mask box per frame becomes an OTB sequence (``<seq>/img/0001.jpg``,
``groundtruth_rect.txt``, 1-based ``x, y, w, h``) or a GOT-10k sequence (``train/list.txt``,
``<seq>/00000001.jpg``, ``groundtruth.txt``, ``cover.label``); frames of each sequence in a class
folder make a fine-tuning set. Import with ``from tests.eval.fixtures_tracking import ...``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.eval.fixtures import DAVIS_MINI, davis_frames

SEPARATORS = {"bear": ",", "dog-agility": "\t", "motorbike": " "}


def mask_box(mask: np.ndarray) -> np.ndarray:
    """1-based ``x, y, w, h`` of a binary mask's bounding box (OTB's convention)."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min() + 1, ys.min() + 1, xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])


def _boxes(masks: list[np.ndarray]) -> np.ndarray:
    boxes, last = [], None
    for m in masks:
        last = mask_box(m > 0) if (m > 0).any() else last
        boxes.append(last)
    return np.stack(boxes).astype(np.float64)


def make_otb(root: Path, seqs=tuple(SEPARATORS), n: int = 6, size=(120, 200)) -> dict:
    """An OTB-layout set; each sequence's boxes use another separator (comma, tab, space).

    Returns:
        ``{seq: boxes (n, 4)}`` as written.
    """
    out = {}
    for seq in seqs:
        frames, masks = davis_frames(seq, n, size)
        img = Path(root) / seq / "img"
        img.mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(img / f"{t + 1:04d}.jpg", quality=95)
        boxes = _boxes(masks)
        sep = SEPARATORS.get(seq, ",")
        lines = [sep.join(str(int(v)) for v in b) for b in boxes]
        (Path(root) / seq / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
        out[seq] = boxes
    return out


def make_got10k(root: Path, seqs=("bear", "motorbike"), n: int = 8, size=(120, 200)) -> dict:
    """A GOT-10k-layout training set (``train/list.txt``; every cover label 8, fully visible).

    The default sequences are the two whose boxes pass the SiamFC pair filter at this size
    (at most half the frame, at least 20 px).
    """
    base = Path(root) / "train"
    out = {}
    for seq in seqs:
        frames, masks = davis_frames(seq, n, size)
        d = base / seq
        d.mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(d / f"{t + 1:08d}.jpg", quality=95)
        boxes = _boxes(masks) - np.array([1, 1, 0, 0])  # GOT-10k boxes are 0-based
        (d / "groundtruth.txt").write_text(
            "\n".join(",".join(f"{v:.4f}" for v in b) for b in boxes) + "\n"
        )
        (d / "cover.label").write_text("\n".join("8" for _ in boxes) + "\n")
        out[seq] = boxes
    (base / "list.txt").write_text("\n".join(seqs) + "\n")
    return out


def make_class_folders(root: Path, per_class: int = 6, size=(48, 64), step: int = 4) -> list:
    """Class folders ``<seq>/<frame>.jpg``: every ``step``-th frame of each davis-mini sequence."""
    names = sorted(p.name for p in (DAVIS_MINI / "JPEGImages" / "480p").iterdir())
    for seq in names:
        frames, _ = davis_frames(seq, per_class, size, step=step)
        (Path(root) / seq).mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(Path(root) / seq / f"{t:05d}.jpg", quality=95)
    return names
