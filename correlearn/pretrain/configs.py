"""The pre-training stage configs: method, loop, optimiser and held-out set of each method.

One model per method, assembled from the paper defaults its method module holds (its config and
its ``<method>_train`` and ``<method>_optim``); a YAML section (``pretrain_vfs:``) only overrides
them. ``train.batch_size``
is per process; each docstring says what one sample is.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from correlearn.config import IN_KEY_UNLESS_DEFAULT, StrictModel
from correlearn.methods.byol import BYOLConfig, byol_optim, byol_train
from correlearn.methods.cim import CIMConfig, cim_optim, cim_train
from correlearn.methods.cropmae import CropMAEConfig, cropmae_optim, cropmae_train
from correlearn.methods.orl import ORLConfig
from correlearn.methods.siammae import SiamMAEConfig, siammae_optim, siammae_train
from correlearn.methods.vfs import VFSConfig, vfs_optim, vfs_train
from correlearn.pretrain.heldout import HeldoutConfig
from correlearn.train.config import OptimConfig, TrainConfig


def _val() -> HeldoutConfig:
    # Off by default, so the keys of stages without a held-out set stay what they were.
    return Field(default_factory=HeldoutConfig, json_schema_extra=IN_KEY_UNLESS_DEFAULT)


class PretrainBYOLConfig(StrictModel):
    """BYOL method, loop and optimiser; defaults are ORL stage 1 (800 epochs, batch 256)."""

    method: BYOLConfig = Field(default_factory=BYOLConfig)
    train: TrainConfig = Field(default_factory=byol_train)
    optim: OptimConfig = Field(default_factory=byol_optim)
    val: HeldoutConfig = _val()


class PretrainORLConfig(StrictModel):
    """ORL method, loop and optimiser of ORL stage 3 (Sec. 3.2): 800 epochs.

    Batch 256 as ``pretrain_byol`` (the paper uses 512 on 8 GPUs; the lr scales linearly).
    """

    method: ORLConfig = Field(default_factory=ORLConfig)
    train: TrainConfig = Field(default_factory=byol_train)
    optim: OptimConfig = Field(default_factory=byol_optim)
    val: HeldoutConfig = _val()


class PretrainCIMConfig(StrictModel):
    """CIM method, loop and optimiser; defaults are the paper's / ref code's (ViT-B/16, 300 ep)."""

    method: CIMConfig = Field(default_factory=CIMConfig)
    train: TrainConfig = Field(default_factory=cim_train)
    optim: OptimConfig = Field(default_factory=cim_optim)
    val: HeldoutConfig = _val()


class PretrainVFSConfig(StrictModel):
    """VFS method, loop and optimiser; defaults are the paper's ResNet-18 run (Sec. 4.1).

    ``train.batch_size`` counts videos (n frames each); an epoch is one pass over usable videos.
    """

    method: VFSConfig = Field(default_factory=VFSConfig)
    train: TrainConfig = Field(default_factory=vfs_train)
    optim: OptimConfig = Field(default_factory=vfs_optim)
    val: HeldoutConfig = _val()


class PretrainSiamMAEConfig(StrictModel):
    """SiamMAE method, loop and optimiser; defaults are the paper's ablation run (Table 4a).

    ``train.batch_size`` counts frame pairs (2048 in the paper); each step draws
    ``batch_size / repeated_sampling`` videos. An epoch is as many pairs as usable videos, so
    ``train.epochs`` counts the paper's "effective epochs" (times a video is viewed, Sec. 4.1).
    """

    method: SiamMAEConfig = Field(default_factory=SiamMAEConfig)
    train: TrainConfig = Field(default_factory=siammae_train)
    optim: OptimConfig = Field(default_factory=siammae_optim)
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


class PretrainCropMAEConfig(StrictModel):
    """CropMAE method, loop and optimiser; defaults are the reference's ImageNet run.

    ``train.batch_size`` counts images, one crop pair each; an epoch is one pass over the images.
    """

    method: CropMAEConfig = Field(default_factory=CropMAEConfig)
    train: TrainConfig = Field(default_factory=cropmae_train)
    optim: OptimConfig = Field(default_factory=cropmae_optim)
    val: HeldoutConfig = _val()
