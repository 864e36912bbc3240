"""Stage ``knn``: top-K cosine neighbours of every image, self excluded (ORL Sec. 3.1 Stage 2 (i)).

K = 10 (Sec. 3.2). FAISS exact inner-product search by default (on GPU when faiss-gpu sees one);
``index: ivf`` (or ``auto`` past a few million images) is approximate, and its recall@K against
exact search on a sample of queries is logged as the metric ``ivf_recall_at_k``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.readers import ShardedImages
from correlearn.mining.knn import AUTO_IVF_MIN_N, ivf_recall_at_k, knn_search
from correlearn.stage import StageContext, StageSpec
from correlearn.viz.mining import neighbour_grid


class KNNConfig(StrictModel):
    """Config of ``knn``.

    Attributes:
        k: neighbours per image (Table 5b ablates 1, 10, 20).
        index: ``flat`` (exact), ``ivf`` (approximate), ``auto`` (IVF from 2M images on).
        use_gpu: ``auto``: faiss-gpu when it sees a GPU.
        ivf_nlist: IVF cells (None: 4 sqrt(N)).
        nprobe: IVF cells visited per query.
        recall_sample: queries on which IVF recall@K is measured against exact search.
        picture_queries: rows of the neighbour picture (0: no picture).
    """

    k: int = Field(10, ge=1)
    index: Literal["flat", "ivf", "auto"] = "flat"
    use_gpu: bool | Literal["auto"] = "auto"
    ivf_nlist: int | None = Field(None, ge=1)
    nprobe: int = Field(32, ge=1)
    recall_sample: int = Field(1000, ge=1)
    picture_queries: int = Field(4, ge=0)


def shards_of(embed_dir: Path) -> Path | None:
    """The ``image_shards`` artifact an ``embed`` artifact was computed from (store layout)."""
    try:
        ref = json.loads((embed_dir / "manifest.json").read_text())["inputs"]["shards"]
    except (OSError, KeyError, ValueError):
        return None
    path = embed_dir.parents[1] / ref["stage"] / ref["key"]
    return path if path.is_dir() else None


def run(ctx: StageContext) -> dict:
    """Write ``knn.parquet``: ``key``, ``nbr_keys``, ``nbr_ids`` (rows of keys), ``scores``."""
    cfg: KNNConfig = ctx.config
    src = ctx.input_path("embeddings")
    emb = np.load(src / "embeddings.npy")
    keys = json.loads((src / "keys.json").read_text())
    kind = ("ivf" if len(emb) >= AUTO_IVF_MIN_N else "flat") if cfg.index == "auto" else cfg.index
    ctx.info(f"{kind} search: {len(emb)} x {emb.shape[1]}, k={cfg.k}")
    scores, ids = knn_search(
        emb, cfg.k, True, kind, use_gpu=cfg.use_gpu, ivf_nlist=cfg.ivf_nlist, nprobe=cfg.nprobe
    )
    if kind == "ivf":
        recall = ivf_recall_at_k(
            emb, cfg.k, cfg.ivf_nlist, cfg.nprobe, cfg.recall_sample, use_gpu=cfg.use_gpu
        )
        ctx.log_metrics({"ivf_recall_at_k": recall})
    karr = np.asarray(keys, dtype=object)
    table = pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "nbr_keys": pa.array([karr[r[r >= 0]].tolist() for r in ids], pa.list_(pa.string())),
            "nbr_ids": pa.array([r[r >= 0].tolist() for r in ids], pa.list_(pa.int64())),
            "scores": pa.array(
                [s[r >= 0].tolist() for s, r in zip(scores, ids, strict=True)],
                pa.list_(pa.float32()),
            ),
        }
    )
    pq.write_table(table, ctx.out_dir / "knn.parquet")
    ctx.count("images", len(keys))
    ctx.count("k", ids.shape[1])
    ctx.log_metrics({"mean_nn1_cosine": float(scores[:, 0].mean()) if ids.size else float("nan")})
    shards = shards_of(src)
    if cfg.picture_queries and shards is not None and len(keys):
        images = ShardedImages(shards)
        if images.keys == keys:
            q = np.unique(np.linspace(0, len(keys) - 1, cfg.picture_queries).round().astype(int))
            grid = neighbour_grid(images, ids[:, :5], scores[:, :5], q)
            path = ctx.out_dir / "pictures" / "knn.png"
            path.parent.mkdir(exist_ok=True)
            cv2.imwrite(str(path), grid[:, :, ::-1])
            ctx.picture(path)
    return {"index": kind, "k": int(ids.shape[1])}


STAGE = StageSpec(
    name="knn",
    version=1,
    config_model=KNNConfig,
    run=run,
    inputs={"embeddings": "embed"},
    description="top-K image neighbours by cosine (FAISS; ORL stage 2 (i))",
)
