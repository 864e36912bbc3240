"""Stage ``embed``: one L2-normalised embedding per image for ORL's kNN (ORL Sec. 3.1 Stage 2 (i)).

Default as the reference (``ExtractorHook`` of the stage-1 ``*_extract_feature.py`` config):
resize the short side to 256, centre crop 224, the online projector output of the stage-1 BYOL,
L2-normalised. ``feature: backbone`` uses the pooled backbone feature instead (any checkpoint).
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

from correlearn.config import NOT_IN_KEY, StrictModel
from correlearn.data.augment import normalize
from correlearn.data.readers import ShardedImages
from correlearn.eval.probes import extract_features
from correlearn.methods.byol import BYOL, BYOLConfig
from correlearn.models.io import load_backbone, read_backbone_spec
from correlearn.stage import StageContext, StageSpec
from correlearn.train.checkpoint import latest_checkpoint, load_checkpoint
from correlearn.train.distributed import resolve_device


class EmbedConfig(StrictModel):
    """Config of ``embed``.

    Attributes:
        feature: ``projector`` (reference: BYOL online projector, needs a ``pretrain_image``
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
    def __init__(self, images: ShardedImages, resize: int, crop: int, rows: list[int]):
        self.images, self.resize, self.crop, self.rows = images, resize, crop, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = torch.from_numpy(self.images[self.rows[i]]["image"]).permute(2, 0, 1)
        x = TF.resize(x, [self.resize], InterpolationMode.BILINEAR, antialias=True)
        return normalize(TF.center_crop(x, [self.crop, self.crop]))


def load_byol(folder: str | Path) -> BYOL:
    """The full BYOL method of a ``pretrain_image`` artifact (config from its manifest).

    Args:
        folder: the artifact folder (``manifest.json``, ``train/last.pt``).

    Returns:
        The method in eval mode on the CPU, with the trained weights.
    """
    folder = Path(folder)
    method = read_backbone_spec(folder).get("method")
    if method != "byol":
        raise ValueError(f"{folder}: a {method!r} checkpoint; feature=projector needs a BYOL one")
    manifest = json.loads((folder / "manifest.json").read_text())
    method = BYOL(BYOLConfig.model_validate(manifest["config"]["method"]))
    ckpt = latest_checkpoint(folder / "train")
    if ckpt is None:
        raise FileNotFoundError(f"{folder / 'train'}: no last.pt; embed needs a BYOL artifact")
    method.load_state_dict(load_checkpoint(ckpt)["model"])
    return method.eval()


def shard_file(out_dir: str | Path, shard_name: str) -> Path:
    """Where the embeddings of one input shard go."""
    return Path(out_dir) / f"emb-{Path(shard_name).stem}.npy"


def _network(ckpt: Path, feature: str) -> nn.Module:
    if feature == "projector":
        method = load_byol(ckpt)
        return nn.Sequential(method.backbone, method.projector)
    return load_backbone(ckpt)


def embed_shard(
    shards_dir: str | Path, shard_name: str, ckpt: str | Path, cfg: EmbedConfig, out_dir: str | Path
) -> Path:
    """Embed the images of one shard and write ``emb-<shard>.npy`` (rows in index order) atomically.

    The stage calls it shard by shard (so a stopped run resumes at the next shard); the ``orl``
    flow maps it as Prefect tasks over the shards when it runs on a Dask task runner.
    """
    images = ShardedImages(shards_dir)
    rows = [i for i, s in enumerate(images.shards) if s == shard_name]
    data = _Preprocessed(images, cfg.resize, cfg.crop, rows)
    loader = DataLoader(data, batch_size=None, num_workers=cfg.num_workers)
    bar = tqdm(loader, total=len(rows), desc=f"embed {shard_name}", unit="img", leave=False)
    net = _network(Path(ckpt), cfg.feature)
    emb = extract_features(net, bar, cfg.batch_size, resolve_device(cfg.device), normalize=True)
    path = shard_file(out_dir, shard_name)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb.numpy().astype(np.float32))
    tmp.replace(path)
    return path


def run(ctx: StageContext) -> dict:
    """Write ``embeddings.npy`` (N, D) float32 unit rows and ``keys.json`` (N keys, shard order)."""
    cfg: EmbedConfig = ctx.config
    shards = ctx.input_path("shards")
    images = ShardedImages(shards)
    names = list(dict.fromkeys(images.shards))
    for name in names:
        if not shard_file(ctx.out_dir, name).is_file():  # done before a stop, or by mapped tasks
            embed_shard(shards, name, ctx.input_path("checkpoint"), cfg, ctx.out_dir)
    parts = [shard_file(ctx.out_dir, n) for n in names]
    emb = np.concatenate([np.load(p) for p in parts])
    for p in parts:
        p.unlink()
    np.save(ctx.out_dir / "embeddings.npy", emb)
    (ctx.out_dir / "keys.json").write_text(json.dumps(images.keys))
    ctx.count("images", len(emb))
    ctx.count("dim", emb.shape[1])
    return {"feature": cfg.feature, "dim": int(emb.shape[1])}


STAGE = StageSpec(
    name="embed",
    version=2,
    config_model=EmbedConfig,
    run=run,
    inputs={"checkpoint": "pretrain_image", "shards": "image_shards"},
    resumable=True,
    description="L2-normalised image embeddings for ORL's kNN (stage 2 (i))",
)
