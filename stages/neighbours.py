"""Stage ``neighbours``: top-K cosine neighbours of every image, self excluded (ORL Sec. 3.1 Stage 2 (i)).

K = 10 (Sec. 3.2). FAISS exact inner-product search by default (on GPU when faiss-gpu sees one);
``index: ivf`` (or ``auto`` past a few million images) is approximate, and its recall@K against
exact search on a sample of queries is logged as the metric ``ivf_recall_at_k``. The neighbour
picture reads the images from the ``shards`` input (the ``image_shards`` the embeddings came from).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import pyarrow.parquet as pq
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.readers import ShardedImages
from correlearn.mining.embeddings import read_embeddings
from correlearn.mining.knn import AUTO_IVF_MIN_N, ivf_recall_at_k, knn_search
from correlearn.mining.neighbour_table import KNN, neighbour_table
from correlearn.stage import StageContext, StageSpec
from correlearn.viz.mining import neighbour_grid


class NeighboursConfig(StrictModel):
    """Config of ``neighbours``.

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


def _picture(ctx: StageContext, keys: list[str], scores: np.ndarray, ids: np.ndarray) -> None:
    images = ShardedImages(ctx.input_path("shards"))
    if images.keys != keys:  # shards other than the embedded ones: no picture
        return
    n = ctx.config.picture_queries
    q = np.unique(np.linspace(0, len(keys) - 1, n).round().astype(int))
    grid = neighbour_grid(images, ids[:, :5], scores[:, :5], q)
    path = ctx.out_dir / "pictures" / "knn.png"
    path.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(path), grid[:, :, ::-1])
    ctx.picture(path)


def run(ctx: StageContext) -> dict:
    """Write ``knn.parquet``: ``key``, ``nbr_keys``, ``nbr_ids`` (rows of keys), ``scores``."""
    cfg: NeighboursConfig = ctx.config
    emb, keys = read_embeddings(ctx.input_path("embeddings"))
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
    pq.write_table(neighbour_table(keys, scores, ids), ctx.out_dir / KNN)
    ctx.count("images", len(keys))
    ctx.count("k", ids.shape[1])
    ctx.log_metrics({"mean_nn1_cosine": float(scores[:, 0].mean()) if ids.size else float("nan")})
    if cfg.picture_queries and len(keys):
        _picture(ctx, keys, scores, ids)
    return {"index": kind, "k": int(ids.shape[1])}


STAGE = StageSpec(
    name="neighbours",
    # 2: the images of the neighbour picture are a declared input (``shards``), no longer found
    # through the embed artifact's manifest; the input is part of the key.
    version=2,
    config_model=NeighboursConfig,
    run=run,
    inputs={"embeddings": "embed", "shards": "image_shards"},
    description="top-K image neighbours by cosine (FAISS; ORL stage 2 (i))",
)
