"""Write an OTB-layout copy of a DAVIS-layout folder: each sequence's mask box per frame.

    python bin/davis_to_otb.py OUT [--root data/davis-heldout] [--frames 20]

Each sequence becomes ``OUT/<seq>/img/0001.jpg ...`` and ``OUT/<seq>/groundtruth_rect.txt`` (one
1-based ``x,y,w,h`` line per frame: the bounding box of the object's mask; a frame without the
object repeats the last box). This is how the held-out tracking table of docs/evaluation.md was
made.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """1-based ``(x, y, w, h)`` of a boolean mask's bounding box (OTB's convention)."""
    ys, xs = np.nonzero(mask)
    return xs.min() + 1, ys.min() + 1, xs.max() - xs.min() + 1, ys.max() - ys.min() + 1


def convert_sequence(root: Path, seq: str, out: Path, frames: int) -> int:
    """Copy the first ``frames`` frames of ``seq`` and write their boxes; returns frames written."""
    jpgs = sorted((root / "JPEGImages" / "480p" / seq).glob("*.jpg"))[: frames or None]
    (out / seq / "img").mkdir(parents=True, exist_ok=True)
    lines, last = [], None
    for t, jpg in enumerate(jpgs):
        shutil.copy(jpg, out / seq / "img" / f"{t + 1:04d}.jpg")
        mask = np.array(Image.open(root / "Annotations" / "480p" / seq / f"{jpg.stem}.png")) > 0
        last = mask_box(mask) if mask.any() else last
        if last is None:
            raise SystemExit(f"error: {seq}/{jpg.name}: no object in the first frame")
        lines.append(",".join(str(int(v)) for v in last))
    (out / seq / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return len(jpgs)


def main() -> None:
    """Convert every sequence of ``--root`` into ``OUT``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--root", type=Path, default=REPO / "data" / "davis-heldout")
    ap.add_argument("--frames", type=int, default=20, help="first N frames (0: all)")
    args = ap.parse_args()
    seqs = sorted(p.name for p in (args.root / "JPEGImages" / "480p").iterdir())
    for seq in seqs:
        n = convert_sequence(args.root, seq, args.out, args.frames)
        print(f"{seq}: {n} frames -> {args.out / seq}")


if __name__ == "__main__":
    main()
