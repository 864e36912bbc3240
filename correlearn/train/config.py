"""Configs of the training loop: the optimiser and its schedule, the loop's budget and hardware.

The defaults of :class:`OptimConfig` are the MAE-family recipe that CIM and SiamMAE share; BYOL/ORL
and VFS override them from their own method configs (see the table in :class:`OptimConfig`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from correlearn.config import (
    BUDGET_STEPS,
    BUDGET_TIME,
    DEVICE_PATTERN,
    NOT_IN_KEY,
    SEED_MAX,
    StrictModel,
)


class OptimConfig(StrictModel):
    """Optimiser, learning-rate scaling and warm-up/cosine schedule.

    Paper defaults per method (each method's config overrides these fields):

    ======== ====== ========= ====== ============ ======= ======== =====================
    method   name   base_lr   wd     betas/mom.   warm-up epochs   source
    ======== ====== ========= ====== ============ ======= ======== =====================
    CIM      adamw  1.5e-4    0.05   (0.9, 0.95)  40 ep   300      ref code (MAE recipe)
    SiamMAE  adamw  1.5e-4    0.05   (0.9, 0.95)  40 ep   400      paper, batch 2048
    BYOL/ORL sgd    0.2       1e-4   0.9          4 ep    800      ORL paper
    VFS      sgd    0.05      1e-4   0.9          0       200/500  paper 4.1, batch 256
    ======== ====== ========= ====== ============ ======= ======== =====================

    All four scale the learning rate linearly with the batch (``lr = base_lr * batch / 256``); VFS's
    0.05 is quoted at batch 256, so ``linear_256`` reproduces it there. MAE/timm exclude biases and
    norm parameters from weight decay (``exclude_bias_norm=True``); an mmcv-style SGD config without
    paramwise options decays every parameter, which is ``exclude_bias_norm=False``.

    Attributes:
        name: ``"sgd"`` (with ``momentum``) or ``"adamw"`` (with ``betas``).
        base_lr: learning rate before batch scaling.
        lr_scaling: ``"linear_256"``: peak lr = base_lr * effective_batch / 256 (effective batch =
            per-process batch x world size, as MAE/BYOL/ORL); ``"none"``: peak lr = base_lr.
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
        momentum: SGD momentum.
        nesterov: SGD Nesterov momentum.
        betas: AdamW betas.
        warmup_epochs: linear warm-up length in epochs (converted with the run's steps per epoch).
        warmup_steps: warm-up length in steps; when set it takes precedence over ``warmup_epochs``.
        min_lr: floor of the half-cosine decay (absolute, not scaled by the batch).
        exclude_bias_norm: no weight decay on biases and 1-d parameters (norm scales/shifts).
        clip_grad: max global gradient norm, or None for no clipping.
    """

    name: Literal["sgd", "adamw"] = "adamw"
    base_lr: float = Field(1.5e-4, ge=0.0)
    lr_scaling: Literal["linear_256", "none"] = "linear_256"
    weight_decay: float = Field(0.05, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_epochs: float = Field(40.0, ge=0.0)
    warmup_steps: int | None = Field(None, ge=0)
    min_lr: float = Field(0.0, ge=0.0)
    exclude_bias_norm: bool = True
    clip_grad: float | None = Field(None, gt=0.0)

    def resolve_warmup_steps(self, steps_per_epoch: int, total_steps: int) -> int:
        """Warm-up length in steps for a run, never longer than the run.

        Args:
            steps_per_epoch: optimiser steps per epoch of this run.
            total_steps: optimiser steps of the whole run.

        Returns:
            ``warmup_steps`` when set, else ``round(warmup_epochs * steps_per_epoch)``, clipped to
            ``total_steps``.
        """
        if self.warmup_steps is not None:
            steps = self.warmup_steps
        else:
            steps = round(self.warmup_epochs * steps_per_epoch)
        return max(0, min(int(steps), int(total_steps)))


class TrainConfig(StrictModel):
    """Budget, hardware and bookkeeping of one training run.

    Paper overrides: CIM ``epochs=300``; SiamMAE ``epochs=400`` (ablations; 2000 for the best
    numbers) with an effective batch of 2048; ORL stages 1 and 3 ``epochs=800``; VFS ``epochs=200``
    (ResNet-18) / ``500`` (ResNet-50) at an effective batch of 256.

    Attributes:
        batch_size: batch per process; the effective batch is ``batch_size * devices * nodes``.
        epochs: length of the run in epochs (with ``steps_per_epoch`` this gives the total steps).
        steps_per_epoch: None -> derived from the dataset size // effective batch.
        max_steps: budget in steps: stop after this many steps even if the schedule is longer (the
            schedule still spans the full run, so a later call with a larger budget continues
            it). Not part of the artifact key: a budget-stopped run is stored as its own
            snapshot artifact (:mod:`correlearn.budgets`).
        max_minutes: budget in wall-clock minutes for one call of ``fit``; the loop stops at the
            next step boundary, saves a checkpoint and reports that it stopped on budget. Not
            part of the key either.
        seed: seed of the loop's randomness (dropout, masking) and of the data order.
        device: ``"auto"`` -> CUDA if available else CPU; or ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        amp: ``"auto"`` -> bf16 autocast on CUDA, off on CPU; ``"off"``; ``"bf16"``; ``"fp16"``
            (autocast with a GradScaler).
        ckpt_every: save the resumable state every this many steps (and always at the end).
        keep_previous: keep the checkpoint before ``last.pt`` as ``prev.pt``.
        log_every: call ``log_fn`` (window means of losses, lr, tau, img/s) every this many steps.
        num_workers: data-loading worker processes per training process (read by the data_fn).
        devices: processes (GPUs) per node; > 1 means the stage runner launches under torchrun.
        nodes: number of nodes for torchrun.
        sync_bn: under DDP on CUDA, convert BatchNorm to SyncBatchNorm (BYOL/ORL normalise over
            the global batch).
        find_unused_parameters: passed to DDP; needed when some trainable parameter gets no
            gradient in a step (parameters with ``requires_grad=False``, e.g. EMA targets, are fine
            without it).
    """

    batch_size: int = Field(256, ge=1)
    epochs: int = Field(100, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1)
    # Budgets stop a run early on the full schedule: not in the key (correlearn.budgets).
    max_steps: int | None = Field(None, ge=1, json_schema_extra=BUDGET_STEPS)
    max_minutes: float | None = Field(None, gt=0.0, json_schema_extra=BUDGET_TIME)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    device: str = Field("auto", pattern=DEVICE_PATTERN)
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    # Bookkeeping that cannot change the trained weights: left out of the artifact key.
    ckpt_every: int = Field(1000, ge=1, json_schema_extra=NOT_IN_KEY)
    keep_previous: bool = Field(True, json_schema_extra=NOT_IN_KEY)
    log_every: int = Field(20, ge=1, json_schema_extra=NOT_IN_KEY)
    num_workers: int = Field(4, ge=0, json_schema_extra=NOT_IN_KEY)
    devices: int = Field(1, ge=1)
    nodes: int = Field(1, ge=1)
    sync_bn: bool = True
    find_unused_parameters: bool = False

    @property
    def world_size(self) -> int:
        """Processes of the whole run: ``devices * nodes``."""
        return self.devices * self.nodes

    def resolve_steps_per_epoch(self, num_samples: int, world_size: int | None = None) -> int:
        """Steps per epoch: ``steps_per_epoch`` when set, else ``num_samples // effective batch``.

        Args:
            num_samples: training samples per epoch (images, videos or pairs).
            world_size: processes sharing the data; defaults to ``devices * nodes``.

        Returns:
            At least 1.
        """
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        world = world_size if world_size is not None else self.world_size
        return max(1, num_samples // (self.batch_size * world))

    def resolve_total_steps(self, num_samples: int, world_size: int | None = None) -> int:
        """Optimiser steps of the whole schedule: ``epochs * steps_per_epoch`` (before budgets)."""
        return self.epochs * self.resolve_steps_per_epoch(num_samples, world_size)
