"""The labelled data of the frozen-feature probes: images, labels, a deterministic split, features.

``eval_knn`` and ``eval_linear`` (:mod:`correlearn.eval.probe_stage`) share it; ``eval_finetune``
shares the labels (:func:`labelled_images`). ``class_folders`` datasets give class labels;
frame-folder layouts (``davis``, ``frame_folders``) use the sequence as the label (a sanity probe
of scene identity, not a benchmark). Images are resized and centre-cropped with the standard
ImageNet evaluation transform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.augment import normalize
from correlearn.data.fingerprint import fingerprint, get_dataset
from correlearn.data.sources import DataError, DatasetSpec, list_images
from correlearn.eval.probes import extract_features
from correlearn.models.io import load_backbone
from correlearn.stage import StageContext
from correlearn.train.distributed import resolve_device


class ProbeDataConfig(StrictModel):
    """The labelled data of a frozen-feature probe.

    Attributes:
        dataset: a dataset under ``datasets:``. ``class_folders`` gives class labels; frame-folder
            layouts (``davis``, ``frame_folders``) use the sequence as the label (a sanity probe of
            scene identity, not a benchmark).
        frame_step: every k-th frame of frame folders.
        image_size: resize the short side to ``image_size * 256 / 224``, centre crop
            ``image_size`` (the standard ImageNet evaluation transform).
        split: ``random``: stratified random split; ``temporal``: per label, the first part of
            the (ordered) images trains and the rest tests, so near-duplicate neighbouring video
            frames rarely straddle the split.
        test_fraction: share of each label's images in the test split.
        seed: seed of the random split.
        device: ``auto`` uses CUDA when present.
    """

    dataset: str = "default"
    frame_step: int | None = Field(None, ge=1)
    image_size: int = Field(224, ge=16)
    split: Literal["random", "temporal"] = "random"
    test_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    seed: int = 0
    device: str = "auto"


def resolve_probe_data(cfg: ProbeDataConfig, pipe: Any) -> dict:
    """Key material: the dataset spec and its file fingerprint."""
    spec = get_dataset(pipe, cfg.dataset, frame_step=cfg.frame_step)
    return {"source": fingerprint(spec, pipe.base_dir, videos=False)}


def labelled_images(
    spec: DatasetSpec, base: str | Path, purpose: str = "for a probe"
) -> tuple[list[Any], np.ndarray]:
    """The dataset's images and an ``(N,)`` int label per image.

    Frame-folder layouts label each frame with its sequence (sorted sequence names -> 0, 1, ...).

    Args:
        spec: the dataset.
        base: folder a relative root resolves against.
        purpose: ends the error message of a layout without labels (``for a probe``).

    Raises:
        DataError: the layout has no labels.
    """
    items = list_images(spec, base)
    if spec.layout in ("davis", "frame_folders"):
        names = sorted({it.key.split("/")[0] for it in items})
        return items, np.array([names.index(it.key.split("/")[0]) for it in items])
    labels = np.array([it.label for it in items])
    if (labels < 0).any():
        raise DataError(f"{spec.root}: layout {spec.layout} has no labels {purpose}")
    return items, labels


def split_labels(
    labels: np.ndarray, cfg: ProbeDataConfig, names: dict[int, str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test rows: per label ``test_fraction`` of its images (at least 1) test.

    ``names`` (label -> class folder or sequence) names a label in the error message.

    Raises:
        DataError: a label has too few images to give both splits one.
    """
    rng = np.random.default_rng(cfg.seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if cfg.split == "random":
            idx = rng.permutation(idx)
        n_test = max(1, int(round(len(idx) * cfg.test_fraction)))
        if len(idx) - n_test < 1:
            name = f"class {names[int(c)]!r}" if names and int(c) in names else f"label {c}"
            raise DataError(f"{name} has {len(idx)} image(s): too few to split")
        train.extend(idx[: len(idx) - n_test])
        test.extend(idx[len(idx) - n_test :])
    return np.array(sorted(train)), np.array(sorted(test))


def load_probe_image(path: str, size: int) -> torch.Tensor:
    """``(3, size, size)`` normalised: short side to ``size * 256 / 224`` (bicubic), centre crop."""
    img = Image.open(path).convert("RGB")
    short = round(size * 256 / 224)
    w, h = img.size
    s = short / min(w, h)
    img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    x = torch.from_numpy(np.asarray(img.crop((left, top, left + size, top + size))).copy())
    return normalize(x.permute(2, 0, 1)[None].float() / 255.0)[0]


def probe_features(ctx: StageContext, cfg: ProbeDataConfig) -> dict[str, torch.Tensor]:
    """Frozen pooled features and labels of the train/test split (unreadable images skipped).

    Returns:
        ``train`` ``(N, D)`` and ``test`` ``(M, D)`` L2-normalised features of the ``checkpoint``
        input's backbone, ``train_labels`` ``(N,)`` and ``test_labels`` ``(M,)``.
    """
    spec = DatasetSpec.model_validate(ctx.resolved["source"]["dataset"])
    items, labels = labelled_images(spec, ctx.base_dir)
    images, keep = [], []
    for i, it in enumerate(items):
        try:
            images.append(load_probe_image(it.path, cfg.image_size))
            keep.append(i)
        except OSError as exc:
            ctx.skip(it.path, f"unreadable image: {exc}")
    labels = labels[keep]
    names = {int(labels[j]): items[i].key.split("/")[0] for j, i in enumerate(keep)}
    train, test = split_labels(labels, cfg, names)
    backbone = load_backbone(ctx.input_path("checkpoint"))
    feats = extract_features(backbone, images, device=resolve_device(cfg.device))
    ctx.count("train_images", len(train))
    ctx.count("test_images", len(test))
    ctx.count("classes", int(labels.max()) + 1)
    return {
        "train": F.normalize(feats[train], dim=1),
        "test": F.normalize(feats[test], dim=1),
        "train_labels": torch.from_numpy(labels[train]),
        "test_labels": torch.from_numpy(labels[test]),
    }
