"""The data kinds of pre-training (images, videos, mined object pairs) and the methods' batches.

Each ``open_*`` function opens a training stage's input artifacts; each ``*_batch`` function draws
one step's samples with the step's RNG and hands them to the method's batch builder (in the
method's module). They are pure functions of their arguments, so a resumed run and each torchrun
rank rebuild exactly the batches they would have drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from correlearn.data.cim_pairs import build_cim_batch
from correlearn.data.decode import decode_on_device
from correlearn.data.readers import ShardedImages, ShardedVideos
from correlearn.data.sources import DataError
from correlearn.data.usable_videos import draw_videos, usable_videos
from correlearn.methods.byol import build_byol_batch
from correlearn.methods.cropmae import build_cropmae_batch
from correlearn.methods.orl import build_orl_batch
from correlearn.methods.orl_rois import RoIPairIndex
from correlearn.methods.siammae import build_siammae_batch
from correlearn.methods.vfs import build_vfs_batch
from correlearn.mining.box_shards import read_boxes
from correlearn.pretrain.spec import DataKind, TrainingData
from correlearn.train.distributed import resolve_device

PAIRS_FILE = "pairs.parquet"


def open_images(paths: dict[str, Path], cfg: Any) -> TrainingData:
    """The image shards (``shards``)."""
    images = ShardedImages(paths["shards"])
    return TrainingData(len(images), {"images": images})


_BYOL_READS = {"full": "numpy", "reduced": "lazy", "device": "bytes"}


def open_byol_images(paths: dict[str, Path], cfg: Any) -> TrainingData:
    """The image shards, read as ``method.decode`` asks.

    ``full``: decoded arrays; ``reduced``: encoded images that decode at reduced size; ``device``:
    the stored bytes, decoded per batch on the training device (``sources["device"]``) in the
    training process.
    """
    images = ShardedImages(paths["shards"], decode=_BYOL_READS[cfg.method.decode])
    if cfg.method.decode != "device":
        return TrainingData(len(images), {"images": images})
    device = resolve_device(cfg.train.device)
    return TrainingData(len(images), {"images": images, "device": device}, in_process=True)


def open_videos(paths: dict[str, Path], cfg: Any) -> TrainingData:
    """The video shards (``videos``) and the videos long enough for the method's frame sampler."""
    videos = ShardedVideos(paths["videos"])
    ids, skipped = usable_videos(paths["frames"], videos, cfg.method.sampler)
    counts = {"videos_used": len(ids), "videos_skipped": len(skipped)}
    return TrainingData(len(ids), {"videos": videos, "video_ids": ids}, skipped, counts)


def open_object_pairs(paths: dict[str, Path], cfg: Any) -> TrainingData:
    """Image shards, filtered RoIs (``proposals``) and stored RoI pairs (``correspondence``)."""
    images = ShardedImages(paths["shards"])
    boxes = read_boxes(paths["proposals"], images.keys)
    pairs = RoIPairIndex(pq.read_table(paths["correspondence"] / PAIRS_FILE), images.keys)
    lonely = sum(pairs.num_neighbours(i) == 0 for i in range(len(images)))
    notes = [f"{lonely} image(s) have no stored RoI pair: their inter pair is the whole image"]
    return TrainingData(
        len(images),
        {"images": images, "boxes": boxes, "pairs": pairs},
        counts={"images_without_pairs": lonely},
        notes=notes if lonely else [],
    )


IMAGES = DataKind("images", {"shards": "image_shards"}, open_images)
BYOL_IMAGES = DataKind("images", {"shards": "image_shards"}, open_byol_images)
VIDEOS = DataKind("videos", {"videos": "video_shards", "frames": "frame_index"}, open_videos)
OBJECT_PAIRS = DataKind(
    "object_pairs",
    {"shards": "image_shards", "proposals": "proposals", "correspondence": "correspondence"},
    open_object_pairs,
)


def _draw_images(data: TrainingData, cfg: Any, rng: np.random.Generator) -> list[np.ndarray]:
    images = data["images"]
    idx = rng.integers(0, len(images), size=cfg.train.batch_size)
    return [images[int(i)]["image"] for i in idx]


def byol_batch(data: TrainingData, cfg: Any, step: int, rng, gen) -> dict:
    """BYOL: ``train.batch_size`` random images, two augmented views each (ORL Sec. 3.1)."""
    images = _draw_images(data, cfg, rng)
    if "device" in data.sources:  # method.decode: device
        images = decode_on_device(images, data["device"])
    return build_byol_batch(images, rng, cfg.method)


def cim_batch(data: TrainingData, cfg: Any, step: int, rng, gen) -> dict:
    """CIM: ``train.batch_size`` random images, each a context image and its exemplar."""
    return build_cim_batch(_draw_images(data, cfg, rng), rng, cfg.method.pair)


