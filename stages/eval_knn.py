"""Stage ``eval_knn``: weighted cosine k-NN on frozen pooled features (k = 20, T = 0.07)."""

from __future__ import annotations

import json

from pydantic import Field

from correlearn.eval.probes import knn_classify
from correlearn.stage import StageContext, StageSpec
from stages.probe_common import ProbeDataConfig, probe_features, resolve_probe_data


class EvalKNNConfig(ProbeDataConfig):
    """k-NN probe (InstDisc Sec. 3.4 / DINO): ``k`` neighbours, votes weighted exp(cos / T)."""

    k: int = Field(20, ge=1)
    temperature: float = Field(0.07, gt=0)


def run(ctx: StageContext) -> dict:
    """Write ``metrics.json`` with ``top1`` (and ``top5`` with more than 5 classes)."""
    cfg: EvalKNNConfig = ctx.config
    f = probe_features(ctx, cfg)
    res = knn_classify(
        f["train"], f["train_labels"], f["test"], f["test_labels"], cfg.k, cfg.temperature
    )
    (ctx.out_dir / "metrics.json").write_text(json.dumps(res.metrics, indent=2))
    ctx.log_metrics(res.metrics)
    return res.metrics


STAGE = StageSpec(
    name="eval_knn",
    version=1,
    config_model=EvalKNNConfig,
    run=run,
    inputs={"checkpoint": "pretrain_image"},
    resolve=resolve_probe_data,
    description="k-NN probe on frozen features",
)
