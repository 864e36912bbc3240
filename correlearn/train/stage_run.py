"""Glue between a training stage and :func:`~correlearn.train.loop.fit`.

Every ``pretrain_*`` stage calls :func:`train_in_stage`: it trains (resuming from the stage's partial
folder after a stop, in the same MLflow run), exports the backbone with torchvision/timm key names,
writes ``backbone.json`` (how to rebuild it), a loss curve and the method's pictures. With
``devices * nodes > 1`` it re-launches the same stage under ``torchrun`` (see
:mod:`correlearn.train.stage_worker`) and waits for it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from correlearn.data.step_loader import make_step_loader
from correlearn.models.io import BACKBONE_FILE, write_backbone_spec
from correlearn.stage import StageContext
from correlearn.train import distributed as D
from correlearn.train.checkpoint import latest_checkpoint, load_checkpoint, seed_everything
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.loop import export_backbone, fit


class WorkerDone(Exception):
    """Raised on torchrun workers after training, so they skip the stage's single-process tail."""


def save_pictures(ctx: StageContext, pictures: dict[str, np.ndarray], prefix: str = "") -> None:
    """Write (H, W, 3) uint8 pictures as PNGs into the artifact and log them to MLflow."""
    from PIL import Image

    pic_dir = ctx.out_dir / "pictures"
    pic_dir.mkdir(exist_ok=True)
    for name, img in pictures.items():
        path = pic_dir / f"{prefix}{name}.png"
        Image.fromarray(np.ascontiguousarray(img)).save(path)
        ctx.picture(path)


def train_in_stage(
    ctx: StageContext,
    method: nn.Module,
    build_batch: Callable[[int, np.random.Generator, torch.Generator], dict[str, Any]],
    train: TrainConfig,
    optim: OptimConfig,
    num_samples: int,
    backbone: tuple[str, dict[str, Any]],
    method_name: str,
) -> dict[str, Any]:
    """Train ``method`` inside a stage and write the standard training outputs.

    Args:
        ctx: the stage context (``out_dir`` is the partial artifact folder, kept across stops).
        method: the method module (docs/contracts.md).
        build_batch: ``(step, rng, gen) -> batch``, a pure function of the step's RNGs.
        train: loop config (budgets, devices, checkpoints).
        optim: optimiser config.
        num_samples: samples per epoch (images, videos, pairs) for the schedule's length.
        backbone: (registry name, kwargs) of the backbone, written to ``backbone.json``.
        method_name: registry name of the method.

    Returns:
        Small metadata for the manifest: steps, total_steps, minutes, stopped_on_budget, losses.
    """
    world = train.world_size
    total = train.resolve_total_steps(num_samples, world)
    workdir = ctx.out_dir / "train"
    if world > 1 and "RANK" not in os.environ:
        _launch(ctx, train)
        method.load_state_dict(load_checkpoint(latest_checkpoint(workdir))["model"])
        result_meta = json.loads((workdir / "last.json").read_text())
    else:
        if world > 1:
            D.init_distributed(train.device)
        seed = D.rank_seed(train.seed)

        def data_fn(start: int):
            return make_step_loader(build_batch, seed, start, None, train.num_workers)

        log_fn = _log_once(ctx) if D.is_main() else None
        res = fit(method, data_fn, train, optim, workdir, log_fn, ctx.run_id, total)
        if res.stop_reason == "signal":
            # Stopped from outside: keep the partial folder (checkpoint) and do not commit.
            raise KeyboardInterrupt(f"{ctx.spec.name} stopped at step {res.step}; re-run to resume")
        export_backbone(method, ctx.out_dir / BACKBONE_FILE)
        result_meta = {
            "steps": res.step,
            "total_steps": total,
            "minutes": round(res.minutes, 3),
            "stopped_on_budget": res.stopped_on_budget,
            "last_losses": res.last_losses,
            "loss_history": res.loss_history,
        }
        if world > 1:
            D.barrier()
            if D.is_main():
                (workdir / "last.json").write_text(json.dumps(result_meta))
            raise WorkerDone
    write_backbone_spec(ctx.out_dir, backbone[0], backbone[1], method_name)
    _loss_curve(ctx, result_meta.get("loss_history") or [])
    if hasattr(method, "pictures"):
        rng = np.random.default_rng(train.seed)
        gen = torch.Generator().manual_seed(train.seed)
        batch = build_batch(0, rng, gen)
        method.eval()
        with torch.no_grad():
            save_pictures(
                ctx, method.pictures(D.to_device(batch, next(method.parameters()).device))
            )
    ctx.progress = {
        "step": int(result_meta["steps"]),
        "total_steps": int(result_meta["total_steps"]),
        "stopped_on_budget": bool(result_meta["stopped_on_budget"]),
    }
    ctx.count("steps", result_meta["steps"])
    ctx.log_metrics({"train_minutes": result_meta["minutes"]})
    return {k: v for k, v in result_meta.items() if k != "loss_history"}


