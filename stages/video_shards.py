"""Stage ``video_shards``: frame folders or video files -> WebDataset shards, one sample per video."""

from __future__ import annotations

from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.fingerprint import fingerprint, get_dataset
from correlearn.data.shards import write_video_shards
from correlearn.data.sources import DatasetSpec, list_videos
from correlearn.stage import StageContext, StageSpec


class VideoShardsConfig(StrictModel):
    """Config of ``video_shards``.

    Attributes:
        dataset: a name under ``datasets:``.
        frame_step: keep every k-th frame (the stored fps is divided by k).
        max_short_side: cap the short side (never upscales).
        shard_size: videos per shard.
    """

    dataset: str = "default"
    frame_step: int | None = Field(None, ge=1)
    max_short_side: int | None = Field(None, ge=16)
    shard_size: int = Field(100, ge=1)


def _resolve(cfg: VideoShardsConfig, pipe) -> dict:
    spec = get_dataset(pipe, cfg.dataset, frame_step=cfg.frame_step)
    return {"source": fingerprint(spec, pipe.base_dir, videos=True)}


def run(ctx: StageContext) -> dict:
    """Write the shards and ``index.parquet``; unreadable videos are skipped with their reasons."""
    spec = DatasetSpec.model_validate(ctx.resolved["source"]["dataset"])
    videos = list_videos(spec, ctx.base_dir)
    summary = write_video_shards(
        videos, ctx.out_dir, ctx.config.shard_size, max_short_side=ctx.config.max_short_side
    )
    for path, reason in summary.skipped:
        ctx.skip(path, reason, warn=False)  # write_*_shards warned already
    ctx.count("videos", summary.n_samples)
    ctx.count("shards", len(summary.shards))
    ctx.count("skipped", len(summary.skipped))
    return {"dataset": spec.name}


STAGE = StageSpec(
    name="video_shards",
    version=1,
    config_model=VideoShardsConfig,
    run=run,
    resolve=_resolve,
    description="videos -> WebDataset shards (one sample per video) + parquet index",
)
