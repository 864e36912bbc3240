"""The frozen-feature probe stages (``eval_knn``, ``eval_linear``).

A probe stage takes a checkpoint (input ``checkpoint``), extracts frozen pooled features of a
labelled dataset's train/test split (:func:`~correlearn.eval.probe_data.probe_features`), runs its
classifier on them and writes ``metrics.json`` (``top1``, and ``top5`` with more than 5 classes).
Only the config model (a :class:`~correlearn.eval.probe_data.ProbeDataConfig` with the
classifier's fields) and the classifier differ between probes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from correlearn.eval.eval_stage import Evaluation, eval_stage
from correlearn.eval.probe_data import ProbeDataConfig, probe_features, resolve_probe_data
from correlearn.eval.probes import ProbeResult
from correlearn.stage import StageContext, StageSpec

# run_probe(features, cfg) -> the test result; features as probe_features returns them.
RunProbe = Callable[[dict[str, torch.Tensor], ProbeDataConfig], ProbeResult]


def _probe(run_probe: RunProbe, ctx: StageContext) -> Evaluation:
    """``metrics.json`` with ``top1`` (and ``top5`` with more than 5 classes)."""
    res = run_probe(probe_features(ctx, ctx.config), ctx.config)
    return Evaluation(res.metrics, meta=res.metrics, logged=res.metrics)


def probe_stage(
    name: str,
    version: int,
    config_model: type[ProbeDataConfig],
    run_probe: RunProbe,
    description: str,
) -> StageSpec:
    """The :func:`~correlearn.eval.eval_stage.eval_stage` of a probe: features, ``run_probe``.

    Args:
        name: stage name.
        version: stage version (part of the artifact key).
        config_model: the probe's config (data fields + the classifier's).
        run_probe: ``run_probe(features, cfg) -> ProbeResult`` with ``metrics`` set.
        description: one line for ``correlearn stage list``.
    """
    evaluate = partial(_probe, run_probe)
    return eval_stage(name, version, config_model, evaluate, resolve_probe_data, description)
