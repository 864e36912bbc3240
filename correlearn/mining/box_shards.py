"""Filtered selective-search RoIs per image, one parquet per input shard (ORL Sec. 3.1 (ii)).

What the ``proposals`` stage computes and what its artifact holds. Selective search (OpenCV, fast
mode) runs on a copy of each image whose long side is ``long_side`` pixels (the mining bench: same
raw GT recall as full resolution at ~7x the speed; ``None`` is the reference full resolution);
boxes are mapped back to image pixels, then filtered as ORL footnote 2 (:func:`orl_filter`): w, h
>= 96 px, aspect in [1/3, 3], greedy IoU <= 0.5, the first 100, else the first proposal.

:func:`propose_shard` writes ``boxes-<shard>.parquet`` (:data:`BOXES_SCHEMA`: ``key``, ``boxes``
(B_i, 4) xyxy, ``n_raw``) for one shard; :func:`merge_box_shards` concatenates them into
``boxes.parquet`` in shard order; :func:`read_boxes` is how later stages read that file, and
``correspondence`` reads the filter settings of its ``proposals`` input as a
:class:`ProposalsConfig` (they go into the reference JSON's ``info`` block).
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

BOXES = "boxes.parquet"
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


def shard_file_name(shard_name: str) -> str:
    """The name of the boxes file of one input shard (``boxes-shard-000000.parquet``)."""
    return f"boxes-{Path(shard_name).stem}.parquet"


def shard_file(out_dir: str | Path, shard_name: str) -> Path:
    """Where the boxes of one input shard go."""
    return Path(out_dir) / shard_file_name(shard_name)


def remove_stale_writes(out_dir: str | Path) -> None:
    """Delete the temporary files of shard writes that a stopped run cut short."""
    for tmp in Path(out_dir).glob(".boxes-*.tmp*"):
        tmp.unlink()


def propose_shard(
    shards_dir: str | Path, shard_name: str, cfg: ProposalsConfig, out_dir: str | Path
) -> Path:
    """Selective search + ORL filter over the images of one shard; writes its parquet atomically.

    Args:
        shards_dir: the ``image_shards`` artifact.
        shard_name: one of its shards (``shard-000000.tar``).
        cfg: the stage config (``processes`` selective-search workers).
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
    path = shard_file(out_dir, shard_name)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def merge_box_shards(out_dir: str | Path, names: list[str]) -> pa.Table:
    """Concatenate the shards' files into ``boxes.parquet`` (shard order), then delete them.

    Returns:
        The merged table.
    """
    parts = [shard_file(out_dir, n) for n in names]
    tables = [pq.read_table(p, schema=BOXES_SCHEMA) for p in parts]
    table = pa.concat_tables(tables) if tables else BOXES_SCHEMA.empty_table()
    pq.write_table(table, Path(out_dir) / BOXES)
    for p in parts:
        p.unlink()
    return table


def read_boxes(proposals_dir: str | Path, keys: list[str]) -> list[np.ndarray]:
    """Filtered boxes of a ``proposals`` artifact per image, in the order of ``keys``.

    Returns:
        One (B_i, 4) float32 xyxy array per key; (0, 4) for keys the artifact lacks.
    """
    table = pq.read_table(Path(proposals_dir) / BOXES)
    found = dict(
        zip(table.column("key").to_pylist(), table.column("boxes").to_pylist(), strict=True)
    )
    return [np.asarray(found.get(k, []), dtype=np.float32).reshape(-1, 4) for k in keys]
