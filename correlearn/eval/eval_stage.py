"""The one factory of every evaluation stage.

An evaluation stage takes a checkpoint (input ``checkpoint``), scores it on a dataset its
``resolve`` fingerprints (so the key follows the files read), and writes ``metrics.json``. What
differs between protocols is only the config model and the work, ``evaluate(ctx) ->``
:class:`Evaluation`; :func:`eval_stage` adds the rest: the input, ``metrics.json``, the logged
metrics and the manifest's metadata. The probes (:mod:`correlearn.eval.probe_stage`) and the
label-propagation protocols (:mod:`correlearn.eval.propagation_stage`) are :func:`eval_stage`
with their shared work filled in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydantic import BaseModel

from correlearn.records import METRICS
from correlearn.stage import StageContext, StageSpec


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation's work returns.

    Attributes:
        metrics: the content of ``metrics.json`` (the scores a table reads).
        meta: small metadata for the manifest (preset, settings, backbone).
        logged: the scalars to log to MLflow; None logs every float of ``metrics``.
    """

    metrics: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    logged: dict[str, float] | None = None


Evaluate = Callable[[StageContext], Evaluation]
Resolve = Callable[[Any, Any], dict[str, Any]]


def run_evaluation(evaluate: Evaluate, ctx: StageContext) -> dict[str, Any]:
    """Run the work, write ``metrics.json``, log the scalars; the manifest gets ``meta``."""
    result = evaluate(ctx)
    (ctx.out_dir / METRICS).write_text(json.dumps(result.metrics, indent=2))
    logged = result.logged
    if logged is None:
        logged = {k: v for k, v in result.metrics.items() if isinstance(v, float)}
    ctx.log_metrics(logged)
    return result.meta


def eval_stage(
    name: str,
    version: int,
    config_model: type[BaseModel],
    evaluate: Evaluate,
    resolve: Resolve,
    description: str,
    checkpoint_from: str = "pretrain_byol",
    resumable: bool = False,
) -> StageSpec:
    """The :class:`StageSpec` of an evaluation.

    Args:
        name: stage name (``eval_<protocol>``).
        version: stage version (part of the artifact key).
        config_model: its config (validated, and in the key, before any folder or run exists).
        evaluate: ``evaluate(ctx) -> Evaluation``, the protocol's work.
        resolve: ``resolve(config, pipeline) -> dict``, the dataset's fingerprint for the key.
        description: one line for ``correlearn stage list``.
        checkpoint_from: the stage whose artifact is the default ``checkpoint`` input.
        resumable: keep a stopped run's partial folder (per-video outputs, say).
    """
    return StageSpec(
        name=name,
        version=version,
        config_model=config_model,
        run=partial(run_evaluation, evaluate),
        inputs={"checkpoint": checkpoint_from},
        resolve=resolve,
        resumable=resumable,
        description=description,
    )
