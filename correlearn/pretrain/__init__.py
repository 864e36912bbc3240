"""The pre-training methods registry: method name -> :class:`~correlearn.pretrain.spec.MethodSpec`.

This table drives the pre-training stages (the stage registry ``stages.STAGES`` builds one stage per
entry with :func:`correlearn.pretrain.stage.pretrain_stage`) and the torchrun worker, which finds
the method of a training job here. A new method takes its module in ``correlearn/methods/`` (the
``Method`` and its config), its stage config and batch builder (:mod:`correlearn.pretrain.configs`,
:mod:`correlearn.pretrain.data`, unless an existing data kind and builder fit), one entry below
(which names its stage) and its YAML section.
"""

from __future__ import annotations

from correlearn.config import ConfigError
from correlearn.methods.byol import BYOL
from correlearn.methods.cim import CIM
from correlearn.methods.cropmae import CropMAE
from correlearn.methods.orl import ORL
from correlearn.methods.siammae import SiamMAE
from correlearn.methods.vfs import VFS
from correlearn.pretrain import configs as C
from correlearn.pretrain import data as D
from correlearn.pretrain.spec import MethodSpec

# Each entry's training stage is ``pretrain_<name>`` (MethodSpec.stage). Stage versions:
# 2 = initial weights seeded from train.seed; 3 = an EMA target keeps its own BatchNorm
# statistics (BYOL, ORL, VFS's MoCo key encoder: its checkpoint and eval-mode pretext metric);
# 4 = the image retrieval pretext metric centres queries and keys (BYOL, ORL: their manifests).
METHODS: dict[str, MethodSpec] = {
    # Image-level BYOL: ORL stage 1 and the image-level baseline (ORL Sec. 3.1, BYOL Sec. 3).
    "byol": MethodSpec(
        "byol", C.PretrainBYOLConfig, BYOL, D.BYOL_IMAGES, D.byol_batch, version=4,
        description="BYOL pre-training (ORL stage 1)", heldout=D.byol_heldout,
    ),
    # ORL stage 3: object-level BYOL on the mined RoI pairs (ORL Sec. 3.1).
    "orl": MethodSpec(
        "orl", C.PretrainORLConfig, ORL, D.OBJECT_PAIRS, D.orl_batch, version=4,
        description="ORL object-level pre-training (stage 3)", heldout=D.orl_heldout,
    ),
    # Correlational Image Modeling (CIM Sec. 3.2).
    "cim": MethodSpec(
        "cim", C.PretrainCIMConfig, CIM, D.IMAGES, D.cim_batch, version=2,
        description="CIM pre-training (crop-and-correlate)", heldout=D.cim_heldout,
    ),
    # Frame-level similarity between distant frames of one video (VFS Sec. 3).
    "vfs": MethodSpec(
        "vfs", C.PretrainVFSConfig, VFS, D.VIDEOS, D.vfs_batch, version=3,
        description="VFS frame-level similarity pre-training on videos", heldout=D.vfs_heldout,
    ),
    # Siamese masked autoencoding of frame pairs (SiamMAE Sec. 3).
    "siammae": MethodSpec(
        "siammae", C.PretrainSiamMAEConfig, SiamMAE, D.VIDEOS, D.siammae_batch, version=2,
        description="SiamMAE masked frame-pair pre-training on videos",
        heldout=D.siammae_heldout,
    ),
    # SiamMAE's model on two crops of one image (CropMAE Fig. 1), on BYOL's image shards.
    "cropmae": MethodSpec(
        "cropmae", C.PretrainCropMAEConfig, CropMAE, D.IMAGES, D.cropmae_batch, version=1,
        description="CropMAE masked crop-pair pre-training on images",
        heldout=D.cropmae_heldout,
    ),
}  # fmt: skip


def method_spec(name: str) -> MethodSpec:
    """The registered method ``name``."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name]
