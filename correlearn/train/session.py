"""One training session: a call of :func:`correlearn.train.loop.fit` split into its steps.

:class:`TrainingSession` builds the run (device, AMP, SyncBatchNorm, optimiser, grad scaler),
resumes it from the newest checkpoint of its directory, and then offers the loop its parts: one
optimiser step with the method's EMA update, the budget/signal check, the logging flush and the
checkpoint. The loop itself (:mod:`correlearn.train.loop`) only sequences them.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm.auto import tqdm

from correlearn.train import distributed as D
from correlearn.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.ema import ema_update
from correlearn.train.log_window import LogWindow
from correlearn.train.optim import build_optimizer
from correlearn.train.rng import get_rng_state, isolated_rng, seed_everything
from correlearn.train.schedules import lr_at
from correlearn.train.stop_signal import StopSignal

if TYPE_CHECKING:
    from correlearn.methods.base import Method

DataFn = Callable[[int], Iterator[dict[str, Any]]]
LogFn = Callable[[dict[str, float], int], None]


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


class TrainingSession:
    """One call of ``fit``: the method on its device, its optimiser and the run's progress.

    Attributes:
        step: optimiser steps completed (over all sessions of the run).
        stop_at: the step this call stops at (``total_steps`` or the ``max_steps`` budget).
        window: losses of the steps since the last flush.
        forward_only: the learning rate is 0 at every step, so steps are forward passes only.
    """

    def __init__(
        self,
        method: Method,
        cfg: TrainConfig,
        optim_cfg: OptimConfig,
        workdir: Path,
        total_steps: int | None,
    ) -> None:
        self.t0 = time.monotonic()
        self.cfg, self.optim_cfg, self.workdir = cfg, optim_cfg, workdir
        self.rank, self.world = D.get_rank(), D.get_world_size()
        if total_steps is None:
            if cfg.steps_per_epoch is None:
                raise ValueError("fit needs total_steps, or cfg.steps_per_epoch to derive it")
            total_steps = cfg.epochs * cfg.steps_per_epoch
        self.total_steps = total_steps
        self.stop_at = total_steps if cfg.max_steps is None else min(total_steps, cfg.max_steps)
        self.steps_per_epoch = cfg.steps_per_epoch or max(1, total_steps // cfg.epochs)
        self.warmup = optim_cfg.resolve_warmup_steps(self.steps_per_epoch, total_steps)
        self.device = D.resolve_device(cfg.device)
        self.amp_dtype, use_scaler = _amp_mode(cfg.amp, self.device)
        method.to(self.device)
        if self.world > 1 and cfg.sync_bn and self.device.type == "cuda":
            method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
        self.method = method
        self.optimizer, self.peak_lr = build_optimizer(
            method, optim_cfg, cfg.batch_size, self.world
        )
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        # At lr 0 throughout (the BN-calibrated baseline) no step can move a weight: forward
        # passes in train mode end with the same weights and BatchNorm statistics, at half the
        # cost of full steps (bench/pretext_eval.py).
        self.forward_only = self.peak_lr == 0.0 and optim_cfg.min_lr == 0.0
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.step, self.minutes_before, self.run_id = 0, 0.0, None
        self.history: list[tuple[int, float]] = []
        self.last_losses: dict[str, float] = {}
        self.lr, self.tau = self.peak_lr, None

    def resume(self, run_id: str | None) -> None:
        """Load the newest checkpoint of ``workdir`` if there is one, else seed this rank.

        Args:
            run_id: MLflow run id to store in the checkpoints (None keeps the stored one).
        """
        self.run_id = run_id
        path = latest_checkpoint(self.workdir)
        if path is None:
            seed_everything(D.rank_seed(self.cfg.seed, self.rank))
            return
        saved = restore_training_state(
            load_checkpoint(path),
            self.method,
            self.optimizer,
            self.scaler,
            self.rank,
            self.world,
            self.cfg.seed,
        )
        self.step, self.history = saved["step"], saved["history"]
        self.last_losses, self.minutes_before = saved["last_losses"], saved["minutes"]
        self.run_id = run_id or saved["run_id"]
        if saved["total_steps"] not in (None, self.total_steps):
            warnings.warn(
                f"{path}: saved with total_steps={saved['total_steps']}, resuming with "
                f"{self.total_steps}: the lr/tau schedules change from step {self.step}",
                stacklevel=3,
            )

    def prepare(self, data_fn: DataFn) -> Iterator[dict[str, Any]]:
        """Wrap the method for DDP (several processes), set up autocast and open the batches.

        Returns:
            ``data_fn(step)``'s batches, started with the global RNGs forked.
        """
        model = None
        if self.world > 1:
            model = D.wrap_ddp(self.method, self.device, self.cfg.find_unused_parameters)
        self.step_fn = model if model is not None else self.method.training_step
        self.autocast: Callable[[], Any] = contextlib.nullcontext
        if self.amp_dtype is not None:
            self.autocast = lambda: torch.autocast(self.device.type, dtype=self.amp_dtype)
        with isolated_rng():
            batches = iter(data_fn(self.step))
        self.window = LogWindow()  # its clock starts with the first step
        return batches

    def train_step(self, batch: dict[str, Any]) -> None:
        """One step on ``batch``: lr, forward, backward, clipping, optimiser step, EMA.

        At lr 0 throughout (``forward_only``) the forward pass runs without gradients and nothing
        is optimised: only BatchNorm statistics and EMA targets move.
        """
        batch = D.to_device(batch, self.device)
        self.lr = lr_at(
            self.step, self.total_steps, self.warmup, self.peak_lr, self.optim_cfg.min_lr
        )
        for g in self.optimizer.param_groups:
            g["lr"] = self.lr * g.get("lr_scale", 1.0)
        with torch.set_grad_enabled(not self.forward_only), self.autocast():
            losses = self.step_fn(batch)
        record = {k: s for k, v in losses.items() if (s := _as_scalar(v, self.device)) is not None}
        if not self.forward_only:
            self._optimise(losses["loss"], record)
        pairs = self.method.ema_pairs()
        if pairs:
            self.tau = self.method.ema_momentum(self.step, self.total_steps)
            for online, target in pairs:
                ema_update(target, online, self.tau)
        self.window.add(self.step, record)
        self.step += 1

    def _optimise(self, loss: torch.Tensor, record: dict[str, torch.Tensor]) -> None:
        """Backward, optional clipping (``grad_norm`` into ``record``) and the optimiser step."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.optim_cfg.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            gnorm = torch.nn.utils.clip_grad_norm_(self.params, self.optim_cfg.clip_grad)
            record["grad_norm"] = gnorm.detach().float()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def stop_reason(self, stop: StopSignal) -> str | None:
        """Why this call stops now (``"signal"``, ``"max_minutes"``), agreed by every rank."""
        local = None
        if stop.hit:
            local = "signal"
        elif self.cfg.max_minutes is not None:
            if time.monotonic() - self.t0 >= self.cfg.max_minutes * 60:
                local = "max_minutes"
        stop_now = (
            D.any_rank(local is not None, self.device) if self.world > 1 else local is not None
        )
        # Another rank hit the budget or a signal: this one stops with it.
        return (local or "max_minutes") if stop_now else None

    def flush(self, log_fn: LogFn | None, bar: tqdm) -> None:
        """Reduce the window's losses (one device sync), extend the history, log, update the bar.

        Raises:
            FloatingPointError: a step's loss is NaN or infinite.
        """
        if not self.window:
            return
        metrics, img_per_s = self.window.flush(
            self.history, self.last_losses, self.cfg.batch_size * self.world, str(self.workdir)
        )
        last = self.history[-1][0]
        metrics.update(lr=self.lr, img_per_s=img_per_s)
        metrics["epoch"] = (last + 1) / self.steps_per_epoch
        if self.tau is not None:
            metrics["tau"] = self.tau
        if log_fn is not None and D.is_main():
            log_fn(metrics, last)
        bar.set_postfix(
            loss=f"{metrics['loss']:.4f}",
            lr=f"{self.lr:.2e}",
            img_s=f"{metrics['img_per_s']:.0f}",
            refresh=False,
        )

    def checkpoint(self, reason: str) -> None:
        """Save the resumable state (rank 0; every rank hands in its RNG states)."""
        rngs = D.gather_objects(get_rng_state())  # collective: every rank takes part
        if not D.is_main():
            return
        state = training_state(
            step=self.step,
            total_steps=self.total_steps,
            method=self.method,
            optimizer=self.optimizer,
            scaler=self.scaler,
            rngs=rngs,
            run_id=self.run_id,
            config={
                "train": self.cfg.model_dump(mode="json"),
                "optim": self.optim_cfg.model_dump(mode="json"),
            },
            history=self.history,
            last_losses=self.last_losses,
            stop_reason=reason,
            minutes=self.minutes_before + (time.monotonic() - self.t0) / 60.0,
        )
        save_checkpoint(state, self.workdir, keep_previous=self.cfg.keep_previous)
