"""Shared by ``eval_knn`` and ``eval_linear``: labelled images, a deterministic split, frozen features."""

from __future__ import annotations

from typing import Literal

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


def resolve_probe_data(cfg: ProbeDataConfig, pipe) -> dict:
    """Key material: the dataset spec and its file fingerprint."""
    spec = get_dataset(pipe, cfg.dataset, frame_step=cfg.frame_step)
    return {"source": fingerprint(spec, pipe.base_dir, videos=False)}


def _split(labels: np.ndarray, cfg: ProbeDataConfig) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if cfg.split == "random":
            idx = rng.permutation(idx)
        n_test = max(1, int(round(len(idx) * cfg.test_fraction)))
        if len(idx) - n_test < 1:
            raise DataError(f"label {c} has {len(idx)} image(s): too few to split")
        train.extend(idx[: len(idx) - n_test])
        test.extend(idx[len(idx) - n_test :])
    return np.array(sorted(train)), np.array(sorted(test))


def _load(path: str, size: int) -> torch.Tensor:
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
    """Frozen pooled features and labels of the train/test split (unreadable images skipped)."""
    spec = DatasetSpec.model_validate(ctx.resolved["source"]["dataset"])
    items = list_images(spec, ctx.base_dir)
    if spec.layout in ("davis", "frame_folders"):
        names = sorted({it.key.split("/")[0] for it in items})
        labels = np.array([names.index(it.key.split("/")[0]) for it in items])
    else:
        labels = np.array([it.label for it in items])
    if (labels < 0).any():
        raise DataError(f"{spec.root}: layout {spec.layout} has no labels for a probe")
    images, keep = [], []
    for i, it in enumerate(items):
        try:
            images.append(_load(it.path, cfg.image_size))
            keep.append(i)
        except OSError as exc:
            ctx.skip(it.path, f"unreadable image: {exc}")
    labels = labels[keep]
    train, test = _split(labels, cfg)
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
