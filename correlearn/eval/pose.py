"""Human pose (keypoint) propagation on JHMDB, scored with PCK: the CRW / UVC protocol.

Protocol (CRW, Jabri et al. 2020, ajabri/videowalk ``code/data/jhmdb.py``, ``code/test.py``,
``code/utils/test_utils.py process_pose``, ``code/eval/eval_pck.py``; TimeCycle and UVC use the
same code): frames are resized to 320x320 (aspect not kept); each of the 15 joints of the first
frame becomes a label map at feature resolution (a Gaussian of sigma 0.5 cells, drawn as
``draw_labelmap_np``) and a background channel is 1 where no joint is; the maps are propagated
with the label-propagation core; each joint is read back as the value-weighted mean position of
its top-3 cells (-1, "lost", when its map is all zero) and scaled to the original frame. PCK@a:
a joint is correct when its distance to the ground truth is at most a x 0.6 x the diagonal of the
box around the frame's GT joints (the "person box" of ``eval_pck.py``); the first frame is not
scored, lost joints are skipped, PCK is averaged per joint and then over joints, in percent.
SiamMAE (App. A, Table 1) follows this with a single context frame (UVC).

JHMDB layout: ``Rename_Images/<class>/<video>/00001.png ...``,
``joint_positions/<class>/<video>/joint_positions.mat`` (``pos_img``: ``(2, 15, T)``, 1-based
pixels) and ``splits/<class>_test_split<k>.txt`` (lines ``<video>.avi 1|2``; 2 = test).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.io import loadmat

from correlearn.data.sources import DataError
from correlearn.eval.features import FeatureFn, frame_to_tensor
from correlearn.eval.label_propagation import LabelPropConfig, propagate_soft_labels

LAYOUT = (
    "a JHMDB folder: Rename_Images/<class>/<video>/*.png, "
    "joint_positions/<class>/<video>/joint_positions.mat, splits/<class>_test_split<k>.txt"
)

IMAGE_SIZE = 320  # CRW --cropSize 320; SiamMAE Sec. 4.2 "320x320 images"
SIGMA = 0.5  # CRW JhmdbSet(sigma=0.5)
READOUT_TOPK = 3  # CRW process_pose(topk=3)
BOX_SCALE = 0.6  # eval_pck.py: 0.6 * norm(max - min) of the GT joints
THRESHOLDS = (0.1, 0.2)


def read_split(root: str | Path, split: int = 1, subset: str = "test") -> list[str]:
    """Videos ``<class>/<video>`` of a JHMDB split (``splits/<class>_test_split<k>.txt``).

    Args:
        root: JHMDB root.
        split: 1, 2 or 3 (the official splits; CRW and UVC evaluate on split 1's test videos).
        subset: ``test`` (label 2) or ``train`` (label 1).
    """
    files = sorted((Path(root) / "splits").glob(f"*_test_split{split}.txt"))
    if not files:
        raise DataError(
            f"{Path(root) / 'splits'}: no *_test_split{split}.txt files; expected {LAYOUT}"
        )
    want = {"train": "1", "test": "2"}[subset]
    videos = []
    for f in files:
        cls = f.name[: -len(f"_test_split{split}.txt")]
        for n, line in enumerate(f.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{f}: line {n}: expected '<video>.avi 1|2', got {line!r}")
            if parts[1] == want:
                videos.append(f"{cls}/{Path(parts[0]).stem}")
    return videos


def load_video(root: str | Path, video: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames and joints of one JHMDB video ``<class>/<video>``.

    Returns:
        ``T`` RGB frames ``(H, W, 3)`` uint8 and joints ``(T, J, 2)`` float ``(x, y)`` in 0-based
        pixels (``pos_img - 1``); ``T`` is the smaller of the frame and annotation counts.
    """
    root = Path(root)
    pngs = sorted((root / "Rename_Images" / video).glob("*.png"))
    if not pngs:
        raise DataError(f"{root / 'Rename_Images' / video}: no frames; expected {LAYOUT}")
    mat = root / "joint_positions" / video / "joint_positions.mat"
    if not mat.is_file():
        raise DataError(f"{mat}: missing joints; expected {LAYOUT}")
    pos = np.asarray(loadmat(mat)["pos_img"], dtype=np.float64)
    if pos.ndim != 3 or pos.shape[0] != 2:
        raise ValueError(f"{mat}: pos_img has shape {pos.shape}, expected (2, J, T)")
    joints = pos.transpose(2, 1, 0) - 1.0
    n = min(len(pngs), len(joints))
    frames = [np.array(Image.open(p).convert("RGB")) for p in pngs[:n]]
    return frames, joints[:n]


def draw_gaussian(hm: np.ndarray, pt: Sequence[float], sigma: float) -> None:
    """Paste an unnormalised Gaussian (peak 1) at ``pt = (x, y)`` into ``hm: (h, w)`` in place.

    As CRW's ``draw_labelmap_np`` (from pose-hg-train): a ``6 sigma + 1`` patch whose top-left is
    ``int(pt - 3 sigma)``; ``sigma <= 0`` sets the single cell ``int(pt)``.
    """
    h, w = hm.shape
    if sigma <= 0:
        x, y = int(pt[0]), int(pt[1])
        if 0 <= x < w and 0 <= y < h:
            hm[y, x] = 1.0
        return
    ul = [int(pt[0] - 3 * sigma), int(pt[1] - 3 * sigma)]
    br = [int(pt[0] + 3 * sigma + 1), int(pt[1] + 3 * sigma + 1)]
    if ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
        return
    size = 6 * sigma + 1
    x = np.arange(0, size, 1, float)
    y = x[:, None]
    c = size // 2
    g = np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma**2))
    gx, gy = (max(0, -ul[0]), min(br[0], w) - ul[0]), (max(0, -ul[1]), min(br[1], h) - ul[1])
    ix, iy = (max(0, ul[0]), min(br[0], w)), (max(0, ul[1]), min(br[1], h))
    hm[iy[0] : iy[1], ix[0] : ix[1]] = g[gy[0] : gy[1], gx[0] : gx[1]]


