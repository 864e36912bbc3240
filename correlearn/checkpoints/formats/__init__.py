"""The checkpoint formats, one module per family, and format detection.

Detection tries the most specific layouts first (a DINO file also holds plain ViT names, a CIM
file MAE's), so the order of :data:`FORMATS` is part of the behaviour.
"""

from __future__ import annotations

from typing import Any

from correlearn.checkpoints.files import CheckpointError
from correlearn.checkpoints.formats.base import Extracted, Format
from correlearn.checkpoints.formats.cim import CIM
from correlearn.checkpoints.formats.crw import CRW
from correlearn.checkpoints.formats.dino import DINO
from correlearn.checkpoints.formats.mae import MAE
from correlearn.checkpoints.formats.mmaction import VFS
from correlearn.checkpoints.formats.moco import MOCO
from correlearn.checkpoints.formats.openselfsup import OPENSELFSUP
from correlearn.checkpoints.formats.plain import TIMM, TORCHVISION

FORMATS: dict[str, Format] = {
    f.name: f for f in (DINO, CIM, VFS, CRW, MOCO, OPENSELFSUP, MAE, TORCHVISION, TIMM)
}


def get_format(name: str) -> Format:
    """The format called ``name``; an unknown name is an error listing the known ones."""
    if name not in FORMATS:
        raise CheckpointError(f"unknown format {name!r}; known: auto, {', '.join(FORMATS)}")
    return FORMATS[name]


def detect_format(obj: Any, source: str) -> Format:
    """The first format of :data:`FORMATS` whose ``detect`` accepts ``obj``.

    Raises:
        CheckpointError: none does (the message shows the file's top-level keys).
    """
    fits = fitting_formats(obj)
    if fits:
        return fits[0]
    if isinstance(obj, dict):
        what = f"top-level keys {sorted(map(str, obj))[:6]}"
    else:
        what = f"a {type(obj).__name__}, not a state dict"
    raise CheckpointError(
        f"{source}: no known checkpoint format ({what}); pass --format, one of {', '.join(FORMATS)}"
    )


def fitting_formats(obj: Any) -> list[Format]:
    """Every format whose ``detect`` accepts ``obj``, in :data:`FORMATS` order (the first wins)."""
    return [fmt for fmt in FORMATS.values() if fmt.detect(obj)]


__all__ = ["FORMATS", "Extracted", "Format", "detect_format", "fitting_formats", "get_format"]
