"""The one training loop every method uses: schedule, AMP, EMA, checkpoint/resume, DDP, logging.

Determinism: with a fixed seed on the CPU, a run stopped after step s and resumed follows exactly
the losses of an uninterrupted run. Batches come from ``data_fn(start_step)`` (a pure function of
seed and step); randomness inside the model (dropout, masking) draws from the global RNGs, whose
states are saved in every checkpoint; fetching a batch runs with the global RNGs forked, so a data
pipeline that draws from them (e.g. a DataLoader picking its worker seeds) cannot shift the model's
random stream between an uninterrupted and a resumed run.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from correlearn.train import distributed as D
from correlearn.train.checkpoint import (
    atomic_torch_save,
    get_rng_state,
    isolated_rng,
    latest_checkpoint,
    load_checkpoint,
    restore_training_state,
    save_checkpoint,
    seed_everything,
    training_state,
)
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.optim import build_optimizer
from correlearn.train.schedules import ema_tau, lr_at

DataFn = Callable[[int], Iterator[dict[str, Any]]]
LogFn = Callable[[dict[str, float], int], None]


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


def _amp_mode(amp: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    # Returns (autocast dtype or None, use a GradScaler).
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" else "off"
    if amp == "off":
        return None, False
    return (torch.bfloat16, False) if amp == "bf16" else (torch.float16, True)


def _as_scalar(value: Any, device: torch.device) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value.detach().float().mean()
    if isinstance(value, int | float):
        return torch.tensor(float(value), device=device)
    return None


class _SigtermFlag:
    # SIGTERM (preemption, `prefect cancel`) and Ctrl-C (SIGINT) stop at the next step boundary
    # with a checkpoint; a second Ctrl-C aborts at once (KeyboardInterrupt), as users expect.
    def __init__(self) -> None:
        self.hit = False
        self._old: dict[int, Any] = {}

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT and self.hit:
            raise KeyboardInterrupt("second Ctrl-C: stopped without a checkpoint")
        self.hit = True
        if signum == signal.SIGINT:
            print("\nCtrl-C: stopping at the next step boundary with a checkpoint", flush=True)

    def __enter__(self) -> _SigtermFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def fit(
    method: nn.Module,
    data_fn: DataFn,
    cfg: TrainConfig,
    optim_cfg: OptimConfig,
    workdir: str | Path,
    log_fn: LogFn | None = None,
    run_id: str | None = None,
    total_steps: int | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``method`` up to ``min(total_steps, max_steps)`` or a budget, resuming from workdir.

    Each step: lr from :func:`lr_at`; ``losses = method.training_step(batch)`` under autocast;
    backward on ``losses["loss"]``; optional gradient clipping; optimiser step; then
    ``method.momentum_update(ema_tau(step, total_steps, method.base_tau))`` when the method has an
    EMA target. Under torch.distributed (see :func:`~correlearn.train.distributed.init_distributed`)
    the method is wrapped in DDP and only rank 0 writes checkpoints and calls ``log_fn``; each
    rank's ``data_fn`` must yield its own shard (e.g. seeded with ``rank_seed(seed)``).

    Args:
        method: an ``nn.Module`` with ``training_step(batch) -> dict[str, Tensor]`` (``"loss"``
            is back-propagated), optionally ``momentum_update(tau)`` and ``base_tau``.
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

    Returns:
        A :class:`FitResult`.
    """
    t0 = time.monotonic()
    workdir = Path(workdir)
    rank, world = D.get_rank(), D.get_world_size()
    if total_steps is None:
        if cfg.steps_per_epoch is None:
            raise ValueError("fit needs total_steps, or cfg.steps_per_epoch to derive it")
        total_steps = cfg.epochs * cfg.steps_per_epoch
    stop_at = total_steps if cfg.max_steps is None else min(total_steps, cfg.max_steps)
    steps_per_epoch = cfg.steps_per_epoch or max(1, total_steps // cfg.epochs)
    warmup = optim_cfg.resolve_warmup_steps(steps_per_epoch, total_steps)
    device = D.resolve_device(cfg.device)
    amp_dtype, use_scaler = _amp_mode(cfg.amp, device)

    method.to(device)
    if world > 1 and cfg.sync_bn and device.type == "cuda":
        method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
    optimizer, peak_lr = build_optimizer(method, optim_cfg, cfg.batch_size, world)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    start, history, last_losses, minutes_before = 0, [], {}, 0.0
    ckpt_path = latest_checkpoint(workdir)
    if ckpt_path is not None:
        saved = restore_training_state(
            load_checkpoint(ckpt_path), method, optimizer, scaler, rank, world, cfg.seed
        )
        start, history, last_losses = saved["step"], saved["history"], saved["last_losses"]
        minutes_before, run_id = saved["minutes"], run_id or saved["run_id"]
        if saved["total_steps"] not in (None, total_steps):
            warnings.warn(
                f"{ckpt_path}: saved with total_steps={saved['total_steps']}, resuming with "
                f"{total_steps}: the lr/tau schedules change from step {start}",
                stacklevel=2,
            )
    else:
        seed_everything(D.rank_seed(cfg.seed, rank))

    def result(step: int, reason: str) -> FitResult:
        return FitResult(
            step=step,
            stopped_on_budget=step < total_steps,
            minutes=(time.monotonic() - t0) / 60.0,
            last_losses=dict(last_losses),
            loss_history=list(history),
            checkpoint=latest_checkpoint(workdir),
            stop_reason=reason,
            lr=peak_lr,
        )

    if start >= stop_at:
        return result(start, "completed" if start >= total_steps else "max_steps")

    model = D.wrap_ddp(method, device, cfg.find_unused_parameters) if world > 1 else None
    step_fn = model if model is not None else method.training_step
    autocast = (
        (lambda: torch.autocast(device.type, dtype=amp_dtype))
        if amp_dtype is not None
        else contextlib.nullcontext
    )
    has_ema = hasattr(method, "momentum_update")
    imgs_per_step = cfg.batch_size * world
    with isolated_rng():
        batches = iter(data_fn(start))

    window: list[tuple[int, dict[str, torch.Tensor]]] = []
    win_t0 = time.monotonic()
    lr, tau = peak_lr, None

    def flush() -> None:
        nonlocal win_t0
        if not window:
            return
        flat = [(i, k, v) for i, (_, rec) in enumerate(window) for k, v in rec.items()]
        vals = D.all_reduce_mean(torch.stack([v for _, _, v in flat]))
        rows: list[dict[str, float]] = [{} for _ in window]
        for (i, k, _), x in zip(flat, vals.tolist(), strict=True):  # one device sync per window
            rows[i][k] = x
        for (s, _), row in zip(window, rows, strict=True):
            if not math.isfinite(row["loss"]):
                raise FloatingPointError(f"loss is {row['loss']} at step {s} ({workdir})")
            history.append((s, row["loss"]))
        last_losses.clear()
        last_losses.update(rows[-1])
        now = time.monotonic()
        metrics = {
            k: sum(r[k] for r in rows if k in r) / sum(k in r for r in rows) for k in rows[-1]
        }
        metrics.update(lr=lr, img_per_s=len(window) * imgs_per_step / max(now - win_t0, 1e-9))
        metrics["epoch"] = (window[-1][0] + 1) / steps_per_epoch
        if tau is not None:
            metrics["tau"] = tau
        if log_fn is not None and D.is_main():
            log_fn(metrics, window[-1][0])
        bar.set_postfix(
            loss=f"{metrics['loss']:.4f}",
            lr=f"{lr:.2e}",
            img_s=f"{metrics['img_per_s']:.0f}",
            refresh=False,
        )
        window.clear()
        win_t0 = now

    def checkpoint(step: int, reason: str) -> None:
        rngs = D.gather_objects(get_rng_state())  # collective: every rank takes part
        if not D.is_main():
            return
        state = training_state(
            step=step,
            total_steps=total_steps,
            method=method,
            optimizer=optimizer,
            scaler=scaler,
            rngs=rngs,
            run_id=run_id,
            config={
                "train": cfg.model_dump(mode="json"),
                "optim": optim_cfg.model_dump(mode="json"),
            },
            history=history,
            last_losses=last_losses,
            stop_reason=reason,
            minutes=minutes_before + (time.monotonic() - t0) / 60.0,
        )
        save_checkpoint(state, workdir, keep_previous=cfg.keep_previous)

    reason = "completed" if stop_at == total_steps else "max_steps"
    method.train()
    bar = tqdm(
        total=stop_at,
        initial=start,
        disable=not (progress and D.is_main()),
        unit="step",
        dynamic_ncols=True,
        desc=workdir.name,
    )
    step = start
    try:
        with _SigtermFlag() as sigterm:
            while step < stop_at:
                with isolated_rng():
                    try:
                        batch = next(batches)
                    except StopIteration:
                        raise RuntimeError(
                            f"data_fn({start}) ran out of batches at step {step}; it must yield "
                            f"one batch per step up to {stop_at}"
                        ) from None
                batch = D.to_device(batch, device)
                lr = lr_at(step, total_steps, warmup, peak_lr, optim_cfg.min_lr)
                for g in optimizer.param_groups:
                    g["lr"] = lr * g.get("lr_scale", 1.0)
                with autocast():
                    losses = step_fn(batch)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(losses["loss"]).backward()
                record = {
                    k: s for k, v in losses.items() if (s := _as_scalar(v, device)) is not None
                }
                if optim_cfg.clip_grad is not None:
                    scaler.unscale_(optimizer)
                    gnorm = torch.nn.utils.clip_grad_norm_(params, optim_cfg.clip_grad)
                    record["grad_norm"] = gnorm.detach().float()
                scaler.step(optimizer)
                scaler.update()
                if has_ema:
                    tau = ema_tau(step, total_steps, method.base_tau)
                    method.momentum_update(tau)
                window.append((step, record))
                step += 1
                bar.update(1)

                local = None
                if sigterm.hit:
                    local = "signal"
                elif cfg.max_minutes is not None and time.monotonic() - t0 >= cfg.max_minutes * 60:
                    local = "max_minutes"
                stop_now = D.any_rank(local is not None, device) if world > 1 else local is not None
                if stop_now:
                    reason = local or "max_minutes"
                end = stop_now or step == stop_at
                if end or step % cfg.log_every == 0 or step % cfg.ckpt_every == 0:
                    flush()
                if end or step % cfg.ckpt_every == 0:
                    checkpoint(step, reason if end else "running")
                if stop_now:
                    break
    finally:
        bar.close()
        del batches
    return result(step, reason)


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
