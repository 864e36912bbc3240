"""Stage ``proposals``: selective-search RoIs per image after ORL's filter (ORL Sec. 3.1 (ii)).

Selective search (OpenCV, fast mode) runs on a copy of each image whose long side is ``long_side``
pixels (the mining bench: same raw GT recall as full resolution at ~7x the speed; ``None`` is the
reference full resolution); boxes are mapped back to image pixels, then filtered as footnote 2: w, h
>= 96 px, aspect in [1/3, 3], greedy IoU <= 0.5, the first 100, else the first proposal.

The stage works shard by shard and writes ``boxes-<shard>.parquet`` into its partial folder, so a
stopped run loses at most the shard in progress: a re-run skips the shards whose file exists.
:func:`propose_shard` is the unit a flow may map over shards (Prefect tasks) before the stage
merges the files into ``boxes.parquet``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from correlearn.config import NOT_IN_KEY, StrictModel
from correlearn.data.readers import ShardedImages
from correlearn.mining.boxes import orl_filter
from correlearn.mining.proposals import propose_many
from correlearn.stage import StageContext, StageSpec

BOXES_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("boxes", pa.list_(pa.list_(pa.float32(), 4))),
        ("n_raw", pa.int32()),
    ]
)


class ProposalsConfig(StrictModel):
    """Config of ``proposals`` (filter defaults: ORL footnote 2 and Sec. 3.1 (ii)).

    Attributes:
        long_side: selective search on a copy with this long side (None: full resolution).
        mode: ``fast`` (ORL) or ``quality``.
        min_size: minimal box width and height in image pixels (96).
        aspect_range: admissible w / h.
        iou_thresh: maximal IoU with an already kept box.
        max_boxes: boxes kept per image (100).
        processes: selective-search worker processes (with a seed the boxes do not depend on
            it, so it is not in the artifact key).
        seed: C ``rand`` seed per image (OpenCV ranks regions with it); None: process state.
    """

    long_side: int | None = Field(384, ge=16)
    mode: Literal["fast", "quality"] = "fast"
    min_size: float = Field(96, ge=0)
    aspect_range: tuple[float, float] = (1 / 3, 3.0)
    iou_thresh: float = Field(0.5, ge=0, le=1)
    max_boxes: int = Field(100, ge=1)
    processes: int = Field(2, ge=1, json_schema_extra=NOT_IN_KEY)
    seed: int | None = 1


def shard_file(out_dir: Path, shard_name: str) -> Path:
    """Where the boxes of one input shard go."""
    return Path(out_dir) / f"boxes-{Path(shard_name).stem}.parquet"


def shard_names(shards_dir: str | Path) -> list[str]:
    """Input shard names in index order."""
    return list(dict.fromkeys(ShardedImages(shards_dir).shards))


def propose_shard(
    shards_dir: str | Path, shard_name: str, cfg: ProposalsConfig, out_dir: str | Path
) -> Path:
    """Selective search + ORL filter over the images of one shard; writes its parquet atomically.

    Args:
        shards_dir: the ``image_shards`` artifact.
        shard_name: one of its shards (``shard-000000.tar``).
        cfg: the stage config.
        out_dir: the folder for ``boxes-<shard>.parquet`` (the stage's partial folder).

    Returns:
        The written file (rows ``key, boxes (B_i, 4) xyxy, n_raw`` in index order).
    """
    images = ShardedImages(shards_dir)
    rows = [i for i, s in enumerate(images.shards) if s == shard_name]
    pixels = (images[i]["image"] for i in rows)
    raw = propose_many(
        pixels, cfg.long_side, cfg.processes, mode=cfg.mode, seed=cfg.seed, total=len(rows)
    )
    boxes, n_raw = [], []
    for props in raw:
        kept = orl_filter(props, cfg.min_size, cfg.aspect_range, cfg.iou_thresh, cfg.max_boxes)
        boxes.append(np.asarray(kept, dtype=np.float32).reshape(-1, 4).tolist())
        n_raw.append(len(props))
    table = pa.table(
        {"key": [images.keys[i] for i in rows], "boxes": boxes, "n_raw": n_raw},
        schema=BOXES_SCHEMA,
    )
    path = shard_file(Path(out_dir), shard_name)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_boxes(proposals_dir: str | Path, keys: list[str]) -> list[np.ndarray]:
    """Filtered boxes of a ``proposals`` artifact per image, in the order of ``keys``.

    Returns:
        One (B_i, 4) float32 xyxy array per key; (0, 4) for keys the artifact lacks.
    """
    table = pq.read_table(Path(proposals_dir) / "boxes.parquet")
    found = dict(
        zip(table.column("key").to_pylist(), table.column("boxes").to_pylist(), strict=True)
    )
    return [np.asarray(found.get(k, []), dtype=np.float32).reshape(-1, 4) for k in keys]


def run(ctx: StageContext) -> dict:
    """Propose per shard (skipping finished ones), then merge into ``boxes.parquet``."""
    cfg: ProposalsConfig = ctx.config
    src = ctx.input_path("shards")
    names = shard_names(src)
    for tmp in ctx.out_dir.glob(".boxes-*.tmp*"):  # a write cut short by the stop
        tmp.unlink()
    done = [n for n in names if shard_file(ctx.out_dir, n).is_file()]
    if done:
        ctx.info(f"{len(done)}/{len(names)} shard(s) already proposed; skipping them")
    for k, name in enumerate(names):
        if name not in done:
            ctx.info(f"shard {k + 1}/{len(names)}: {name}")
            propose_shard(src, name, cfg, ctx.out_dir)
    parts = [shard_file(ctx.out_dir, n) for n in names]
    tables = [pq.read_table(p, schema=BOXES_SCHEMA) for p in parts]
    table = pa.concat_tables(tables) if tables else BOXES_SCHEMA.empty_table()
    pq.write_table(table, ctx.out_dir / "boxes.parquet")
    for p in parts:
        p.unlink()
    counts = np.array([len(b) for b in table.column("boxes").to_pylist()])
    n_raw = table.column("n_raw").to_numpy()
    ctx.count("images", table.num_rows)
    ctx.count("shards", len(names))
    ctx.count("shards_resumed", len(done))
    ctx.count("boxes", int(counts.sum()))
    ctx.count("no_proposal", int((n_raw == 0).sum()))
    if table.num_rows:
        ctx.log_metrics(
            {"boxes_per_image": float(counts.mean()), "raw_per_image": float(n_raw.mean())}
        )
    return {"long_side": cfg.long_side, "min_size": cfg.min_size}


STAGE = StageSpec(
    name="proposals",
    version=1,
    config_model=ProposalsConfig,
    run=run,
    inputs={"shards": "image_shards"},
    resumable=True,
    description="selective-search RoIs + ORL filter (stage 2 (ii)), resumable per shard",
)
