"""One L2-normalised embedding per image for ORL's image kNN (ORL Sec. 3.1 Stage 2 (i)).

What the ``embed`` stage computes. Default as the reference (``ExtractorHook`` of the stage-1
``*_extract_feature.py`` config): resize the short side to 256, centre crop 224, the online
projector output of the stage-1 BYOL, L2-normalised. ``feature: backbone`` uses the pooled backbone
feature instead (any checkpoint). :func:`embed_shard` writes ``emb-<shard>.npy`` (rows in index
order) for one input shard; :func:`merge_embeddings` concatenates them into ``embeddings.npy``
(N, D) float32 and ``keys.json`` (N keys).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from pydantic import Field
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from tqdm.auto import tqdm

from correlearn.artifacts import ArtifactRef
from correlearn.config import NOT_IN_KEY, StrictModel
from correlearn.data.augment import normalize
from correlearn.data.readers import ShardedImages
from correlearn.eval.probes import extract_features
from correlearn.methods.byol import BYOL, BYOLConfig
from correlearn.models.io import load_backbone, read_backbone_json
from correlearn.train.checkpoint import latest_checkpoint, load_checkpoint
from correlearn.train.distributed import resolve_device

EMBEDDINGS = "embeddings.npy"
KEYS = "keys.json"


class EmbedConfig(StrictModel):
    """Config of ``embed``.

    Attributes:
        feature: ``projector`` (reference: BYOL online projector, needs a ``pretrain_byol``
            artifact) or ``backbone`` (pooled backbone feature of any checkpoint artifact).
        resize: short side before the centre crop.
        crop: side of the centre crop.
        batch_size: images per forward pass (not in the artifact key).
        num_workers: decoding worker processes (not in the artifact key).
        device: ``auto`` uses CUDA when present.
    """

    feature: Literal["projector", "backbone"] = "projector"
    resize: int = Field(256, ge=16)
    crop: int = Field(224, ge=16)
    batch_size: int = Field(128, ge=1, json_schema_extra=NOT_IN_KEY)
    num_workers: int = Field(2, ge=0, json_schema_extra=NOT_IN_KEY)
    device: str = "auto"


class _Preprocessed(Dataset):
    """``ds[i]`` -> the ``(3, crop, crop)`` normalised centre crop of image ``rows[i]``."""

    def __init__(self, images: ShardedImages, resize: int, crop: int, rows: list[int]):
        self.images, self.resize, self.crop, self.rows = images, resize, crop, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = torch.from_numpy(self.images[self.rows[i]]["image"]).permute(2, 0, 1)
        x = TF.resize(x, [self.resize], InterpolationMode.BILINEAR, antialias=True)
        return normalize(TF.center_crop(x, [self.crop, self.crop]))


def load_byol(checkpoint: ArtifactRef) -> BYOL:
    """The full BYOL method of a ``pretrain_byol`` artifact (its ``method`` config, its weights).

    Args:
        checkpoint: the artifact (``backbone.json``, ``train/last.pt``; its config's ``method``).

    Returns:
        The method in eval mode on the CPU, with the trained weights.
    """
    folder = Path(checkpoint.path)
    method = read_backbone_json(folder).get("method")
    if method != "byol":
        raise ValueError(f"{folder}: a {method!r} checkpoint; feature=projector needs a BYOL one")
    method = BYOL(checkpoint.config_as(BYOLConfig, field="method"))
    ckpt = latest_checkpoint(folder / "train")
    if ckpt is None:
        raise FileNotFoundError(f"{folder / 'train'}: no last.pt; embed needs a BYOL artifact")
    method.load_state_dict(load_checkpoint(ckpt)["model"])
    return method.eval()


def shard_file_name(shard_name: str) -> str:
    """The name of the embeddings file of one input shard (``emb-shard-000000.npy``)."""
    return f"emb-{Path(shard_name).stem}.npy"


def shard_file(out_dir: str | Path, shard_name: str) -> Path:
    """Where the embeddings of one input shard go."""
    return Path(out_dir) / shard_file_name(shard_name)


def remove_stale_writes(out_dir: str | Path) -> None:
    """Delete the temporary files of shard writes that a stopped run cut short."""
    for tmp in Path(out_dir).glob("emb-*.tmp.npy"):
        tmp.unlink()


def _network(checkpoint: ArtifactRef, feature: str) -> nn.Module:
    if feature == "projector":
        method = load_byol(checkpoint)
        return nn.Sequential(method.backbone, method.projector)
    return load_backbone(checkpoint.path)


def embed_shard(
    shards_dir: str | Path,
    shard_name: str,
    checkpoint: ArtifactRef,
    cfg: EmbedConfig,
    out_dir: str | Path,
) -> Path:
    """Embed the images of one shard and write ``emb-<shard>.npy`` (rows in index order) atomically.

    Args:
        shards_dir: the ``image_shards`` artifact.
        shard_name: one of its shards (``shard-000000.tar``).
        checkpoint: the checkpoint artifact (a ``pretrain_byol`` one for ``feature: projector``).
        cfg: the stage config.
        out_dir: the folder for the file (the stage's partial folder).

    Returns:
        The written file: ``(n, D)`` float32 unit rows, ``n`` the shard's images.
    """
    images = ShardedImages(shards_dir)
    rows = [i for i, s in enumerate(images.shards) if s == shard_name]
    data = _Preprocessed(images, cfg.resize, cfg.crop, rows)
    loader = DataLoader(data, batch_size=None, num_workers=cfg.num_workers)
    bar = tqdm(loader, total=len(rows), desc=f"embed {shard_name}", unit="img", leave=False)
    net = _network(checkpoint, cfg.feature)
    emb = extract_features(net, bar, cfg.batch_size, resolve_device(cfg.device), normalize=True)
    path = shard_file(out_dir, shard_name)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb.numpy().astype(np.float32))
    tmp.replace(path)
    return path


def merge_embeddings(out_dir: str | Path, names: list[str], keys: list[str]) -> np.ndarray:
    """Concatenate the shards' files into ``embeddings.npy``, write ``keys.json``, delete the parts.

    Args:
        out_dir: the partial folder holding one file per shard.
        names: the shards in index order.
        keys: the image keys in the same order (``ShardedImages.keys``).

    Returns:
        The ``(N, D)`` float32 embeddings.
    """
    out_dir = Path(out_dir)
    parts = [shard_file(out_dir, n) for n in names]
    emb = np.concatenate([np.load(p) for p in parts])
    for p in parts:
        p.unlink()
    np.save(out_dir / EMBEDDINGS, emb)
    (out_dir / KEYS).write_text(json.dumps(keys))
    return emb


def read_embeddings(embed_dir: str | Path) -> tuple[np.ndarray, list[str]]:
    """``(embeddings (N, D) float32, keys)`` of an ``embed`` artifact."""
    embed_dir = Path(embed_dir)
    return np.load(embed_dir / EMBEDDINGS), json.loads((embed_dir / KEYS).read_text())
