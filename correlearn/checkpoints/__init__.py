"""Checkpoints from other code bases: safe loading, formats with explicit key maps, export.

``import_file(path, fmt)`` reads a torchvision/timm state dict or an author's release (VFS, CRW,
ORL/BYOL, CIM, MAE/CropMAE/SiamMAE, DINO) into a registered backbone; ``export_state`` writes
canonical weights back in one of those layouts. See :mod:`correlearn.checkpoints.formats`.
"""

from correlearn.checkpoints.convert import Imported, export_state, import_file
from correlearn.checkpoints.files import (
    CheckpointError,
    file_sha256,
    load_checkpoint_file,
    write_checkpoint_file,
)
from correlearn.checkpoints.formats import FORMATS, detect_format, get_format

__all__ = [
    "FORMATS",
    "CheckpointError",
    "write_checkpoint_file",
    "Imported",
    "detect_format",
    "export_state",
    "file_sha256",
    "get_format",
    "import_file",
    "load_checkpoint_file",
]
