"""Training the SiamFC head on frozen features (VFS ``extra_conv: True``, VINCE ``--freeze-feature-extractor``).

Both references freeze the pre-trained backbone and learn only two 1x1 convs before the xcorr,
on GOT-10k pairs (xvjiarui/VFS ``projects/siamfc-pytorch``: ``datasets.py`` ``Pair``,
``transforms.py`` ``SiamFCTransforms``, ``losses.py``, ``siamfc_tracker_base.py``
``train_step``/``_create_labels``). Every random draw here takes an explicit
``numpy.random.Generator``, so a batch is a pure function of (seed, step).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from correlearn.eval.object_tracking import crop_and_resize
from correlearn.eval.otb import TrackSequence

# VFS default_config_base.py, training part (VINCE uses lr 1e-2, SGD and BalancedLoss, 256 ch).
TRAIN = {
    "epochs": 50,
    "batch_size": 8,
    "lr": 1e-3,
    "ultimate_lr": 1e-5,
    "r_pos": 16,
    "r_neg": 0,
    "max_gap": 100,
    "stretch": 0.05,
    "shift": 8,
}
_INTERPS = (
    cv2.INTER_LINEAR,
    cv2.INTER_CUBIC,
    cv2.INTER_AREA,
    cv2.INTER_NEAREST,
    cv2.INTER_LANCZOS4,
)


def valid_frames(seq: TrackSequence, image_wh: tuple[int, int]) -> np.ndarray:
    """Frames a pair may use (the reference ``Pair._filter``): sane box size, aspect, visibility.

    Args:
        seq: boxes (T, 4) ``x, y, w, h``; ``cover`` (T,) 0..8 when known.
        image_wh: ``(W, H)`` of the sequence's first frame.

    Returns:
        Indices of the usable frames.
    """
    a = seq.boxes
    size = np.asarray(image_wh, dtype=np.float64)[None]
    ok = (
        (a[:, 2] * a[:, 3] >= 20) & np.all(a[:, 2:] >= 20, axis=1) & np.all(a[:, 2:] <= 500, axis=1)
    )
    ok &= np.all(a[:, 2:] / size >= 0.01, axis=1) & np.all(a[:, 2:] / size <= 0.5, axis=1)
    ratio = a[:, 2] / np.maximum(1, a[:, 3])
    ok &= (ratio >= 0.25) & (ratio <= 4)
    if seq.cover is not None:
        ok &= seq.cover > max(1, seq.cover.max() * 0.3)
    return np.flatnonzero(ok)


def sample_pair(rng: np.random.Generator, indices: np.ndarray, max_gap: int) -> tuple[int, int]:
    """Exemplar and search frame, at most ``max_gap`` apart (reference ``Pair._sample_pair``)."""
    n = len(indices)
    if n == 1:
        return int(indices[0]), int(indices[0])
    if n == 2:
        return int(indices[0]), int(indices[1])
    for _ in range(100):
        z, x = np.sort(rng.choice(indices, 2, replace=False))
        if x - z < max_gap:
            return int(z), int(x)
    z = int(rng.choice(indices))
    return z, z


def _context_crop(rng, img, box, exemplar: int, out: int) -> np.ndarray:
    # The search-size crop of SiamFCTransforms._crop: context 0.5, scaled by out / exemplar.
    center = np.array([box[1] - 1 + (box[3] - 1) / 2, box[0] - 1 + (box[2] - 1) / 2])
    wh = np.array([box[3], box[2]], dtype=np.float64)
    size = np.sqrt(np.prod(wh + 0.5 * wh.sum())) * out / exemplar
    return crop_and_resize(img, center, size, out, img.reshape(-1, 3).mean(axis=0))


def _stretch_and_shift(rng, patch: np.ndarray, out: int, stretch: float, shift: int) -> np.ndarray:
    # RandomStretch, CenterCrop(out - shift), RandomCrop(out - 2 shift).
    s = 1.0 + rng.uniform(-stretch, stretch)
    size = (round(patch.shape[1] * s), round(patch.shape[0] * s))
    patch = cv2.resize(patch, size, interpolation=int(rng.choice(_INTERPS)))
    patch = _center_crop(patch, out - shift)
    h = w = out - 2 * shift
    i = int(rng.integers(0, patch.shape[0] - h + 1))
    j = int(rng.integers(0, patch.shape[1] - w + 1))
    return patch[i : i + h, j : j + w]


def _center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    i, j = round((h - size) / 2.0), round((w - size) / 2.0)
    pad = max(0, -i, -j)
    if pad:
        avg = tuple(float(v) for v in img.reshape(-1, 3).mean(axis=0))
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=avg)
        i, j = i + pad, j + pad
    return img[i : i + size, j : j + size]


def pair_patches(
    rng: np.random.Generator, z_img, x_img, z_box, x_box, exemplar: int, instance: int, cfg: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Exemplar ``(exemplar, exemplar, 3)`` and search ``(instance - 16, ..., 3)`` uint8 patches.

    ``SiamFCTransforms``: both crops at search size around their boxes, random stretch and shift,
    then the exemplar centre-cropped to ``exemplar``.
    """
    z = _context_crop(rng, z_img, z_box, exemplar, instance)
    x = _context_crop(rng, x_img, x_box, exemplar, instance)
    z = _center_crop(_stretch_and_shift(rng, z, instance, cfg["stretch"], cfg["shift"]), exemplar)
    x = _stretch_and_shift(rng, x, instance, cfg["stretch"], cfg["shift"])
    return z, x


def logistic_labels(h: int, w: int, r_pos: float, r_neg: float, total_stride: int) -> np.ndarray:
    """(h, w) labels: 1 within L1 distance r_pos / stride of the centre, 0.5 up to r_neg, else 0."""
    x = np.arange(w) - (w - 1) / 2
    y = np.arange(h) - (h - 1) / 2
    x, y = np.meshgrid(x, y)
    dist = np.abs(x) + np.abs(y)
    rp, rn = r_pos / total_stride, r_neg / total_stride
    return np.where(dist <= rp, 1.0, np.where(dist < rn, 0.5, 0.0)).astype(np.float32)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """VFS ``FocalLoss``: focal BCE normalised by the mean focal weight; (N, 1, h, w) -> scalar."""
    prob = torch.sigmoid(logits)
    pos_w, neg_w = (1 - prob) ** gamma, prob**gamma
    loss = -(target * pos_w * F.logsigmoid(logits) + (1 - target) * neg_w * F.logsigmoid(-logits))
    avg = (target * pos_w + (1 - target) * neg_w).mean()
    return (loss / avg).mean()


def balanced_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """VINCE / SiamFC ``BalancedLoss``: BCE with positives and negatives weighted to equal mass."""
    pos, neg = target == 1, target == 0
    w = torch.zeros_like(target)
    w[pos] = 1.0 / pos.sum().clamp(min=1)
    w[neg] = 1.0 / neg.sum().clamp(min=1)
    w = w / w.sum()
    return F.binary_cross_entropy_with_logits(logits, target, w, reduction="sum")


def exp_lr(step: int, steps_per_epoch: int, lr: float, ultimate_lr: float, epochs: int) -> float:
    """Reference ``ExponentialLR``: lr x gamma^epoch, gamma = (ultimate / initial)^(1 / epochs)."""
    gamma = (ultimate_lr / lr) ** (1.0 / epochs)
    return lr * gamma ** (step // max(1, steps_per_epoch))
