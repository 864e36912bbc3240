"""Which videos of the shards a frame sampler can use, and the draw of one step's videos."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from correlearn.data.frame_index import FrameSampler, valid_videos
from correlearn.data.readers import ShardedVideos
from correlearn.data.sources import DataError
from correlearn.stage import StageContext


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
