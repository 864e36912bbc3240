"""Stage ``pretrain_image``: image-level BYOL (ORL stage 1, and the image-level baseline)."""

from __future__ import annotations

from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.readers import ShardedImages
from correlearn.methods.byol import BYOL, BYOLConfig, build_byol_batch, byol_sgd
from correlearn.stage import StageContext, StageSpec
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.stage_run import train_configured


class PretrainImageConfig(StrictModel):
    """BYOL method, loop and optimiser; defaults are ORL stage 1 (800 epochs, batch 256)."""

    method: BYOLConfig = Field(default_factory=BYOLConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=800, batch_size=256))
    optim: OptimConfig = Field(default_factory=byol_sgd)


def run(ctx: StageContext) -> dict:
    """Train BYOL on the image shards; writes ``backbone.pt``, ``train/last.pt`` and pictures."""
    cfg: PretrainImageConfig = ctx.config
    images = ShardedImages(ctx.input_path("shards"))
    batch_size = cfg.train.batch_size

    def build_batch(step, rng, gen):
        idx = rng.integers(0, len(images), size=batch_size)
        return build_byol_batch([images[int(i)]["image"] for i in idx], rng, cfg.method)

    return train_configured(ctx, lambda: BYOL(cfg.method), build_batch, len(images), "byol")


STAGE = StageSpec(
    name="pretrain_image",
    version=2,  # 2: initial weights seeded from train.seed
    config_model=PretrainImageConfig,
    run=run,
    inputs={"shards": "image_shards"},
    resumable=True,
    description="BYOL pre-training (ORL stage 1)",
)