def train_configured(
    ctx: StageContext,
    make_method: Callable[[], nn.Module],
    build_batch: Callable[[int, np.random.Generator, torch.Generator], dict[str, Any]],
    num_samples: int,
    method_name: str,
) -> dict[str, Any]:
    """:func:`train_in_stage` for the usual stage config (``method``, ``train``, ``optim`` fields).

    Args:
        ctx: the stage context; ``ctx.config`` has ``method.backbone(_kwargs)``, ``train``, ``optim``.
        make_method: builds the method; called after seeding with ``train.seed``, so the
            initial weights are a function of the config (a fresh run reproduces exactly).
        build_batch: ``(step, rng, gen) -> batch``.
        num_samples: samples per epoch.
        method_name: registry name of the method (written to ``backbone.json``).

    Returns:
        The manifest metadata of :func:`train_in_stage`.
    """
    cfg = ctx.config
    backbone = (cfg.method.backbone, cfg.method.backbone_kwargs)
    seed_everything(cfg.train.seed)
    method = make_method()
    return train_in_stage(
        ctx, method, build_batch, cfg.train, cfg.optim, num_samples, backbone, method_name
    )


def _log_once(ctx: StageContext) -> Callable[[dict[str, float], int], None]:
    """``ctx.log_metrics``, minus the steps a killed session already logged to the same run.

    A run resumed from its last checkpoint repeats the steps between that checkpoint and the kill;
    their values are the same (seeded), so logging them again would only duplicate MLflow points.
    """
    done = -1
    if ctx.resumed and ctx.tracker is not None and ctx.run_id:
        try:
            history = ctx.tracker.client.get_metric_history(ctx.run_id, "loss")
            done = max((m.step for m in history), default=-1)
        except Exception:  # noqa: BLE001 - no history to read: log everything
            done = -1

    def log(metrics: dict[str, float], step: int) -> None:
        if step > done:
            ctx.log_metrics(metrics, step)

    return log


def _loss_curve(ctx: StageContext, history: list) -> None:
    if not history:
        return
    from correlearn.viz.curves import plot_loss_curve

    path = ctx.out_dir / "pictures" / "loss_curve.png"
    path.parent.mkdir(exist_ok=True)
    plot_loss_curve(history, path, title=ctx.spec.name)
    ctx.picture(path)


def _launch(ctx: StageContext, train: TrainConfig) -> None:
    job = ctx.out_dir / "torchrun_job.json"
    job.write_text(json.dumps({**ctx.job, "out_dir": str(ctx.out_dir), "run_id": ctx.run_id}))
    ctx.info(f"launching torchrun: {train.devices} process(es) x {train.nodes} node(s)")
    D.launch_torchrun(
        ["-m", "correlearn.train.stage_worker", str(job)],
        nproc=train.devices,
        nnodes=train.nodes,
        # Multi-node: this process is node NODE_RANK; the others join through stage_worker.
        node_rank=int(os.environ.get("NODE_RANK", 0)),
        master_addr=os.environ.get("MASTER_ADDR", "127.0.0.1"),
        master_port=int(os.environ.get("MASTER_PORT", 29500)),
        env={"PYTHONUNBUFFERED": "1", "CORRELEARN_HOME": os.environ.get("CORRELEARN_HOME", "")},
        python=sys.executable,
    )
