"""The evaluation stages that propagate first-frame labels through the videos of a protocol.

``eval_pose`` (JHMDB joints, :mod:`correlearn.eval.pose`) and ``eval_parts`` (VIP part maps,
:mod:`correlearn.eval.parts`) share everything but the per-video work: the dataset
(:mod:`correlearn.eval.eval_datasets`; the key follows the files read), the checkpoint's dense
features and propagation settings (:func:`~correlearn.eval.dense_setup.dense_setup`: the preset,
then the protocol's settings, then the user's ``params``), ``metrics.json`` and the manifest
metadata (preset, settings, backbone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from correlearn.eval.dense_setup import DenseSetup, dense_setup
from correlearn.eval.eval_datasets import EvalDatasetSpec, resolve_source, source_of
from correlearn.eval.eval_stage import Evaluation, eval_stage
from correlearn.eval.protocol_presets import PROTOCOL_STAGE, stage_settings
from correlearn.stage import StageContext, StageSpec


@dataclass(frozen=True)
class PropagationRun:
    """What a protocol's per-video evaluation gets.

    Attributes:
        root: the dataset's absolute root.
        videos: the videos to evaluate, in order.
        dense: the checkpoint's features and the propagation settings.
        settings: the stage's own fields as the preset's reference sets them, the user's
            values first (:func:`~correlearn.eval.protocol_presets.stage_settings`).
    """

    root: Path
    videos: list[str]
    dense: DenseSetup
    settings: dict[str, Any]


# videos(spec, root, cfg) -> the videos of the protocol's split (the spec's own list first).
Videos = Callable[[EvalDatasetSpec, Path, Any], list[str]]
# files(root, videos) -> the files the stage reads for those videos (the key's fingerprint).
Files = Callable[[Path, list[str]], list[Path]]
# evaluate(ctx, run) -> metrics (written to metrics.json; the float ones logged).
Evaluate = Callable[[StageContext, PropagationRun], dict[str, Any]]


def propagation_stage(
    name: str,
    version: int,
    config_model: type[BaseModel],
    layout: str,
    protocol: str,
    videos: Videos,
    files: Files,
    evaluate: Evaluate,
    description: str,
) -> StageSpec:
    """The :func:`~correlearn.eval.eval_stage.eval_stage` of a label-propagation protocol.

    Args:
        name: stage name.
        version: stage version (part of the artifact key).
        config_model: its config; fields ``dataset``, ``preset``, ``params``, ``device`` and the
            protocol's stage fields (:data:`~correlearn.eval.protocol_presets.PROTOCOL_STAGE`)
            are read here.
        layout: the dataset layout the stage reads (``jhmdb``, ``vip``).
        protocol: ``pose`` or ``parts``: its settings per preset
            (:mod:`correlearn.eval.protocol_presets`).
        videos: the protocol's video list.
        files: the files read for the videos.
        evaluate: the per-video work and the scores.
        description: one line for ``correlearn stage list``.
    """

    def resolve(cfg: Any, pipe: Any) -> dict:
        return resolve_source(
            pipe, cfg.dataset, layout, lambda spec, root: files(root, videos(spec, root, cfg))
        )

    def run(ctx: StageContext) -> Evaluation:
        cfg = ctx.config
        spec, root = source_of(ctx)
        ckpt = ctx.input_path("checkpoint")
        dense = dense_setup(ckpt, cfg.preset, protocol, cfg.params, cfg.device)
        vids = videos(spec, root, cfg)
        preset, device = dense.meta["preset"], dense.device
        fields = PROTOCOL_STAGE[protocol][preset]
        settings = stage_settings(protocol, preset, {k: getattr(cfg, k) for k in fields})
        lp = dense.lp
        ctx.info(
            f"{len(vids)} videos, preset {preset}: {settings}, context {lp.context_frames}, "
            f"top-k {lp.topk}, radius {lp.radius}, T {lp.temperature} ({device})"
        )
        metrics = evaluate(ctx, PropagationRun(root, vids, dense, settings))
        return Evaluation(metrics, meta={**dense.meta, "protocol": settings})

    return eval_stage(name, version, config_model, run, resolve, description)
