"""Linear SVMs on frozen features, VOC07 mAP, full and low-shot: ORL's classification protocol.

ORL (Xie et al. 2021, Sec. 4 and Table 2) evaluates with the OpenSelfSup benchmark, itself FAIR's
``fair_self_supervision_benchmark`` (Goyal et al. 2019): ``benchmarks/svm_tools`` in the ORL code.
Features ("feat5"): res5 average-pooled with a 6x6 window at stride 1 (``MultiPooling``,
``specified``) -> 2x2 cells -> 8192-d for ResNet-50, from images resized to short side 256 and then
to 224x224; each feature L2-normalised (``+1e-5``). Per class a ``LinearSVC`` (squared hinge, L2,
``class_weight {1: 2, -1: 1}``, tol 1e-4, dual, 2000 iterations) for each cost in
``1, 10, 100`` and ``0.5^4 .. 0.5^19`` (``parse_cost_list``).

Full: labels from ``ImageSets/Main/<class>_{trainval,test}.txt`` (1 -> 1, -1 -> 0, difficult 0 ->
-1); training treats difficult images as negatives; each class keeps the cost of best 3-fold
cross-validated AP (scikit-learn ``average_precision``) on trainval; test AP skips difficult
images. Low-shot: per class k positives and 19k negatives drawn from trainval, 5 independent
samples, k in 1, 2, 4, 8, 16, 32, 64, 96; per k the cost with the best mean test mAP over the
samples is reported (mean, min, max, std): the reference selects it on the test set, and so does
this. Test AP is ``svm_helper.get_precision_recall``: the area under the interpolated (monotone)
precision envelope, in percent here.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.model_selection import cross_val_score
from sklearn.svm import LinearSVC
from torch import nn
from tqdm import tqdm

from correlearn.data.sources import DataError
from correlearn.eval.features import autocast_for, frame_to_tensor

LAYOUT = "a VOC2007 folder: JPEGImages/*.jpg and ImageSets/Main/<class>_<split>.txt"

COSTS = (1.0, 10.0, 100.0, *(0.5**k for k in range(4, 20)))
LOW_SHOT_K = (1, 2, 4, 8, 16, 32, 64, 96)
LOW_SHOT_SAMPLES = 5


def voc07_root(root: str | Path) -> Path:
    """The ``VOC2007`` folder: ``root`` itself or ``root/VOCdevkit/VOC2007``."""
    root = Path(root)
    for cand in (root, root / "VOCdevkit" / "VOC2007", root / "VOC2007"):
        if (cand / "ImageSets" / "Main").is_dir():
            return cand
    raise DataError(f"{root}: no ImageSets/Main (nor under VOCdevkit/VOC2007); expected {LAYOUT}")


def read_voc07(root: str | Path, split: str) -> tuple[list[Path], np.ndarray, list[str]]:
    """Images and labels of a VOC07 split (``create_voc_data_files.py``).

    Args:
        root: see :func:`voc07_root`.
        split: ``trainval`` or ``test``.

    Returns:
        Image paths sorted by id, labels ``(N, C)`` int32 (1 present, 0 absent, -1 difficult or
        unlisted) and the class names (sorted class files ``<class>_<split>.txt``).
    """
    voc = voc07_root(root)
    files = sorted(
        p for p in (voc / "ImageSets" / "Main").glob(f"*_{split}.txt") if p.stem.count("_") == 1
    )
    if not files:
        raise DataError(
            f"{voc / 'ImageSets' / 'Main'}: no <class>_{split}.txt files; expected {LAYOUT}"
        )
    labels: dict[str, np.ndarray] = {}
    for c, f in enumerate(files):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
                raise ValueError(f"{f}: line {n}: expected '<image id> 1|-1|0', got {line!r}")
            row = labels.setdefault(parts[0], -np.ones(len(files), dtype=np.int32))
            row[c] = {"1": 1, "-1": 0, "0": -1}[parts[1]]
    ids = sorted(labels)
    paths = [voc / "JPEGImages" / f"{i}.jpg" for i in ids]
    return paths, np.stack([labels[i] for i in ids]), [f.stem.split("_")[0] for f in files]


def load_image(path: str | Path, short_side: int = 256, size: int = 224) -> np.ndarray:
    """``(size, size, 3)`` uint8: short side to 256, then 224x224 (``extract_info/voc07.py``)."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = short_side / min(w, h)
    img = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
    return np.array(img.resize((size, size), Image.BILINEAR))


