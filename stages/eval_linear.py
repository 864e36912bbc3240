"""Stage ``eval_linear``: a linear classifier on frozen pooled features (standardised, SGD)."""

from __future__ import annotations

import json

from pydantic import Field

from correlearn.eval.probes import linear_probe
from correlearn.stage import StageContext, StageSpec
from stages.probe_common import ProbeDataConfig, probe_features, resolve_probe_data


class EvalLinearConfig(ProbeDataConfig):
    """Linear probe: SGD with momentum, cosine decay, on standardised frozen features."""

    epochs: int = Field(100, ge=1)
    lr: float = Field(0.1, gt=0)
    weight_decay: float = Field(0.0, ge=0)


def run(ctx: StageContext) -> dict:
    """Write ``metrics.json`` with ``top1`` (and ``top5`` with more than 5 classes)."""
    cfg: EvalLinearConfig = ctx.config
    f = probe_features(ctx, cfg)
    res, _ = linear_probe(
        f["train"], f["train_labels"], f["test"], f["test_labels"],
        epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay, seed=cfg.seed,
    )  # fmt: skip
    (ctx.out_dir / "metrics.json").write_text(json.dumps(res.metrics, indent=2))
    ctx.log_metrics(res.metrics)
    return res.metrics


STAGE = StageSpec(
    name="eval_linear",
    version=1,
    config_model=EvalLinearConfig,
    run=run,
    inputs={"checkpoint": "pretrain_image"},
    resolve=resolve_probe_data,
    description="linear probe on frozen features",
)
