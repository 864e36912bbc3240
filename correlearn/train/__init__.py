"""The single training loop shared by every method (see docs/contracts.md)."""

from correlearn.train.checkpoint import latest_checkpoint, load_checkpoint, read_run_id
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.loop import FitResult, export_backbone, fit

__all__ = [
    "FitResult",
    "OptimConfig",
    "TrainConfig",
    "export_backbone",
    "fit",
    "latest_checkpoint",
    "load_checkpoint",
    "read_run_id",
]
