"""Stage ``correspondence``: top-ranked RoI pairs between kNN images (ORL Sec. 3.1 Stage 2 (iii)).

Each filtered RoI is cropped, resized to 224 and embedded with the stage-1 backbone (pooled res5,
L2-normalised, as the reference ``Correspondence.forward_test``), each image's RoIs once
(:func:`~correlearn.mining.correspondence.mine_collection_pairs`). For each (image, neighbour) pair
the top ``int(pair_ratio x query RoIs)`` pairs of the cosine matrix are kept (N = 10%, Sec. 3.2;
Table 5b). Outputs: ``pairs.parquet`` and the same pairs as the reference
``*_instance_correspondence.json`` (:mod:`correlearn.mining.ref_json`), whose ``info`` block
carries the filter settings of the ``proposals`` input.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow.parquet as pq
from pydantic import Field

from correlearn.config import NOT_IN_KEY, StrictModel
from correlearn.data.readers import ShardedImages
from correlearn.mining.box_shards import ProposalsConfig, read_boxes
from correlearn.mining.correspondence import mine_collection_pairs
from correlearn.mining.neighbour_table import read_neighbour_ids
from correlearn.mining.ref_json import export_ref_json
from correlearn.models.io import load_backbone
from correlearn.stage import StageContext, StageSpec
from correlearn.train.distributed import resolve_device
from correlearn.viz.mining import pair_picture

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


def _ref_info(prop: ProposalsConfig, knn_k: int, pair_ratio: float) -> dict:
    """The reference JSON's ``info`` block: the settings the pairs were mined with."""
    return {
        "bbox_min_size": prop.min_size,
        "bbox_max_aspect_ratio": prop.aspect_range[1],
        "bbox_max_iou": prop.iou_thresh,
        "intra_bbox_num": prop.max_boxes,
        "knn_image_num": knn_k,
        "knn_bbox_pair_ratio": pair_ratio,
    }


def run(ctx: StageContext) -> dict:
    """Write ``pairs.parquet``, ``correspondence.json`` and ``pictures/pairs.png``."""
    cfg: CorrespondenceConfig = ctx.config
    images = ShardedImages(ctx.input_path("shards"))
    keys = images.keys
    boxes = read_boxes(ctx.input_path("proposals"), keys)
    ids = read_neighbour_ids(ctx.input_path("knn"), keys, cfg.knn_k)
    device = resolve_device(cfg.device)
    backbone = load_backbone(ctx.input_path("checkpoint")).to(device)
    table, n_rois = mine_collection_pairs(
        images, keys, boxes, ids, backbone, ctx.out_dir / "box_embeddings.tmp",
        cfg.pair_ratio, cfg.crop_size, cfg.batch_size, cfg.num_workers, device,
    )  # fmt: skip
    pq.write_table(table, ctx.out_dir / "pairs.parquet")
    prop = ctx.inputs["proposals"].config_as(ProposalsConfig)
    info = _ref_info(prop, int(ids.shape[1]), cfg.pair_ratio)
    export_ref_json(table, ctx.out_dir / JSON_NAME, dict(zip(keys, boxes, strict=True)), keys, info)
    ctx.count("images", len(keys))
    ctx.count("rois", n_rois)
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
        "checkpoint": "pretrain_byol",
        "shards": "image_shards",
        "knn": "neighbours",  # input name kept: it is part of the artifact key
        "proposals": "proposals",
    },
    description="RoI pairs between kNN images (ORL stage 2 (iii)) + reference JSON",
)