def joint_label_maps(joints: np.ndarray, size: tuple[int, int], sigma: float = SIGMA):
    """``(J + 1, h, w)`` float32 label maps: channel 0 background, channel 1 + j joint j.

    Args:
        joints: ``(J, 2)`` ``(x, y)`` in feature cells.
        size: ``(h, w)`` of the feature map.
        sigma: Gaussian width in cells (CRW 0.5; <= 0 gives one-hot cells).
    """
    maps = np.zeros((len(joints) + 1, *size), dtype=np.float32)
    for j, pt in enumerate(joints):
        draw_gaussian(maps[j + 1], pt, sigma)
    maps[0] = maps[1:].sum(0) == 0
    return maps


def read_keypoints(soft: torch.Tensor, topk: int = READOUT_TOPK) -> np.ndarray:
    """Joint positions from propagated maps (CRW ``process_pose``).

    Args:
        soft: ``(J + 1, h, w)`` soft labels; channel 0 (background) is ignored.
        topk: cells averaged per joint, weighted by their values (1 = argmax).

    Returns:
        ``(J, 2)`` ``(x, y)`` in feature cells; ``-1`` for a joint whose map is all zero.
    """
    flat = soft[1:].flatten(1).float()  # (J, h * w)
    vals, idx = flat.topk(min(topk, flat.shape[1]), dim=1)
    weights = vals / vals.sum(1, keepdim=True).clamp_min(1e-12)
    w = soft.shape[-1]
    xy = torch.stack([((idx % w) * weights).sum(1), ((idx // w) * weights).sum(1)], dim=1)
    xy[flat.sum(1) == 0] = -1.0
    return xy.cpu().numpy()


def propagate_soft(
    feature_fn: FeatureFn,
    frames: Sequence[np.ndarray],
    first_labels: Callable[[tuple[int, int]], np.ndarray],
    cfg: LabelPropConfig,
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """Propagate soft label maps (joint Gaussians, not one-hot) through frames.

    The context is the core's (:func:`~correlearn.eval.label_propagation.propagate_soft_labels`:
    the first frame plus ``cfg.context_frames`` earlier frames, built per ``cfg.context``);
    frames are used at their given size.

    Args:
        feature_fn: ``(1, 3, H, W)`` normalised frame -> ``(1, C, h, w)`` features.
        frames: ``T`` RGB frames ``(H, W, 3)`` uint8, already resized.
        first_labels: ``(h, w) -> (K, h, w)`` labels of frame 0 at the feature resolution (known
            only once frame 0's features are computed).
        cfg: propagation settings (context, ``topk``, ``temperature``, window).
        device: where features and labels live (default CPU).

    Returns:
        ``T`` soft labels ``(K, h, w)``; entry 0 is frame 0's labels.
    """
    device = torch.device(device or "cpu")

    def features():
        for frame in frames:
            yield F.normalize(feature_fn(frame_to_tensor(frame, device))[0].float(), dim=0)

    with torch.inference_mode():
        feats = features()
        first_feat = next(feats)
        size = tuple(first_feat.shape[-2:])
        first = torch.as_tensor(first_labels(size), dtype=torch.float32, device=device)

        def chained():
            yield first_feat
            yield from feats

        return [first, *propagate_soft_labels(chained(), first, cfg)]


def normalized_distances(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per frame and joint, prediction error over the person box size (``eval_pck.py``).

    Args:
        pred: ``(T, J, 2)`` predicted ``(x, y)`` in pixels; ``x < 0`` marks a lost joint.
        gt: ``(T, J, 2)`` ground truth in pixels.

    Returns:
        ``(T, J)`` distance / (0.6 x diagonal of the box around the frame's GT joints, over the
        joints not lost); NaN for frame 0 (the given frame) and for lost joints.
    """
    visible = pred[..., 0] >= 0
    dist = np.full(visible.shape, np.nan)
    for t in range(1, len(gt)):
        if not visible[t].any():
            continue
        pts = gt[t][visible[t]]
        box = BOX_SCALE * np.linalg.norm(pts.max(0) - pts.min(0))
        d = np.linalg.norm(pred[t] - gt[t], axis=1) / box
        dist[t] = np.where(visible[t], d, np.nan)
    return dist


def pck(distances: Sequence[np.ndarray], thresholds=THRESHOLDS) -> dict[str, object]:
    """PCK in percent: per joint the share of its scored distances <= a, then the joint mean.

    Args:
        distances: per video ``(T, J)`` from :func:`normalized_distances` (NaN = not scored).
        thresholds: the a of PCK@a.

    Returns:
        ``{"PCK_0.1": ..., "PCK_0.2": ..., "per_joint": {"PCK_0.1": [J values], ...}}`` (PCK@0.1 is
        ``PCK_0.1``: MLflow metric names cannot hold "@").
    """
    d = np.concatenate([np.asarray(x, dtype=np.float64) for x in distances], axis=0)
    scored = ~np.isnan(d)
    if not scored.any():
        raise ValueError("no joint was scored (every joint lost, or single-frame videos)")
    out: dict[str, object] = {"per_joint": {}}
    for a in thresholds:
        hit = np.where(scored, d <= a, False).sum(0)
        per_joint = 100.0 * hit / np.maximum(scored.sum(0), 1)
        per_joint = np.where(scored.sum(0) > 0, per_joint, np.nan)
        out[f"PCK_{a:g}"] = float(np.nanmean(per_joint))
        out["per_joint"][f"PCK_{a:g}"] = [float(v) for v in per_joint]
    return out


def resize_frames(frames: Sequence[np.ndarray], size: int = IMAGE_SIZE) -> list[np.ndarray]:
    """Resize every frame to ``size x size`` (bilinear, aspect not kept, as CRW's JhmdbSet)."""
    return [cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in frames]


def propagate_pose(
    feature_fn: FeatureFn,
    frames: Sequence[np.ndarray],
    joints: np.ndarray,
    cfg: LabelPropConfig,
    image_size: int = IMAGE_SIZE,
    sigma: float = SIGMA,
    topk: int = READOUT_TOPK,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Propagate the first frame's joints through a video (module doc).

    Args:
        feature_fn: frozen dense features (see :func:`propagate_soft`).
        frames: ``T`` RGB frames ``(H, W, 3)`` uint8 at their original size.
        joints: ``(J, 2)`` ``(x, y)`` pixels of frame 0 (the only labels used).
        cfg: propagation settings; frames are resized to ``image_size`` square here, so
            ``cfg.short_side`` is not used.
        image_size: side of the square frames fed to the backbone.
        sigma: label-map Gaussian width in feature cells.
        topk: cells averaged when reading a joint back.
        device: where features and labels live (default CPU).

    Returns:
        ``(T, J, 2)`` predicted ``(x, y)`` in original pixels (-1 for lost joints); entry 0 is
        frame 0's labels read back the same way.
    """
    h0, w0 = frames[0].shape[:2]
    scale = np.zeros(2)

    def labels(size: tuple[int, int]) -> np.ndarray:
        # Pixels -> cells as CRW: x * (w_feat / W), so reading back with W / w_feat is exact.
        scale[:] = (size[1] / w0, size[0] / h0)
        return joint_label_maps(np.asarray(joints) * scale, size, sigma)

    softs = propagate_soft(feature_fn, resize_frames(frames, image_size), labels, cfg, device)
    out = np.stack([read_keypoints(s, topk) for s in softs])
    lost = out[..., 0] < 0
    out = out / scale
    out[lost] = -1.0
    return out
