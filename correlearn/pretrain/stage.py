"""The one pre-training stage factory: a :class:`MethodSpec` becomes a resumable training stage.

A stage made here trains its method (resuming from the partial folder after a stop, in the same
MLflow run), exports the backbone with torchvision/timm key names, and writes ``backbone.json`` (how
to rebuild it), a loss curve and the method's pictures. With ``devices * nodes > 1`` it writes the
typed job and launches :mod:`correlearn.pretrain.worker` under torchrun, then writes the same outputs.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from correlearn.methods.base import Method
from correlearn.models.io import write_backbone_json
from correlearn.pretrain import method_spec
from correlearn.pretrain.heldout_stage import (
    heldout_evaluate,
    heldout_key,
    open_heldout_eval,
    pretext_report,
)
from correlearn.pretrain.job import (
    JOB_FILE,
    RESULT_FILE,
    TrainingJob,
    metric_logger,
    train,
)
from correlearn.pretrain.spec import MethodSpec, TrainingData
from correlearn.records import LOSS_CURVE
from correlearn.stage import StageContext, StageSpec
from correlearn.train import distributed as D
from correlearn.train.checkpoint import latest_checkpoint, load_checkpoint
from correlearn.train.rng import seed_everything


def pretrain_stage(
    method: str | MethodSpec,
    name: str | None = None,
    version: int | None = None,
    description: str | None = None,
) -> StageSpec:
    """The training stage of ``method`` (a registry name, or a spec not in the registry).

    Everything comes from the method's spec: config model, default inputs, training, and the
    stage's name, version and description, which a test may override.
    """
    spec = method_spec(method) if isinstance(method, str) else method
    return StageSpec(
        name=name or spec.stage,
        version=spec.version if version is None else version,
        config_model=spec.config,
        run=partial(run_pretrain, spec),
        inputs=dict(spec.data.inputs),
        resolve=heldout_key if spec.heldout is not None else None,
        resumable=True,
        description=description or spec.description,
    )


def run_pretrain(spec: MethodSpec, ctx: StageContext) -> dict[str, Any]:
    """Train ``spec``'s method as the stage call ``ctx``; returns the manifest metadata."""
    job = TrainingJob(
        method=spec.name,
        stage=ctx.spec.name,
        config=ctx.config.model_dump(mode="json"),
        inputs={k: v.to_dict() for k, v in ctx.inputs.items()},
        out_dir=str(ctx.out_dir),
        run_id=ctx.run_id,
        resumed=ctx.resumed,
        pipeline_config=ctx.pipeline_config,
    )
    data = spec.data.open(job.input_paths(), ctx.config)
    _record_data(ctx, data)
    heldout = open_heldout_eval(spec, ctx, data, job.workdir)
    if ctx.config.train.world_size > 1:
        method, result = _train_under_torchrun(ctx, job, spec)
    else:
        log_fn = metric_logger(ctx.log_metrics, ctx.tracker, ctx.run_id, ctx.resumed)
        evaluate = None
        if heldout is not None:
            evaluate = (heldout_evaluate(ctx, spec, heldout, log_fn), ctx.config.val.every)
        method, result = train(job, spec, data, log_fn, evaluate)
    if heldout is not None:
        result["pretext"] = pretext_report(ctx, spec, heldout, method, int(result["steps"]))
    _write_outputs(ctx, spec, method, data, result)
    return {k: v for k, v in result.items() if k != "loss_history"}


def _record_data(ctx: StageContext, data: TrainingData) -> None:
    for item, reason in data.skipped:
        ctx.skip(item, reason)
    for name, n in data.counts.items():
        ctx.count(name, n)
    for line in data.notes:
        ctx.info(line)


def _train_under_torchrun(
    ctx: StageContext, job: TrainingJob, spec: MethodSpec
) -> tuple[nn.Module, dict[str, Any]]:
    """Launch the workers on the typed job, wait, and load what rank 0 wrote."""
    train_cfg = ctx.config.train
    path = job.write(ctx.out_dir / JOB_FILE)
    ctx.info(f"launching torchrun: {train_cfg.devices} process(es) x {train_cfg.nodes} node(s)")
    D.launch_torchrun(
        ["-m", "correlearn.pretrain.worker", str(path)],
        nproc=train_cfg.devices,
        nnodes=train_cfg.nodes,
        # Multi-node: this process is node NODE_RANK; the others join with the same job file.
        node_rank=int(os.environ.get("NODE_RANK", 0)),
        master_addr=os.environ.get("MASTER_ADDR", "127.0.0.1"),
        master_port=int(os.environ.get("MASTER_PORT", 29500)),
        env={"PYTHONUNBUFFERED": "1", "CORRELEARN_HOME": os.environ.get("CORRELEARN_HOME", "")},
        python=sys.executable,
    )
    seed_everything(train_cfg.seed)
    method = spec.build(ctx.config.method)
    method.load_state_dict(load_checkpoint(latest_checkpoint(job.workdir))["model"])
    return method, json.loads((job.workdir / RESULT_FILE).read_text())


def _write_outputs(
    ctx: StageContext, spec: MethodSpec, method: nn.Module, data: TrainingData, result: dict
) -> None:
    """``backbone.json``, the loss curve, the method's pictures, progress and counts."""
    cfg = ctx.config
    write_backbone_json(ctx.out_dir, cfg.method.backbone, cfg.method.backbone_kwargs, spec.name)
    _loss_curve(ctx, result.get("loss_history") or [])
    _pictures(ctx, spec, method, data)
    ctx.progress = {
        "step": int(result["steps"]),
        "total_steps": int(result["total_steps"]),
        "stopped_on_budget": bool(result["stopped_on_budget"]),
    }
    ctx.count("steps", result["steps"])
    ctx.log_metrics({"train_minutes": result["minutes"]})


def _pictures(ctx: StageContext, spec: MethodSpec, method: nn.Module, data: TrainingData) -> None:
    """The method's pictures of the step-0 batch, as PNGs in the artifact and in MLflow."""
    from PIL import Image

    if type(method).pictures is Method.pictures:
        return  # the method draws none: do not build a batch for nothing
    seed = ctx.config.train.seed
    batch = spec.batch(
        data, ctx.config, 0, np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    )
    method.eval()
    with torch.no_grad():
        pictures = method.pictures(D.to_device(batch, next(method.parameters()).device))
    for name, img in pictures.items():
        path = ctx.out_dir / "pictures" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(img)).save(path)
        ctx.picture(path)


def _loss_curve(ctx: StageContext, history: list) -> None:
    if not history:
        return
    from correlearn.viz.curves import plot_loss_curve

    path = ctx.out_dir / LOSS_CURVE
    path.parent.mkdir(exist_ok=True)
    plot_loss_curve(history, path, title=ctx.spec.name)
    ctx.picture(path)