def orl_batch(data: TrainingData, cfg: Any, step: int, rng, gen) -> dict:
    """ORL stage 3: random images with their intra- and inter-image RoI pairs."""
    idx = rng.integers(0, len(data["images"]), size=cfg.train.batch_size)
    return build_orl_batch(data["images"], data["pairs"], data["boxes"], idx, rng, cfg.method)


def cropmae_batch(data: TrainingData, cfg: Any, step: int, rng, gen) -> dict:
    """CropMAE: ``train.batch_size`` random images, a global and a local crop of each."""
    return build_cropmae_batch(_draw_images(data, cfg, rng), rng, cfg.method)


def vfs_batch(data: TrainingData, cfg: Any, step: int, rng, gen) -> dict:
    """VFS: ``train.batch_size`` distinct usable videos, frames drawn by the method's sampler."""
    ids = draw_videos(rng, data["video_ids"], cfg.train.batch_size)
    return build_vfs_batch(data["videos"], ids, rng, cfg.method)


def siammae_batch(data: TrainingData, cfg: Any, step: int, rng, gen) -> dict:
    """SiamMAE: ``batch_size / repeated_sampling`` videos, each giving that many frame pairs."""
    per_step = cfg.train.batch_size // cfg.method.repeated_sampling
    ids = draw_videos(rng, data["video_ids"], per_step)
    return build_siammae_batch(data["videos"], ids, rng, cfg.method)


# Held-out batches (correlearn.pretrain.heldout): every held-out item once (images, in chunks of
# ``val.batch_size``) or every held-out video once per round, through the training builders.


def _chunks(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def _grouped(batch: dict, data: TrainingData, idx: list[int]) -> dict:
    """The batch with ``group`` (B,): the held-out video of each image."""
    return {**batch, "group": torch.tensor([data["groups"][i] for i in idx], dtype=torch.long)}


def byol_heldout(data: TrainingData, cfg: Any, rng: np.random.Generator) -> list[dict]:
    """BYOL: two augmented views of every held-out image, with its video as ``group``."""
    images = data["images"]
    return [
        _grouped(build_byol_batch([images[i]["image"] for i in idx], rng, cfg.method), data, idx)
        for idx in _chunks(len(images), cfg.val.batch_size)
    ]


def cim_heldout(data: TrainingData, cfg: Any, rng: np.random.Generator) -> list[dict]:
    """CIM: every held-out image as a context with its exemplars and ground-truth maps."""
    images = data["images"]
    return [
        build_cim_batch([images[i]["image"] for i in idx], rng, cfg.method.pair)
        for idx in _chunks(len(images), cfg.val.batch_size)
    ]


def cropmae_heldout(data: TrainingData, cfg: Any, rng: np.random.Generator) -> list[dict]:
    """CropMAE: the two crops of every held-out image."""
    images = data["images"]
    return [
        build_cropmae_batch([images[i]["image"] for i in idx], rng, cfg.method)
        for idx in _chunks(len(images), cfg.val.batch_size)
    ]


class _NoPairs:
    """A held-out image has no mined neighbour: its inter pair falls back to the whole frame."""

    def sample(self, i: int, rng: np.random.Generator) -> None:
        return None


def orl_heldout(data: TrainingData, cfg: Any, rng: np.random.Generator) -> list[dict]:
    """ORL stage 3: views and two jittered views of each held-out image's object box."""
    images, boxes = data["images"], data["boxes"]
    return [
        _grouped(build_orl_batch(images, _NoPairs(), boxes, idx, rng, cfg.method), data, idx)
        for idx in _chunks(len(images), cfg.val.batch_size)
    ]


def vfs_heldout(data: TrainingData, cfg: Any, rng: np.random.Generator) -> list[dict]:
    """VFS: every held-out video long enough for the sampler, once per round."""
    ids = _long_enough(data, cfg)
    return [build_vfs_batch(data["videos"], ids, rng, cfg.method) for _ in range(cfg.val.rounds)]


def siammae_heldout(data: TrainingData, cfg: Any, rng: np.random.Generator) -> list[dict]:
    """SiamMAE: ``repeated_sampling`` frame pairs of every held-out video, once per round."""
    ids = _long_enough(data, cfg)
    return [
        build_siammae_batch(data["videos"], ids, rng, cfg.method) for _ in range(cfg.val.rounds)
    ]


def _long_enough(data: TrainingData, cfg: Any) -> list[int]:
    videos, sampler = data["videos"], cfg.method.sampler
    ids = [i for i in data["video_ids"] if videos.n_frames[i] >= sampler.min_frames(videos.fps[i])]
    if len(ids) < 2:
        raise DataError(
            f"val: {len(ids)} held-out video(s) are long enough for {sampler.kind} sampling; "
            "the pretext metric needs at least 2"
        )
    return ids
