"""Stage ``pretrain_vfs``: VFS frame-level similarity learning on video shards (Xu & Wang 2021)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.frame_index import FrameSampler, valid_videos
from correlearn.data.readers import ShardedVideos
from correlearn.data.sources import DataError
from correlearn.methods.vfs import VFS, VFSConfig, build_vfs_batch
from correlearn.stage import StageContext, StageSpec
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.stage_run import train_in_stage


def _vfs_optim() -> OptimConfig:
    # VFS Sec. 4.1: SGD lr 0.05 at batch 256, momentum 0.9, wd 1e-4, cosine, no warm-up; the ref
    # code's mmcv SGD has no paramwise options, so biases and BN parameters are decayed too.
    return OptimConfig(
        name="sgd",
        base_lr=0.05,
        weight_decay=1e-4,
        momentum=0.9,
        warmup_epochs=0,
        exclude_bias_norm=False,
    )


class PretrainVFSConfig(StrictModel):
    """VFS method, loop and optimiser; defaults are the paper's ResNet-18 run (Sec. 4.1).

    ``train.batch_size`` counts videos (n frames each); an epoch is one pass over usable videos.
    """

    method: VFSConfig = Field(default_factory=VFSConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=200, batch_size=256))
    optim: OptimConfig = Field(default_factory=_vfs_optim)


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


def run(ctx: StageContext) -> dict:
    """Train VFS; writes ``backbone.pt``, ``train/last.pt`` and the sampled-frames picture."""
    cfg: PretrainVFSConfig = ctx.config
    videos = ShardedVideos(ctx.input_path("videos"))
    ids = usable_videos(ctx, videos, cfg.method.sampler)
    method = VFS(cfg.method)
    batch_size = cfg.train.batch_size

    def build_batch(step, rng, gen):
        return build_vfs_batch(videos, draw_videos(rng, ids, batch_size), rng, cfg.method)

    return train_in_stage(
        ctx,
        method,
        build_batch,
        cfg.train,
        cfg.optim,
        num_samples=len(ids),
        backbone=(cfg.method.backbone, cfg.method.backbone_kwargs),
        method_name="vfs",
    )


STAGE = StageSpec(
    name="pretrain_vfs",
    version=1,
    config_model=PretrainVFSConfig,
    run=run,
    inputs={"videos": "video_shards", "frames": "frame_index"},
    resumable=True,
    description="VFS frame-level similarity pre-training on videos",
)
