"""Helpers the stage modules share: dataset specs and fingerprints, usable videos of a sampler."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from correlearn.config import ConfigError, validate
from correlearn.data.frame_index import FrameSampler, valid_videos
from correlearn.data.readers import ShardedVideos
from correlearn.data.sources import DataError, DatasetSpec, list_images, list_videos, resolve_root
from correlearn.stage import StageContext


def get_dataset(pipe: Any, name: str, **changes: Any) -> DatasetSpec:
    """The dataset spec ``datasets.<name>`` of the pipeline config (``name`` defaults to the key)."""
    specs = pipe.raw.get("datasets") or {}
    if name not in specs:
        raise ConfigError(
            f"{pipe.config_path}: datasets.{name} is not defined; have {sorted(specs)}"
        )
    raw = {"name": name, **specs[name], **{k: v for k, v in changes.items() if v is not None}}
    return validate(DatasetSpec, raw, pipe.config_path.name, prefix=f"datasets.{name}")


def fingerprint(spec: DatasetSpec, base: Path, videos: bool) -> dict[str, Any]:
    """Key material for a source dataset: its resolved root, item count and a hash of names+sizes.

    Hashing names and sizes (not mtimes, which a fresh clone changes) makes the key follow the
    data: adding, removing or replacing a file gives a new artifact.
    """
    root = resolve_root(spec, base)
    items = list_videos(spec, base) if videos else list_images(spec, base)
    h = hashlib.sha256()
    n_files = 0
    for it in items:
        paths = (it.frames or [it.video_path]) if videos else [it.path]
        for p in paths:
            h.update(f"{Path(p).relative_to(root)}:{Path(p).stat().st_size};".encode())
            n_files += 1
    return {
        "dataset": spec.model_dump(mode="json"),
        "root": str(root),
        "items": len(items),
        "files": n_files,
        "fingerprint": h.hexdigest()[:16],
    }


def usable_videos(ctx: StageContext, videos: ShardedVideos, sampler: FrameSampler) -> list[int]:
    """Row positions in ``videos`` of the videos long enough for ``sampler``.

    The others are skipped with their reason (``ctx.skip``), never a crash.

    Raises:
        DataError: no video is usable, or the frame index does not match the video shards.
    """
    index = ctx.input_path("frames") / "frame_index.parquet"
    ok, skipped = valid_videos(index, sampler)
    for key, reason in skipped:
        ctx.skip(key, reason)
    keys = pq.read_table(index, columns=["key"]).column("key").to_pylist()
    try:
        ids = [videos.position(keys[i]) for i in ok]
    except KeyError as exc:
        raise DataError(f"{index}: video {exc} is not in the video shards") from None
    if not ids:
        raise DataError(
            f"no usable video: all {len(keys)} videos are too short for {sampler.kind} sampling "
            f"(first reason: {skipped[0][1] if skipped else 'empty index'})"
        )
    ctx.count("videos_used", len(ids))
    ctx.count("videos_skipped", len(skipped))
    return ids


def draw_videos(rng: np.random.Generator, ids: list[int], k: int) -> np.ndarray:
    """Draw ``k`` distinct usable videos for one step (with replacement only if there are fewer)."""
    return rng.choice(np.asarray(ids), size=k, replace=k > len(ids))
