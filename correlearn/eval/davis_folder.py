"""A DAVIS-layout folder checked before an evaluation reads it.

``<root>/JPEGImages/480p/<seq>/<frame>.jpg`` (``.jpeg`` and ``.png`` frames are accepted too, in any
case) and ``<root>/Annotations/480p/<seq>/<frame>.png`` (palette object ids, or 0/255 greyscale for
one object). :func:`check_davis` reads headers and file tails only, so it costs well under a second
on DAVIS 2017 val: a wrong folder is one :class:`DataError` naming the file before any work starts,
and a stray file that is not a frame is skipped and named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from correlearn.data.sources import DataError
from correlearn.eval.davis_metrics import read_mask

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
#: More distinct ids than this in a first mask is not a DAVIS mask (antialiased edges, or ids
#: written as colours): the toolkit would score each value as an object.
MAX_OBJECTS = 32
LAYOUT = "a DAVIS folder: JPEGImages/480p/<seq>/<frame>.jpg and Annotations/480p/<seq>/<frame>.png"


@dataclass(frozen=True)
class DavisSequence:
    """One checked sequence: its frames (the first ``max_frames``) and their masks' paths."""

    name: str
    frames: list[Path]
    masks: list[Path]
    stray: list[Path] = field(default_factory=list)


#: The official sequence lists, first found wins (DAVIS 2017 trainval ships both).
SEQUENCE_LISTS = ("ImageSets/2017/val.txt", "ImageSets/2016/val.txt")


def sequence_list(root: Path) -> tuple[list[str], Path] | None:
    """``(sequences, list file)`` of the first official val list under ``root``, else None.

    DAVIS evaluates its val split; scoring every folder of a trainval root would mix in training
    sequences. Each line of the list is a sequence name.
    """
    for rel in SEQUENCE_LISTS:
        path = root / rel
        if path.is_file():
            names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
            return names, path
    return None


def _natural(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def frame_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """``(frames, stray)``: the image files of a sequence folder in frame order, and the rest."""
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=_natural)
    frames = [p for p in files if p.suffix.lower() in FRAME_SUFFIXES]
    stray = [p for p in files if p.suffix.lower() not in FRAME_SUFFIXES]
    return frames, stray


def _complete(data_tail: bytes, suffix: str) -> bool:
    if suffix in (".jpg", ".jpeg"):
        return data_tail.rstrip(b"\0").endswith(b"\xff\xd9")  # EOI; some writers pad after it
    if suffix == ".png":
        return b"IEND" in data_tail
    return True


def _header(path: Path, what: str) -> tuple[tuple[int, int], str]:
    """``((W, H), mode)`` of an image file; empty, truncated or unreadable is a DataError."""
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: empty {what} file (0 bytes)")
    with path.open("rb") as f:
        f.seek(max(0, size - 64))
        tail = f.read()
    if not _complete(tail, path.suffix.lower()):
        raise DataError(f"{path}: truncated {what} (the file ends before its image does)")
    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable {what} ({exc})") from None


def _first_mask_objects(path: Path) -> int:
    try:
        ids = np.unique(read_mask(path))
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a DAVIS mask ({exc})") from None
    ids = ids[ids > 0]
    if ids.size == 0:
        raise DataError(f"{path}: the first mask has no object, so there is nothing to propagate")
    if ids.size > MAX_OBJECTS or ids.max() > MAX_OBJECTS:
        raise DataError(
            f"{path}: {ids.size} object ids up to {ids.max()} in the first mask; DAVIS masks hold "
            f"ids 1..N (palette) or 0/255 (greyscale), not antialiased edges or colours"
        )
    return int(ids.size)


def check_sequence(root: Path, seq: str, max_frames: int | None = None) -> DavisSequence:
    """Check one sequence's frames and masks (see the module docstring).

    Raises:
        DataError: no frames, an empty, truncated or unreadable frame or mask, a frame of another
            size than the sequence's first, a mask of another size than its frame, an RGB mask,
            a missing mask, or a first mask with no object or with too many ids.
    """
    folder = root / "JPEGImages" / "480p" / seq
    frames, stray = frame_files(folder)
    frames = frames[:max_frames]
    if not frames:
        raise DataError(f"{folder}: no frames (.jpg, .jpeg or .png)")
    masks = [root / "Annotations" / "480p" / seq / f"{p.stem}.png" for p in frames]
    first_size = None
    for frame, mask in zip(frames, masks, strict=True):
        size, _ = _header(frame, "frame")
        first_size = first_size or size
        if size != first_size:
            w, h = first_size
            raise DataError(
                f"{frame}: {size[0]}x{size[1]}, but {frames[0].name} is {w}x{h}; "
                "a sequence has one frame size"
            )
        if not mask.is_file():
            raise DataError(f"{mask}: missing; every scored frame needs its annotation")
        msize, mode = _header(mask, "mask")
        if mode not in ("P", "L", "LA", "I", "I;16", "1"):
            raise DataError(f"{mask}: mode {mode}; DAVIS masks are palette or greyscale PNGs")
        if msize != size:
            raise DataError(f"{mask}: {msize[0]}x{msize[1]}, but its frame is {size[0]}x{size[1]}")
    _first_mask_objects(masks[0])
    return DavisSequence(seq, frames, masks, stray)


def check_davis(
    root: Path, sequences: list[str] | None = None, max_frames: int | None = None
) -> list[DavisSequence]:
    """Check a DAVIS-layout folder for label propagation; the sequences in name order.

    Args:
        root: the folder holding ``JPEGImages/480p`` and ``Annotations/480p``.
        sequences: only these (each must exist); default every sequence folder.
        max_frames: check only the frames that will be read.

    Raises:
        DataError: the layout is wrong (naming what is missing) or a file is (see
            :func:`check_sequence`).
    """
    for part in ("JPEGImages", "Annotations"):
        if not (root / part / "480p").is_dir():
            raise DataError(f"{root / part / '480p'}: missing; expected {LAYOUT}")
    found = sorted(p.name for p in (root / "JPEGImages" / "480p").iterdir() if p.is_dir())
    names = found if sequences is None else list(sequences)
    unknown = [s for s in names if s not in found]
    if unknown:
        raise DataError(f"{root / 'JPEGImages' / '480p'}: no sequence folder {unknown}")
    if not names:
        raise DataError(f"{root / 'JPEGImages' / '480p'}: no sequence folders; expected {LAYOUT}")
    for seq in names:
        if not (root / "Annotations" / "480p" / seq).is_dir():
            raise DataError(f"{root / 'Annotations' / '480p' / seq}: missing; expected {LAYOUT}")
    return [check_sequence(root, seq, max_frames) for seq in names]
