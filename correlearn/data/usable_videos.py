"""Which videos of the shards a frame sampler can use, and the draw of one step's videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from correlearn.data.frame_index import FrameSampler, valid_videos
from correlearn.data.readers import ShardedVideos
from correlearn.data.sources import DataError

FRAME_INDEX = "frame_index.parquet"


def usable_videos(
    frames_dir: str | Path, videos: ShardedVideos, sampler: FrameSampler
) -> tuple[list[int], list[tuple[str, str]]]:
    """Row positions in ``videos`` of the videos long enough for ``sampler``, and the others.

    Args:
        frames_dir: the ``frame_index`` artifact (its ``frame_index.parquet``).
        videos: the video shards the index was built from.
        sampler: the method's frame sampler.

    Returns:
        ``(ids, skipped)``: the usable row positions, and ``(video key, reason)`` of each video
        left out (the caller records them; a short video is skipped, never a crash).

    Raises:
        DataError: no video is usable, or the frame index does not match the video shards.
    """
    index = Path(frames_dir) / FRAME_INDEX
    ok, skipped = valid_videos(index, sampler)
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
    return ids, skipped


def draw_videos(rng: np.random.Generator, ids: list[int], k: int) -> np.ndarray:
    """Draw ``k`` distinct usable videos for one step (with replacement only if there are fewer)."""
    return rng.choice(np.asarray(ids), size=k, replace=k > len(ids))
