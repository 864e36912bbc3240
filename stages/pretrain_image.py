"""Stage ``pretrain_image``: image-level BYOL (ORL stage 1, and the image-level baseline)."""

from __future__ import annotations

from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.readers import ShardedImages
from correlearn.methods.byol import BYOL, BYOLConfig, build_byol_batch
from correlearn.stage import StageContext, StageSpec
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.stage_run import train_configured


def _byol_optim() -> OptimConfig:
    # ORL Sec. 4 "Implementation details": SGD, lr 0.2 x batch/256, wd 1e-4, momentum 0.9,
    # cosine, 4 warm-up epochs.
    # The reference configs (ORL configs/selfsup/orl/coco/stage{1,3}/r50_bs512_ep800.py) give
    # OpenSelfSup an SGD without paramwise_options, so biases and BN parameters are decayed too.
    return OptimConfig(
        name="sgd",
        base_lr=0.2,
        weight_decay=1e-4,
        momentum=0.9,
        warmup_epochs=4,
        exclude_bias_norm=False,
    )


class PretrainImageConfig(StrictModel):
    """BYOL method, loop and optimiser; defaults are ORL stage 1 (800 epochs, batch 256)."""

    method: BYOLConfig = Field(default_factory=BYOLConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=800, batch_size=256))
    optim: OptimConfig = Field(default_factory=_byol_optim)


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