def pooled_features(
    backbone: nn.Module,
    image: np.ndarray,
    layer: str | None = "res5",
    precision: Literal["fp32", "bf16"] = "fp32",
) -> np.ndarray:
    """The "feat5" vector of one image: the dense map average-pooled to 2x2 cells, flattened ``(C * 4,)``.

    The window is the map side minus 1 at stride 1, which is the reference's 6x6 on ResNet-50's
    7x7 res5 at 224 px (``MultiPooling`` ``specified``) and keeps 2x2 cells at other sizes.

    Args:
        backbone: a backbone with ``dense(x, layer)`` (ViTs: ``layer=None``, the patch grid).
        image: ``(H, W, 3)`` uint8 RGB.
        layer: the dense layer.
        precision: ``fp32`` (the reference extracts in full precision) or ``bf16`` autocast on CUDA.
    """
    x = frame_to_tensor(image, next(backbone.parameters()).device)
    amp = autocast_for(x.device) if precision == "bf16" else nullcontext()
    with torch.inference_mode(), amp:
        fmap = backbone.dense(x, layer).float()
    h, w = fmap.shape[-2:]
    pooled = F.avg_pool2d(fmap, kernel_size=(max(1, h - 1), max(1, w - 1)), stride=1)
    return pooled.flatten().cpu().numpy()


def normalize_features(x: np.ndarray) -> np.ndarray:
    """``(N, D)`` rows divided by their L2 norm + 1e-5 (``svm_helper.normalize_features``)."""
    return x / (np.linalg.norm(x, axis=1) + 1e-5)[:, None]


def image_features(
    backbone: nn.Module,
    paths: Sequence[Path],
    short_side: int = 256,
    size: int = 224,
    layer: str | None = "res5",
    what: str = "images",
    precision: Literal["fp32", "bf16"] = "fp32",
) -> np.ndarray:
    """``(N, D)`` float64 L2-normalised "feat5" rows of the images, in order.

    Args:
        backbone: as :func:`pooled_features`.
        paths: the image files.
        short_side: see :func:`load_image`.
        size: see :func:`load_image`.
        layer: the dense layer.
        what: the progress bar's label (``trainval``).
        precision: see :func:`pooled_features`.

    Raises:
        DataError: an image is missing.
    """
    feats = []
    for p in tqdm(paths, f"features ({what})", disable=None):
        if not p.is_file():
            raise DataError(f"{p}: missing image; expected {LAYOUT}")
        image = load_image(p, short_side, size)
        feats.append(pooled_features(backbone, image, layer, precision))
    return normalize_features(np.stack(feats).astype(np.float64))


def average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    """AP of one class: the area under the interpolated precision-recall curve (fraction).

    ``svm_helper.get_precision_recall`` + ``calculate_ap``: rank by score, precision and recall
    at every rank, precision made monotone from the right, summed over recall steps.

    Args:
        targets: ``(N,)`` > 0 for positives.
        scores: ``(N,)`` classifier scores.
    """
    pos = (np.asarray(targets) > 0).astype(np.float64)[
        np.argsort(-np.asarray(scores), kind="stable")
    ]
    if pos.sum() == 0:
        raise ValueError("AP needs at least one positive")
    tp = np.cumsum(pos)
    prec = tp / np.arange(1, len(pos) + 1)
    rec = tp / pos.sum()
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def make_svm(cost: float) -> LinearSVC:
    """The reference classifier (``train_svm_kfold.py``)."""
    return LinearSVC(
        C=cost,
        class_weight={1: 2, -1: 1},
        intercept_scaling=1.0,
        penalty="l2",
        loss="squared_hinge",
        tol=1e-4,
        dual=True,
        max_iter=2000,
    )


