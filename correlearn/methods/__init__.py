"""The methods: one module each, and this small explicit registry (name -> (module, config))."""

from __future__ import annotations

from correlearn.methods.byol import BYOL, BYOLConfig
from correlearn.methods.cim import CIM, CIMConfig
from correlearn.methods.orl import ORL, ORLConfig
from correlearn.methods.siammae import SiamMAE, SiamMAEConfig
from correlearn.methods.vfs import VFS, VFSConfig

METHODS = {
    "byol": (BYOL, BYOLConfig),
    "orl": (ORL, ORLConfig),
    "cim": (CIM, CIMConfig),
    "vfs": (VFS, VFSConfig),
    "siammae": (SiamMAE, SiamMAEConfig),
}


def build_method(name: str, cfg=None):
    """Instantiate a registered method with its config (default: the paper's)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    cls, cfg_cls = METHODS[name]
    return cls(cfg or cfg_cls())
