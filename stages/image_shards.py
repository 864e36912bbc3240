"""Stage ``image_shards``: an image dataset (or frames of videos as scene images) -> WebDataset shards."""

from __future__ import annotations

from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.fingerprint import fingerprint, get_dataset
from correlearn.data.shards import write_image_shards
from correlearn.data.sources import DatasetSpec, list_images
from correlearn.stage import StageContext, StageSpec


class ImageShardsConfig(StrictModel):
    """Config of ``image_shards``.

    Attributes:
        dataset: a name under ``datasets:``.
        frame_step: keep every k-th frame of frame folders (overrides the dataset's).
        max_short_side: cap the short side (never upscales); None keeps the original JPEG bytes.
        shard_size: samples per shard.
    """

    dataset: str = "default"
    frame_step: int | None = Field(None, ge=1)
    max_short_side: int | None = Field(None, ge=16)
    shard_size: int = Field(1000, ge=1)


def _spec(cfg: ImageShardsConfig, pipe):
    return get_dataset(pipe, cfg.dataset, frame_step=cfg.frame_step)


def _resolve(cfg: ImageShardsConfig, pipe) -> dict:
    return {"source": fingerprint(_spec(cfg, pipe), pipe.base_dir, videos=False)}


def run(ctx: StageContext) -> dict:
    """Write the shards and ``index.parquet``; skipped images are listed with their reasons."""
    spec = DatasetSpec.model_validate(ctx.resolved["source"]["dataset"])
    items = list_images(spec, ctx.base_dir)
    summary = write_image_shards(
        items, ctx.out_dir, ctx.config.shard_size, max_short_side=ctx.config.max_short_side
    )
    for path, reason in summary.skipped:
        ctx.skip(path, reason, warn=False)  # write_*_shards warned already
    ctx.count("images", summary.n_samples)
    ctx.count("shards", len(summary.shards))
    ctx.count("skipped", len(summary.skipped))
    return {"dataset": spec.name}


STAGE = StageSpec(
    name="image_shards",
    version=1,
    config_model=ImageShardsConfig,
    run=run,
    resolve=_resolve,
    description="images -> WebDataset shards + parquet index",
)
