"""What a pre-training method declares: its config, its data kind, its batch builder, its stage.

A :class:`MethodSpec` is everything the one pre-training stage factory
(:func:`correlearn.pretrain.stage.pretrain_stage`) and the torchrun worker
(:mod:`correlearn.pretrain.worker`) need to train a method: the stage config model (method, loop and
optimiser with the paper's defaults), how to build the method from its config section, which inputs
it trains on and how they are opened (:class:`DataKind`), and a pure function that builds one
step's batch from the opened data and the step's RNGs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn


@dataclass
class TrainingData:
    """The opened inputs of a training call; readers are lazy (nothing is decoded here).

    Attributes:
        num_samples: samples per epoch (images, usable videos, pairs), for the schedule's length.
        sources: the readers and indices a batch builder draws from, by name (``images``,
            ``videos``, ``video_ids``, ``boxes``, ``pairs``).
        skipped: ``(item, reason)`` of inputs left out (a video too short for the sampler).
        counts: numbers for the manifest (``videos_used``, ``images_without_pairs``).
        notes: lines for the user (why something was left out).
        in_process: batches are made on the training device, so they are built in the training
            process itself rather than in DataLoader workers (``train.num_workers`` is then unused).
    """

    num_samples: int
    sources: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    in_process: bool = False

    def __getitem__(self, name: str) -> Any:
        return self.sources[name]


@dataclass(frozen=True)
class DataKind:
    """Which input artifacts a method trains on and how they are opened.

    Attributes:
        name: ``images``, ``videos`` or ``object_pairs``.
        inputs: input name -> the stage that produces it by default (the stage's ``inputs``).
        open: ``open(paths, config) -> TrainingData``; ``paths`` maps input names to artifact
            folders, ``config`` is the validated stage config.
    """

    name: str
    inputs: dict[str, str]
    open: Callable[[dict[str, Path], Any], TrainingData]


# (data, stage config, step, rng, gen) -> batch: a pure function of the step's RNGs.
BatchFn = Callable[[TrainingData, Any, int, np.random.Generator, torch.Generator], dict[str, Any]]


# (held-out data, stage config, rng) -> the fixed held-out batches.
HeldoutFn = Callable[[TrainingData, Any, np.random.Generator], list[dict[str, Any]]]


@dataclass(frozen=True)
class MethodSpec:
    """A pre-training method as the stage factory and the torchrun worker see it.

    Attributes:
        name: registry name, written to ``backbone.json`` (``byol``).
        config: the stage config model: ``method``, ``train`` and ``optim`` fields.
        build: ``build(config.method) -> nn.Module`` (the method, see docs/contracts.md).
        data: what it trains on.
        batch: one step's batch, see :data:`BatchFn`.
        version: its training stage's version; bump it when a change alters what the stage computes (it
            is part of every artifact key).
        description: the stage's one line for ``correlearn stage list``.
        heldout: ``heldout(data, config, rng) -> [batch]``, the fixed held-out batches of the
            method's pretext metric (:mod:`correlearn.pretrain.heldout`), drawn by the training
            batch builder from held-out data opened like ``data``.
    """

    name: str
    config: type[BaseModel]
    build: Callable[[Any], nn.Module]
    data: DataKind
    batch: BatchFn
    version: int
    description: str
    heldout: HeldoutFn | None = None

    @property
    def stage(self) -> str:
        """Its training stage, ``pretrain_<name>``, which ``stages.STAGES`` builds from this spec."""
        return f"pretrain_{self.name}"
