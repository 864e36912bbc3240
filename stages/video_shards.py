"""Stage ``video_shards``: frame folders or video files -> WebDataset shards, one sample per video."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from correlearn.data.shard_stage import SourceShardsConfig, source_shard_stage


class VideoShardsConfig(SourceShardsConfig):
    """Config of ``video_shards``.

    Attributes:
        dataset: a name under ``datasets:``.
        frame_step: keep every k-th frame (the stored fps is divided by k).
        max_short_side: cap the short side (never upscales).
        shard_size: videos per shard.
        workers: shard-writing processes (not in the key: the bytes do not depend on it).
        max_fps: store at most this frame rate: every ``ceil(fps / max_fps)``-th frame, at
            ``fps / k``. The source rate of frame folders is the dataset's ``fps`` (DAVIS: 24).
        layout: ``frames`` (one JPEG member per frame) or ``encoded`` (each video one H.264
            member, decoded on the fly by the readers; needs PyAV).
    """

    shard_size: int = Field(100, ge=1)
    max_fps: float | None = Field(None, gt=0)
    layout: Literal["frames", "encoded"] = "frames"


STAGE = source_shard_stage(
    "video_shards",
    "videos",
    VideoShardsConfig,
    # 2: max_fps and layout added (new key material); a skipped video now leaves its shard one
    # video short instead of shifting later videos into it.
    version=2,
    description="videos -> WebDataset shards (one sample per video) + parquet index",
)
