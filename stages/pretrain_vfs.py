"""Stage ``pretrain_vfs``: VFS frame-level similarity learning on video shards (Xu & Wang 2021)."""

from __future__ import annotations

from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.readers import ShardedVideos
from correlearn.data.usable_videos import draw_videos, usable_videos
from correlearn.methods.vfs import VFS, VFSConfig, build_vfs_batch
from correlearn.stage import StageContext, StageSpec
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.stage_run import train_configured


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


def run(ctx: StageContext) -> dict:
    """Train VFS; writes ``backbone.pt``, ``train/last.pt`` and the sampled-frames picture."""
    cfg: PretrainVFSConfig = ctx.config
    videos = ShardedVideos(ctx.input_path("videos"))
    ids = usable_videos(ctx, videos, cfg.method.sampler)
    batch_size = cfg.train.batch_size

    def build_batch(step, rng, gen):
        return build_vfs_batch(videos, draw_videos(rng, ids, batch_size), rng, cfg.method)

    return train_configured(ctx, lambda: VFS(cfg.method), build_batch, len(ids), "vfs")


STAGE = StageSpec(
    name="pretrain_vfs",
    version=2,  # 2: initial weights seeded from train.seed
    config_model=PretrainVFSConfig,
    run=run,
    inputs={"videos": "video_shards", "frames": "frame_index"},
    resumable=True,
    description="VFS frame-level similarity pre-training on videos",
)
