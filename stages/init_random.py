"""Stage ``init_random``: a randomly initialised backbone, the baseline every method must beat."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.models import BackboneName, build_backbone
from correlearn.models.io import BACKBONE_FILE, write_backbone_json
from correlearn.stage import StageContext, StageSpec
from correlearn.train.checkpoint import atomic_torch_save


class InitRandomConfig(StrictModel):
    """Config of ``init_random``.

    Attributes:
        backbone: registry name (flows set it to the trained method's backbone).
        backbone_kwargs: constructor kwargs of that backbone.
        seed: initialisation seed.
    """

    backbone: BackboneName = "resnet18"
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0


def run(ctx: StageContext) -> dict:
    """Write ``backbone.pt`` and ``backbone.json`` of a seeded random initialisation."""
    cfg: InitRandomConfig = ctx.config
    torch.manual_seed(cfg.seed)
    backbone = build_backbone(cfg.backbone, **cfg.backbone_kwargs)
    atomic_torch_save(backbone.export_state_dict(), ctx.out_dir / BACKBONE_FILE)
    write_backbone_json(ctx.out_dir, cfg.backbone, cfg.backbone_kwargs, "random_init")
    return {"backbone": cfg.backbone}


STAGE = StageSpec(
    name="init_random",
    version=1,
    config_model=InitRandomConfig,
    run=run,
    description="random-init backbone (the baseline)",
)
