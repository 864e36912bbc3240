"""Stage ``image_shards``: an image dataset (or frames of videos as scene images) -> WebDataset shards."""

from __future__ import annotations

from pydantic import Field

from correlearn.data.shard_stage import SourceShardsConfig, source_shard_stage


class ImageShardsConfig(SourceShardsConfig):
    """Config of ``image_shards``.

    Attributes:
        dataset: a name under ``datasets:``.
        frame_step: keep every k-th frame of frame folders (overrides the dataset's).
        max_short_side: cap the short side (never upscales); None keeps the original JPEG bytes.
        shard_size: images per shard.
        workers: shard-writing processes (not in the key: the bytes do not depend on it).
    """

    shard_size: int = Field(1000, ge=1)


STAGE = source_shard_stage(
    "image_shards",
    "images",
    ImageShardsConfig,
    # 2: shards are planned by count up front, so a skipped image leaves its shard one short
    # instead of shifting later images into it (byte-identical when nothing is skipped).
    version=2,
    description="images -> WebDataset shards + parquet index",
)
