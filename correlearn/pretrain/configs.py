"""The pre-training stage configs: method, loop and optimiser, with each paper's defaults.

One model per method; a YAML section (``pretrain_vfs:``) only overrides them. ``train.batch_size``
is per process; each docstring says what one sample is.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from correlearn.config import IN_KEY_UNLESS_DEFAULT, StrictModel
from correlearn.methods.byol import BYOLConfig, byol_sgd
from correlearn.methods.cim import CIMConfig
from correlearn.methods.cropmae import CropMAEConfig
from correlearn.methods.orl import ORLConfig
from correlearn.methods.siammae import SiamMAEConfig
from correlearn.methods.vfs import VFSConfig
from correlearn.pretrain.heldout import HeldoutConfig
from correlearn.train.config import OptimConfig, TrainConfig


def _val() -> HeldoutConfig:
    # Off by default, so the keys of stages without a held-out set stay what they were.
    return Field(default_factory=HeldoutConfig, json_schema_extra=IN_KEY_UNLESS_DEFAULT)


class PretrainBYOLConfig(StrictModel):
    """BYOL method, loop and optimiser; defaults are ORL stage 1 (800 epochs, batch 256)."""

    method: BYOLConfig = Field(default_factory=BYOLConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=800, batch_size=256))
    optim: OptimConfig = Field(default_factory=byol_sgd)
    val: HeldoutConfig = _val()


class PretrainORLConfig(StrictModel):
    """ORL method, loop and optimiser of ORL stage 3 (Sec. 3.2): 800 epochs.

    Batch 256 as ``pretrain_byol`` (the paper uses 512 on 8 GPUs; the lr scales linearly).
    """

    method: ORLConfig = Field(default_factory=ORLConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=800, batch_size=256))
    optim: OptimConfig = Field(default_factory=byol_sgd)
    val: HeldoutConfig = _val()


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
    val: HeldoutConfig = _val()


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
    val: HeldoutConfig = _val()


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
    val: HeldoutConfig = _val()

    @model_validator(mode="after")
    def _check(self) -> PretrainSiamMAEConfig:
        r = self.method.repeated_sampling
        if self.train.batch_size % r:
            raise ValueError(
                f"train.batch_size ({self.train.batch_size}) must be a multiple of "
                f"method.repeated_sampling ({r})"
            )
        return self


def _cropmae_optim() -> OptimConfig:
    # Ref scripts/train_cropmae_in.sh: AdamW --betas=0.9,0.95, --weight_decay=0.05 (timm's
    # param_groups_weight_decay: none on biases and norms), --blr=1e-4 x batch/256, warm-up
    # --warmup_epochs_prop=0.05 of 400 epochs = 20, half-cosine to --min_lr_prop=0.0, no clipping.
    return OptimConfig(
        name="adamw", base_lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, warmup_epochs=20
    )


def _cropmae_train() -> TrainConfig:
    # Ref scripts/train_cropmae_in.sh: --epochs=400, --batch_size=128 per GPU x 4 nodes x 4 GPUs
    # (--accum_iter=1) = 2048 effective; ``batch_size`` is per process here.
    return TrainConfig(epochs=400, batch_size=2048)


class PretrainCropMAEConfig(StrictModel):
    """CropMAE method, loop and optimiser; defaults are the reference's ImageNet run.

    ``train.batch_size`` counts images, one crop pair each; an epoch is one pass over the images.
    """

    method: CropMAEConfig = Field(default_factory=CropMAEConfig)
    train: TrainConfig = Field(default_factory=_cropmae_train)
    optim: OptimConfig = Field(default_factory=_cropmae_optim)
    val: HeldoutConfig = _val()
