"""Stage ``pretrain_cim``: Correlational Image Modeling pre-training (Li et al. 2023, Sec. 3.2)."""

from __future__ import annotations

from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.cim_pairs import build_cim_batch
from correlearn.data.readers import ShardedImages
from correlearn.methods.cim import CIM, CIMConfig
from correlearn.stage import StageContext, StageSpec
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.stage_run import train_configured


def _cim_optim() -> OptimConfig:
    # Ref code (scripts/dist_pretrain.sh): AdamW betas (0.9, 0.95), blr 1.5e-4 x batch/256,
    # wd 0.05 (none on biases/norms, timm's add_weight_decay), 40 warm-up epochs, cosine,
    # gradient clipping at norm 1.0.
    return OptimConfig(
        name="adamw",
        base_lr=1.5e-4,
        weight_decay=0.05,
        betas=(0.9, 0.95),
        warmup_epochs=40,
        clip_grad=1.0,
    )


def _cim_train() -> TrainConfig:
    # Paper Sec. 4.1: 300 epochs. Ref code batch: 256 per GPU x 2 accumulation x 8 GPUs = 4096
    # effective; here ``batch_size`` is per process, so split it over ``devices`` when scaling out.
    return TrainConfig(epochs=300, batch_size=4096)


class PretrainCIMConfig(StrictModel):
    """CIM method, loop and optimiser; defaults are the paper's / ref code's (ViT-B/16, 300 ep)."""

    method: CIMConfig = Field(default_factory=CIMConfig)
    train: TrainConfig = Field(default_factory=_cim_train)
    optim: OptimConfig = Field(default_factory=_cim_optim)


def run(ctx: StageContext) -> dict:
    """Train CIM on the image shards; writes ``backbone.pt``, ``train/last.pt`` and pictures."""
    cfg: PretrainCIMConfig = ctx.config
    images = ShardedImages(ctx.input_path("shards"))
    batch_size = cfg.train.batch_size

    def build_batch(step, rng, gen):
        idx = rng.integers(0, len(images), size=batch_size)
        return build_cim_batch([images[int(i)]["image"] for i in idx], rng, cfg.method.pair)

    return train_configured(ctx, lambda: CIM(cfg.method), build_batch, len(images), "cim")


STAGE = StageSpec(
    name="pretrain_cim",
    version=2,  # 2: initial weights seeded from train.seed
    config_model=PretrainCIMConfig,
    run=run,
    inputs={"shards": "image_shards"},
    resumable=True,
    description="CIM pre-training (crop-and-correlate)",
)