def _svm_labels(column: np.ndarray) -> np.ndarray:
    """1 stays 1, every other label (absent, difficult) becomes -1, as ``train_svm_kfold``."""
    return np.where(column == 1, 1, -1)


def _test_ap(clf: LinearSVC, test_x: np.ndarray, column: np.ndarray) -> float:
    keep = column != -1
    return average_precision(column[keep], clf.decision_function(test_x[keep]))


def full_svm(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    costs: Sequence[float] = COSTS,
) -> dict[str, object]:
    """Per class: cost by 3-fold CV AP on train, then test AP; ``mAP`` in percent.

    Args:
        train_x: ``(N, D)`` normalised trainval features.
        train_y: ``(N, C)`` trainval labels in {1, 0, -1}.
        test_x: ``(M, D)`` normalised test features.
        test_y: ``(M, C)`` test labels in {1, 0, -1}.
        costs: the sweep.
    """
    aps, chosen = [], []
    for c in range(train_y.shape[1]):
        y = _svm_labels(train_y[:, c])
        cv = [
            cross_val_score(make_svm(k), train_x, y, cv=3, scoring="average_precision").mean()
            for k in costs
        ]
        best = costs[int(np.argmax(cv))]
        aps.append(_test_ap(make_svm(best).fit(train_x, y), test_x, test_y[:, c]))
        chosen.append(best)
    return {"mAP": 100.0 * float(np.mean(aps)), "AP": [100.0 * a for a in aps], "costs": chosen}


def low_shot_sample(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Per class k positives and (C - 1) k negatives; every other entry -1 (unused).

    As ``create_voc_low_shot_challenge_samples.py`` (classes sampled independently).

    Args:
        labels: ``(N, C)`` trainval labels in {1, 0, -1}.
        k: positives per class.
        rng: the sample's generator.
    """
    out = -np.ones_like(labels)
    n_classes = labels.shape[1]
    for c in range(n_classes):
        for value, count in ((1, k), (0, (n_classes - 1) * k)):
            pool = np.flatnonzero(labels[:, c] == value)
            if len(pool) < count:
                raise ValueError(f"class {c}: {len(pool)} images with label {value}, need {count}")
            out[rng.choice(pool, size=count, replace=False), c] = value
    return out


def low_shot_svm(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    k_values: Sequence[int] = LOW_SHOT_K,
    samples: int = LOW_SHOT_SAMPLES,
    costs: Sequence[float] = COSTS,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Low-shot mAP per k: mean/min/max/std over samples at the cost best on average (percent).

    Args:
        train_x: ``(N, D)`` normalised trainval features.
        train_y: ``(N, C)`` trainval labels in {1, 0, -1}.
        test_x: ``(M, D)`` normalised test features.
        test_y: ``(M, C)`` test labels in {1, 0, -1}.
        k_values: positives per class of each low-shot setting.
        samples: independent draws per k; draw s uses ``default_rng([seed, s])``.
        costs: the sweep.
        seed: seed of the draws.

    Returns:
        ``{"k<k>": {"mean", "min", "max", "std", "cost"}}``.
    """
    n_classes = train_y.shape[1]
    out = {}
    for k in k_values:
        maps = np.zeros((samples, len(costs)))
        for s in range(samples):
            sample = low_shot_sample(train_y, k, np.random.default_rng([seed, s]))
            for c in range(n_classes):
                keep = sample[:, c] != -1
                y = _svm_labels(sample[keep, c])
                for j, cost in enumerate(costs):
                    clf = make_svm(cost).fit(train_x[keep], y)
                    maps[s, j] += _test_ap(clf, test_x, test_y[:, c]) / n_classes
        best = int(np.argmax(maps.mean(0)))
        col = 100.0 * maps[:, best]
        out[f"k{k}"] = {
            "mean": float(col.mean()),
            "min": float(col.min()),
            "max": float(col.max()),
            "std": float(col.std()),
            "cost": float(costs[best]),
        }
    return out
