"""Evaluation fixtures in the real datasets' layouts, generated from the embedded DAVIS masks.

No evaluation set can be downloaded here, so each builder writes a tiny copy of one in its exact
layout, with labels derived from ``data/davis-mini`` masks: two DAVIS objects composited for
multi-object DAVIS 2017, mask extremes and band centroids as JHMDB joints, a mask split into
regions as VIP parts, and a DAVIS-derived VOC07 classification set. Frames are downscaled so the
end-to-end tests take seconds. Import with ``from tests.eval.fixtures import ...``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from correlearn.eval.davis_metrics import read_mask
from correlearn.eval.label_propagation import write_davis_masks

DAVIS_MINI = Path(__file__).resolve().parents[2] / "data" / "davis-mini"


def davis_frames(seq: str, n: int, size: tuple[int, int], step: int = 1) -> tuple[list, list]:
    """``n`` frames ``(H, W, 3)`` uint8 and masks ``(H, W)`` int64 of a davis-mini sequence.

    Frames 0, step, 2 step, ...; ``size`` is ``(H, W)``; frames are area-resized, masks
    nearest-resized.
    """
    jpgs = sorted((DAVIS_MINI / "JPEGImages" / "480p" / seq).glob("*.jpg"))[: n * step : step]
    frames, masks = [], []
    for jpg in jpgs:
        img = np.array(Image.open(jpg).convert("RGB"))
        frames.append(cv2.resize(img, size[::-1], interpolation=cv2.INTER_AREA))
        mask = read_mask(DAVIS_MINI / "Annotations" / "480p" / seq / jpg.with_suffix(".png").name)
        masks.append(cv2.resize(mask.astype(np.uint8), size[::-1], interpolation=0).astype(int))
    return frames, masks


def _composite(base: str, pasted: str, n: int, size, present) -> tuple[list, list]:
    """Frames of ``base`` with the object of ``pasted`` pasted on top (it occludes the base).

    The base object gets id 1 where it is visible and the pasted object id 2 on the frames where
    ``present(t)`` is true (its pixels are pasted only there, so it truly vanishes).
    """
    frames, masks = davis_frames(base, n, size)
    p_frames, p_masks = davis_frames(pasted, n, size)
    out_f, out_m = [], []
    for t in range(n):
        frame, mask = frames[t].copy(), (masks[t] > 0).astype(np.int64)
        if present(t):
            obj = p_masks[t] > 0
            frame[obj] = p_frames[t][obj]
            mask[obj] = 2
        out_f.append(frame)
        out_m.append(mask)
    return out_f, out_m


def _write_davis_seq(root: Path, seq: str, frames, masks) -> None:
    img_dir = root / "JPEGImages" / "480p" / seq
    img_dir.mkdir(parents=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(img_dir / f"{t:05d}.jpg", quality=95)
    write_davis_masks(root / "Annotations" / "480p", seq, masks)


def make_multi_object_davis(root: Path, n: int = 8, size=(96, 170)) -> dict[str, list]:
    """A DAVIS 2017-layout set with palette masks of several objects per sequence.

    Sequences:
        ``two-objects``: dog-agility (id 1) with rollerblade's skater pasted on (id 2); the skater
            vanishes on frames 3 and 4 and reappears from frame 5.
        ``late-object``: bear (id 2 throughout) with surf's surfer pasted on (id 1) only from
            frame 2 on, so id 1 is absent from the first frame.

    Returns:
        ``{seq: masks}`` the written id maps, for the tests' hand computations.
    """
    root = Path(root)
    f1, m1 = _composite("dog-agility", "rollerblade", n, size, lambda t: t not in (3, 4))
    f2, m2 = _composite("bear", "surf", n, size, lambda t: t >= 2)
    # Swap ids in late-object: the pasted surfer (absent at frame 0) becomes id 1.
    m2 = [np.select([m == 1, m == 2], [2, 1], 0) for m in m2]
    _write_davis_seq(root, "two-objects", f1, m1)
    _write_davis_seq(root, "late-object", f2, m2)
    return {"two-objects": m1, "late-object": m2}


def mask_keypoints(mask: np.ndarray, n_bands: int = 10) -> np.ndarray:
    """15 keypoints ``(x, y)`` of a binary mask: centroid, 4 extremes, 10 band centroids.

    The extremes are the mean column of the top and bottom rows and the mean row of the left
    and right columns; the bands split the mask's rows into ``n_bands`` equal-count groups.
    """
    ys, xs = np.nonzero(mask)
    pts = [(xs.mean(), ys.mean())]
    pts.append((xs[ys == ys.min()].mean(), ys.min()))
    pts.append((xs[ys == ys.max()].mean(), ys.max()))
    pts.append((xs.min(), ys[xs == xs.min()].mean()))
    pts.append((xs.max(), ys[xs == xs.max()].mean()))
    order = np.argsort(ys, kind="stable")
    for band in np.array_split(order, n_bands):
        pts.append((xs[band].mean(), ys[band].mean()))
    return np.array(pts, dtype=np.float64)


JHMDB_VIDEOS = {"walk": ["dog-agility"], "run": ["rollerblade"]}


def make_jhmdb(root: Path, n: int = 6, size=(48, 64), videos=JHMDB_VIDEOS) -> dict[str, np.ndarray]:
    """A JHMDB-layout set: ``Rename_Images``, ``joint_positions`` and split-1 files.

    Each DAVIS sequence becomes a test video of its class (``<video>.avi 2``); every class file
    also lists a train video (``<class>_train.avi 1``) that has no frames, which a reader of the
    test subset must never open.

    Returns:
        ``{"<class>/<video>": joints (T, 15, 2)}`` in 0-based pixels.
    """
    from scipy.io import savemat

    root = Path(root)
    (root / "splits").mkdir(parents=True)
    out = {}
    for cls, seqs in videos.items():
        lines = []
        for seq in seqs:
            frames, masks = davis_frames(seq, n, size)
            img_dir = root / "Rename_Images" / cls / seq
            img_dir.mkdir(parents=True)
            for t, frame in enumerate(frames):
                Image.fromarray(frame).save(img_dir / f"{t + 1:05d}.png")
            joints = np.stack([mask_keypoints(m > 0) for m in masks])  # (T, 15, 2)
            mat_dir = root / "joint_positions" / cls / seq
            mat_dir.mkdir(parents=True)
            savemat(mat_dir / "joint_positions.mat", {"pos_img": joints.transpose(2, 1, 0) + 1})
            out[f"{cls}/{seq}"] = joints
            lines.append(f"{seq}.avi 2")
        lines.append(f"{cls}_train.avi 1")
        (root / "splits" / f"{cls}_test_split1.txt").write_text("\n".join(lines) + "\n")
    return out


# VIP class ids (correlearn.eval.parts.CLASSES) given to the regions of a DAVIS mask.
HAIR, UPPER, RIGHT_LEG, LEFT_LEG = 2, 4, 16, 17


def mask_parts(mask: np.ndarray) -> np.ndarray:
    """Split a binary mask into 4 part classes by its bounding box, so parts move with it.

    Top quarter: hair; next half: upper-clothes; bottom quarter: legs, split at the box's
    middle column (image left = right leg, as a person facing the camera).
    """
    ys, xs = np.nonzero(mask)
    out = np.zeros(mask.shape, dtype=np.int64)
    if len(ys) == 0:
        return out
    y0, y1, xmid = ys.min(), ys.max() + 1, (xs.min() + xs.max() + 1) / 2
    rows = np.arange(mask.shape[0])[:, None]
    cols = np.arange(mask.shape[1])[None, :]
    frac = (rows - y0) / (y1 - y0)
    region = np.where(frac < 0.25, HAIR, np.where(frac < 0.75, UPPER, 0))
    legs = np.where(cols < xmid, RIGHT_LEG, LEFT_LEG)
    region = np.where(frac >= 0.75, legs, region)
    return np.where(mask, region, 0)


def make_vip(root: Path, seqs=("bear", "motorbike"), n: int = 6, size=(60, 80)) -> dict:
    """A VIP-layout set: ``Images/<video>/*.jpg``, ``Category_ids/<video>/*.png`` and
    ``lists/val_videos.txt``; every 2nd frame after the first is left unannotated.

    Returns:
        ``{video: [class map or None per frame]}``.
    """
    root = Path(root)
    (root / "lists").mkdir(parents=True)
    out = {}
    for seq in seqs:
        frames, masks = davis_frames(seq, n, size)
        (root / "Images" / seq).mkdir(parents=True)
        (root / "Category_ids" / seq).mkdir(parents=True)
        out[seq] = []
        for t, (frame, mask) in enumerate(zip(frames, masks, strict=True)):
            name = f"{t + 1:012d}"
            Image.fromarray(frame).save(root / "Images" / seq / f"{name}.jpg", quality=95)
            parts = mask_parts(mask > 0) if t == 0 or t % 2 == 1 else None
            if parts is not None:
                Image.fromarray(parts.astype(np.uint8)).save(
                    root / "Category_ids" / seq / f"{name}.png"
                )
            out[seq].append(parts)
    (root / "lists" / "val_videos.txt").write_text("".join(f"videos/{s}\n" for s in seqs))
    return out


# Which VOC07 classes each davis-mini sequence shows (the motorbike has its rider).
VOC_CLASSES = {
    "dog-agility": ("dog",),
    "motorbike": ("motorbike", "person"),
    "rollerblade": ("person",),
    "surf": ("person",),
    "paragliding": ("person",),
    "bear": (),
}


def make_voc07(root: Path, per_seq: int = 4, size=(48, 85)) -> dict[str, np.ndarray]:
    """A VOC07-layout classification set: ``VOCdevkit/VOC2007/{JPEGImages,ImageSets/Main}``.

    Classes ``dog``, ``motorbike``, ``person``; from each davis-mini sequence ``per_seq`` frames
    (every 4th) go to trainval and as many later frames to test. The first ``person`` image of
    each split is marked difficult (0).

    Returns:
        ``{"trainval": labels, "test": labels}`` as ``(N, 3)`` in {1, 0, -1} (sorted ids).
    """
    voc = Path(root) / "VOCdevkit" / "VOC2007"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    names = ("dog", "motorbike", "person")
    lines = {(c, s): [] for c in names for s in ("trainval", "test")}
    labels = {"trainval": [], "test": []}
    i = 0
    for seq, present in VOC_CLASSES.items():
        frames, _ = davis_frames(seq, 2 * per_seq, size, step=4)
        for j, frame in enumerate(frames):
            split = "trainval" if j < per_seq else "test"
            i += 1
            Image.fromarray(frame).save(voc / "JPEGImages" / f"{i:06d}.jpg", quality=95)
            row = []
            for c in names:
                first_person = c == "person" and present == ("person",) and seq == "rollerblade"
                flag = "1" if c in present else "-1"
                if first_person and j in (0, per_seq):
                    flag = "0"
                lines[(c, split)].append(f"{i:06d} {flag}")
                row.append({"1": 1, "-1": 0, "0": -1}[flag])
            labels[split].append(row)
    for (c, split), ls in lines.items():
        (voc / "ImageSets" / "Main" / f"{c}_{split}.txt").write_text("\n".join(ls) + "\n")
    # Names with more than one underscore are not class files (the reference skips them).
    (voc / "ImageSets" / "Main" / "train_extra_test.txt").write_text("junk\n")
    return {k: np.array(v, dtype=np.int32) for k, v in labels.items()}
