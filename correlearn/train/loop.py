"""The one training loop every method uses: schedule, AMP, EMA, checkpoint/resume, DDP, logging.

Determinism: with a fixed seed on the CPU, a run stopped after step s and resumed follows exactly
the losses of an uninterrupted run. Batches come from ``data_fn(start_step)`` (a pure function of
seed and step); randomness inside the model (dropout, masking) draws from the global RNGs, whose
states are saved in every checkpoint; fetching a batch runs with the global RNGs forked, so a data
pipeline that draws from them (e.g. a DataLoader picking its worker seeds) cannot shift the model's
random stream between an uninterrupted and a resumed run.

:func:`fit` builds a :class:`~correlearn.train.session.TrainingSession` (device, AMP, optimiser),
resumes it from the newest checkpoint, then repeats its ``train_step`` and, at the logging and
checkpoint cadences, its ``flush`` and ``checkpoint``, until the schedule, a budget or a stop
signal ends the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn
from tqdm.auto import tqdm

from correlearn.train import distributed as D
from correlearn.train.checkpoint import atomic_torch_save, latest_checkpoint
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.rng import isolated_rng
from correlearn.train.session import DataFn, LogFn, TrainingSession
from correlearn.train.stop_signal import StopSignal

if TYPE_CHECKING:
    from correlearn.methods.base import Method

__all__ = ["DataFn", "EvalFn", "FitResult", "LogFn", "export_backbone", "fit"]


@dataclass
class FitResult:
    """Outcome of :func:`fit`.

    Attributes:
        step: optimiser steps completed so far (over all sessions of the run).
        stopped_on_budget: the run ended before ``total_steps`` (``max_steps``, ``max_minutes`` or a
            SIGTERM); calling ``fit`` again resumes it.
        minutes: wall-clock minutes of this call.
        last_losses: the named losses of the last step (mean over ranks under DDP).
        loss_history: ``(step, loss)`` for every step so far; ``step`` is the 0-based step index.
        checkpoint: ``workdir/last.pt`` (None if no step has ever been saved).
        stop_reason: ``"completed"``, ``"max_steps"``, ``"max_minutes"`` or ``"signal"``.
        lr: the peak (batch-scaled) learning rate.
    """

    step: int
    stopped_on_budget: bool
    minutes: float
    last_losses: dict[str, float] = field(default_factory=dict)
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    stop_reason: str = "completed"
    lr: float = 0.0


def _result(run: TrainingSession, reason: str) -> FitResult:
    return FitResult(
        step=run.step,
        stopped_on_budget=run.step < run.total_steps,
        minutes=(time.monotonic() - run.t0) / 60.0,
        last_losses=dict(run.last_losses),
        loss_history=list(run.history),
        checkpoint=latest_checkpoint(run.workdir),
        stop_reason=reason,
        lr=run.peak_lr,
    )


def _next_batch(batches: Iterator[dict[str, Any]], start: int, step: int, stop_at: int) -> Any:
    # Forked RNGs: a data pipeline drawing from the global RNGs cannot shift the model's stream.
    with isolated_rng():
        try:
            return next(batches)
        except StopIteration:
            raise RuntimeError(
                f"data_fn({start}) ran out of batches at step {step}; it must yield "
                f"one batch per step up to {stop_at}"
            ) from None


# evaluate(method, step): score the method at ``step`` (held-out metrics); must leave the weights,
# the BatchNorm statistics and the global RNG streams as they were.
EvalFn = Callable[[nn.Module, int], Any]


def _train(
    run: TrainingSession,
    data_fn: DataFn,
    log_fn: LogFn | None,
    progress: bool,
    evaluate: tuple[EvalFn, int | None] | None = None,
) -> str:
    """Step ``run`` to its ``stop_at`` or a stop; flush and checkpoint at their cadences.

    ``evaluate = (fn, every)`` calls ``fn(method, step)`` at step 0, every ``every`` steps and at
    the end of the call (not after a stop signal, which must exit promptly).

    Returns:
        The stop reason: ``"completed"``, ``"max_steps"``, ``"max_minutes"`` or ``"signal"``.
    """
    cfg, start = run.cfg, run.step
    batches = run.prepare(data_fn)
    reason = "completed" if run.stop_at == run.total_steps else "max_steps"
    run.method.train()
    if evaluate is not None and start == 0:
        evaluate[0](D.unwrap(run.method), 0)
    bar = tqdm(
        total=run.stop_at,
        initial=start,
        disable=not (progress and D.is_main()),
        unit="step",
        dynamic_ncols=True,
        desc=run.workdir.name,
    )
    try:
        with StopSignal() as stop:
            while run.step < run.stop_at:
                run.train_step(_next_batch(batches, start, run.step, run.stop_at))
                bar.update(1)
                stop_now = run.stop_reason(stop)
                reason = stop_now or reason
                end = stop_now is not None or run.step == run.stop_at
                if end or run.step % cfg.log_every == 0 or run.step % cfg.ckpt_every == 0:
                    run.flush(log_fn, bar)
                if end or run.step % cfg.ckpt_every == 0:
                    run.checkpoint(reason if end else "running")
                if evaluate is not None and stop_now != "signal":
                    every = evaluate[1]
                    if end or (every and run.step % every == 0):
                        evaluate[0](D.unwrap(run.method), run.step)
                if stop_now:
                    break
    finally:
        bar.close()
        del batches  # closes the data pipeline (e.g. DataLoader workers) now
    return reason


def fit(
    method: Method,
    data_fn: DataFn,
    cfg: TrainConfig,
    optim_cfg: OptimConfig,
    workdir: str | Path,
    log_fn: LogFn | None = None,
    run_id: str | None = None,
    total_steps: int | None = None,
    progress: bool = True,
    evaluate: tuple[EvalFn, int | None] | None = None,
) -> FitResult:
    """Train ``method`` up to ``min(total_steps, max_steps)`` or a budget, resuming from workdir.

    Each step: lr from :func:`lr_at`; ``losses = method.training_step(batch)`` under autocast;
    backward on ``losses["loss"]``; optional gradient clipping; optimiser step; then, for every
    ``(online, target)`` of ``method.ema_pairs()``, the EMA step ``xi <- tau xi + (1 - tau) theta``
    with ``tau = method.ema_momentum(step, total_steps)``. Under torch.distributed (see
    :func:`~correlearn.train.distributed.init_distributed`) the method is wrapped in DDP and only
    rank 0 writes checkpoints and calls ``log_fn``; each rank's ``data_fn`` must yield its own
    shard (e.g. seeded with ``rank_seed(seed)``).

    Args:
        method: a :class:`~correlearn.methods.base.Method` (``training_step``, ``ema_pairs``,
            ``ema_momentum``).
        data_fn: ``data_fn(start_step)`` yields the batches of steps ``start_step, start_step+1,
            ...``, dicts of tensors (moved to the device here) with a per-process batch.
        cfg: loop config.
        optim_cfg: optimiser and schedule config.
        workdir: the run's directory: ``last.pt``, ``prev.pt`` and ``last.pt.json`` live here.
        log_fn: ``log_fn(metrics, step)`` every ``log_every`` steps with the window means of the
            losses, ``lr``, ``tau`` (EMA methods), ``img_per_s``, ``epoch`` (``step`` = 0-based
            index of the window's last step).
        run_id: MLflow run id stored in the checkpoints (None keeps the stored one).
        total_steps: length of the schedule; None -> ``cfg.epochs * cfg.steps_per_epoch``.
        progress: show a tqdm bar (rank 0) with loss, lr, img/s and ETA.
        evaluate: ``(fn, every)``: ``fn(method, step)`` at step 0, every ``every`` steps (None:
            never between) and at the end of the call; it must not change the weights, the
            BatchNorm statistics or the RNG streams (e.g. :class:`~correlearn.pretrain.heldout.HeldoutEval`).

    Returns:
        A :class:`FitResult`.
    """
    run = TrainingSession(method, cfg, optim_cfg, Path(workdir), total_steps)
    run.resume(run_id)
    if run.step >= run.stop_at:
        return _result(run, "completed" if run.step >= run.total_steps else "max_steps")
    return _result(run, _train(run, data_fn, log_fn, progress, evaluate))


def export_backbone(method: nn.Module, path: str | Path) -> Path:
    """Write ``method.backbone.export_state_dict()`` (torchvision/timm key names) atomically.

    Only rank 0 writes under torch.distributed.

    Args:
        method: a method (or its DDP wrapper) with a ``backbone`` attribute.
        path: destination ``.pt`` file; load it with ``torch.load`` and ``load_state_dict``.

    Returns:
        ``path``.
    """
    path = Path(path)
    if D.is_main():
        state = D.unwrap(method).backbone.export_state_dict()
        state = {k: v.detach().to("cpu").clone() for k, v in state.items()}
        atomic_torch_save(state, path)
    return path
