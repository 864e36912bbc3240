"""Stage ``pretrain_siammae``: Siamese masked autoencoding of frame pairs (Gupta et al. 2023)."""

from __future__ import annotations

from pydantic import Field, model_validator

from correlearn.config import StrictModel
from correlearn.data.readers import ShardedVideos
from correlearn.data.usable_videos import draw_videos, usable_videos
from correlearn.methods.siammae import SiamMAE, SiamMAEConfig, build_siammae_batch
from correlearn.stage import StageContext, StageSpec
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.stage_run import train_configured


def _siammae_optim() -> OptimConfig:
    # SiamMAE Table 4a: AdamW (0.9, 0.95), wd 0.05, lr 1.5e-4 x batch/256 (MAE), cosine,
    # 40 warm-up epochs; MAE excludes biases and norms from weight decay.
    return OptimConfig(
        name="adamw", base_lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05, warmup_epochs=40
    )


class PretrainSiamMAEConfig(StrictModel):
    """SiamMAE method, loop and optimiser; defaults are the paper's ablation run (Table 4a).

    ``train.batch_size`` counts frame pairs (2048 in the paper); each step draws
    ``batch_size / repeated_sampling`` videos. An epoch is as many pairs as usable videos, so
    ``train.epochs`` counts the paper's "effective epochs" (times a video is viewed, Sec. 4.1).
    """

    method: SiamMAEConfig = Field(default_factory=SiamMAEConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=400, batch_size=2048))
    optim: OptimConfig = Field(default_factory=_siammae_optim)

    @model_validator(mode="after")
    def _check(self) -> PretrainSiamMAEConfig:
        r = self.method.repeated_sampling
        if self.train.batch_size % r:
            raise ValueError(
                f"train.batch_size ({self.train.batch_size}) must be a multiple of "
                f"method.repeated_sampling ({r})"
            )
        return self


def run(ctx: StageContext) -> dict:
    """Train SiamMAE; writes ``backbone.pt``, ``train/last.pt`` and the reconstruction sheet."""
    cfg: PretrainSiamMAEConfig = ctx.config
    videos = ShardedVideos(ctx.input_path("videos"))
    ids = usable_videos(ctx, videos, cfg.method.sampler)
    per_step = cfg.train.batch_size // cfg.method.repeated_sampling

    def build_batch(step, rng, gen):
        return build_siammae_batch(videos, draw_videos(rng, ids, per_step), rng, cfg.method)

    return train_configured(ctx, lambda: SiamMAE(cfg.method), build_batch, len(ids), "siammae")


STAGE = StageSpec(
    name="pretrain_siammae",
    version=2,  # 2: initial weights seeded from train.seed
    config_model=PretrainSiamMAEConfig,
    run=run,
    inputs={"videos": "video_shards", "frames": "frame_index"},
    resumable=True,
    description="SiamMAE masked frame-pair pre-training on videos",
)
