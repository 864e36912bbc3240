"""The pre-training methods registry: method name -> :class:`~correlearn.pretrain.spec.MethodSpec`.

This table drives the pre-training stages (``stages/pretrain_*.py``, one factory call each) and the
torchrun worker, which finds the method of a training job here. A new method takes its module in
``correlearn/methods/``, a config model in :mod:`correlearn.pretrain.configs`, one line below and a
one-line stage module (plus its YAML section).
"""

from __future__ import annotations

from correlearn.config import ConfigError
from correlearn.methods.byol import BYOL
from correlearn.methods.cim import CIM
from correlearn.methods.orl import ORL
from correlearn.methods.siammae import SiamMAE
from correlearn.methods.vfs import VFS
from correlearn.pretrain import configs as C
from correlearn.pretrain import data as D
from correlearn.pretrain.spec import MethodSpec

METHODS: dict[str, MethodSpec] = {
    "byol": MethodSpec("byol", C.PretrainImageConfig, BYOL, D.BYOL_IMAGES, D.byol_batch),
    "orl": MethodSpec("orl", C.PretrainObjectConfig, ORL, D.OBJECT_PAIRS, D.orl_batch),
    "cim": MethodSpec("cim", C.PretrainCIMConfig, CIM, D.IMAGES, D.cim_batch),
    "vfs": MethodSpec("vfs", C.PretrainVFSConfig, VFS, D.VIDEOS, D.vfs_batch),
    "siammae": MethodSpec("siammae", C.PretrainSiamMAEConfig, SiamMAE, D.VIDEOS, D.siammae_batch),
}


def method_spec(name: str) -> MethodSpec:
    """The registered method ``name``."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name]
