"""Stage ``correspondence``: top-ranked RoI pairs between kNN images (ORL Sec. 3.1 Stage 2 (iii)).

Each filtered RoI is cropped, resized to 224 and embedded with the stage-1 backbone (pooled res5,
L2-normalised, as the reference ``Correspondence.forward_test``); every image's RoIs are embedded
once and cached on disk (a memory map in the partial folder, removed at the end), however many
kNN lists the image appears in. For each (image, neighbour) pair the top ``int(pair_ratio x query
RoIs)`` pairs of the cosine matrix are kept (N = 10%, Sec. 3.2; Table 5b). Outputs:
``pairs.parquet`` and the same pairs as the reference ``*_instance_correspondence.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import torch
from pydantic import Field
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from correlearn.config import NOT_IN_KEY, StrictModel
from correlearn.data.readers import ShardedImages
from correlearn.mining.correspondence import crop_boxes, embed_boxes, export_ref_json, mine_pairs
from correlearn.models.io import load_backbone
from correlearn.stage import StageContext, StageSpec
from correlearn.train.distributed import resolve_device
from correlearn.viz.mining import pair_picture
from stages.proposals import read_boxes

JSON_NAME = "correspondence.json"


class CorrespondenceConfig(StrictModel):
    """Config of ``correspondence``.

    Attributes:
        pair_ratio: N as a fraction of the query image's RoI count (0.1; Table 5b: 5%, 10%, 20%).
        knn_k: use the first ``knn_k`` stored neighbours (None: all; Table 5b ablates K).
        crop_size: side of the RoI crops fed to the backbone (224).
        batch_size: crops per forward pass (not in the artifact key).
        num_workers: decoding/cropping worker processes (not in the artifact key).
        device: ``auto`` uses CUDA when present.
        picture_pairs: rows of the RoI-pair picture (0: none).
    """

    pair_ratio: float = Field(0.1, gt=0)
    knn_k: int | None = Field(None, ge=1)
    crop_size: int = Field(224, ge=16)
    batch_size: int = Field(128, ge=1, json_schema_extra=NOT_IN_KEY)
    num_workers: int = Field(2, ge=0, json_schema_extra=NOT_IN_KEY)
    device: str = "auto"
    picture_pairs: int = Field(4, ge=0)


class _Crops(Dataset):
    def __init__(self, images: ShardedImages, boxes: list[np.ndarray], size: int):
        self.images, self.boxes, self.size = images, boxes, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return crop_boxes(self.images[i]["image"], self.boxes[i], self.size)


class _Rows:
    """``rows[i]`` -> the (B_i, D) slice of image ``i`` in a flat (sum B_i, D) array."""

    def __init__(self, flat: np.ndarray, starts: np.ndarray):
        self.flat, self.starts = flat, starts

    def __getitem__(self, i: int) -> np.ndarray:
        return np.asarray(self.flat[self.starts[i] : self.starts[i + 1]])


def _knn_ids(knn_dir: Path, keys: list[str], k: int | None) -> np.ndarray:
    table = pq.read_table(knn_dir / "knn.parquet")
    pos = {key: i for i, key in enumerate(keys)}
    rows = dict(
        zip(table.column("key").to_pylist(), table.column("nbr_keys").to_pylist(), strict=True)
    )
    width = max((len(v) for v in rows.values()), default=0)
    width = min(width, k) if k is not None else width
    ids = np.full((len(keys), width), -1, dtype=np.int64)
    for i, key in enumerate(keys):
        nbrs = [pos[n] for n in rows.get(key, [])][:width]
        ids[i, : len(nbrs)] = nbrs
    return ids


def run(ctx: StageContext) -> dict:
    """Write ``pairs.parquet``, ``correspondence.json`` and ``pictures/pairs.png``."""
    cfg: CorrespondenceConfig = ctx.config
    images = ShardedImages(ctx.input_path("shards"))
    keys = images.keys
    boxes = read_boxes(ctx.input_path("proposals"), keys)
    ids = _knn_ids(ctx.input_path("knn"), keys, cfg.knn_k)
    device = resolve_device(cfg.device)
    backbone = load_backbone(ctx.input_path("checkpoint")).to(device)
    starts = np.concatenate([[0], np.cumsum([len(b) for b in boxes])]).astype(np.int64)
    cache = ctx.out_dir / "box_embeddings.tmp"
    shape = (int(starts[-1]), backbone.out_dim)
    flat = (
        np.lib.format.open_memmap(cache, "w+", np.float32, shape) if shape[0] else np.zeros(shape)
    )
    loader = DataLoader(
        _Crops(images, boxes, cfg.crop_size), batch_size=None, num_workers=cfg.num_workers
    )
    for i, crops in enumerate(tqdm(loader, total=len(keys), desc="embed RoIs", unit="img")):
        if len(crops):
            flat[starts[i] : starts[i + 1]] = embed_boxes(backbone, crops, cfg.batch_size, device)
    table = mine_pairs(keys, ids, boxes, _Rows(flat, starts), cfg.pair_ratio)
    del flat
    cache.unlink(missing_ok=True)
    pq.write_table(table, ctx.out_dir / "pairs.parquet")
    prop = json.loads((ctx.input_path("proposals") / "manifest.json").read_text())["config"]
    info = {
        "bbox_min_size": prop["min_size"],
        "bbox_max_aspect_ratio": prop["aspect_range"][1],
        "bbox_max_iou": prop["iou_thresh"],
        "intra_bbox_num": prop["max_boxes"],
        "knn_image_num": int(ids.shape[1]),
        "knn_bbox_pair_ratio": cfg.pair_ratio,
    }
    export_ref_json(table, ctx.out_dir / JSON_NAME, dict(zip(keys, boxes, strict=True)), keys, info)
    ctx.count("images", len(keys))
    ctx.count("rois", int(starts[-1]))
    ctx.count("pairs", table.num_rows)
    ctx.count("knn_k", ids.shape[1])
    if table.num_rows:
        ctx.log_metrics({"mean_pair_cosine": float(np.mean(table.column("score").to_numpy()))})
    pic = pair_picture(images, table, cfg.picture_pairs)
    if pic is not None:
        path = ctx.out_dir / "pictures" / "pairs.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), pic[:, :, ::-1])
        ctx.picture(path)
    return {"pairs": table.num_rows, "knn_k": int(ids.shape[1])}


STAGE = StageSpec(
    name="correspondence",
    version=1,
    config_model=CorrespondenceConfig,
    run=run,
    inputs={
        "checkpoint": "pretrain_image",
        "shards": "image_shards",
        "knn": "knn",
        "proposals": "proposals",
    },
    description="RoI pairs between kNN images (ORL stage 2 (iii)) + reference JSON",
)
