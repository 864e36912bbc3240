"""Stage ``eval_knn``: weighted cosine k-NN on frozen pooled features (k = 20, T = 0.07)."""

from __future__ import annotations

import torch
from pydantic import Field

from correlearn.eval.probe_data import ProbeDataConfig
from correlearn.eval.probe_stage import probe_stage
from correlearn.eval.probes import ProbeResult, knn_classify


class EvalKNNConfig(ProbeDataConfig):
    """k-NN probe (InstDisc Sec. 3.4 / DINO): ``k`` neighbours, votes weighted exp(cos / T)."""

    k: int = Field(20, ge=1)
    temperature: float = Field(0.07, gt=0)


def knn_probe(f: dict[str, torch.Tensor], cfg: EvalKNNConfig) -> ProbeResult:
    """The k-NN classifier of the test split against the train split."""
    return knn_classify(
        f["train"], f["train_labels"], f["test"], f["test_labels"], cfg.k, cfg.temperature
    )


STAGE = probe_stage("eval_knn", 1, EvalKNNConfig, knn_probe, "k-NN probe on frozen features")
