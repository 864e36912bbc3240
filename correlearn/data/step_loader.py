"""Batches that are a pure function of (seed, step), for exact resume.

This implements the ``data_fn(start_step)`` contract of ``docs/contracts.md``: a DataLoader whose
"dataset" item ``step`` is the whole batch of that step, built by a user function from RNGs seeded
with ``(seed, step)``. Resuming at step s therefore replays exactly the batches s, s+1, ... of an
uninterrupted run, whatever the number of workers, because no RNG state is carried between steps.

Example:
    >>> def build(step, rng, gen):
    ...     idx = rng.integers(0, len(images), size=32)
    ...     return {"x": torch.stack([augment(images[i], gen) for i in idx])}
    >>> def data_fn(start_step):
    ...     return make_step_loader(build, seed=0, start_step=start_step, num_workers=4)
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

BuildBatch = Callable[[int, np.random.Generator, torch.Generator], dict[str, Any]]


def step_seed(seed: int, step: int) -> int:
    """A 63-bit seed derived from ``(seed, step)`` (``numpy.random.SeedSequence`` mixing)."""
    words = np.random.SeedSequence([seed, step]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


class StepBatches(Dataset):
    """Map-style dataset whose item ``step`` is the batch of that step.

    ``build_batch(step, rng, gen)`` receives ``rng = np.random.default_rng([seed, step])`` and a
    ``torch.Generator`` seeded from ``(seed, step)``. It should draw all randomness from these; as a
    safety net the global torch, numpy and ``random`` states are also seeded from ``(seed, step)``
    while it runs (and restored afterwards), so library transforms that use global RNGs stay
    deterministic too.

    Args:
        build_batch: ``(step, rng, gen) -> dict`` of tensors.
        seed: the run's data seed (for data-parallel runs fold the rank in, e.g.
            ``seed * 1000 + rank``).
    """

    def __init__(self, build_batch: BuildBatch, seed: int):
        self.build_batch = build_batch
        self.seed = int(seed)

    def __getitem__(self, step: int) -> dict[str, Any]:
        step = int(step)
        s = step_seed(self.seed, step)
        rng = np.random.default_rng([self.seed, step])
        gen = torch.Generator().manual_seed(s)
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            random.seed(s)
            np.random.seed(s % 2**32)
            try:
                return self.build_batch(step, rng, gen)
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


class _StepRange:
    """Sampler over steps ``start, start + 1, ...`` (unbounded when ``num`` is None)."""

    def __init__(self, start: int, num: int | None):
        self.start, self.num = start, num

    def __iter__(self) -> Iterator[int]:
        if self.num is None:
            return itertools.count(self.start)
        return iter(range(self.start, self.start + self.num))

    def __len__(self) -> int:
        if self.num is None:
            raise TypeError("unbounded step range")
        return self.num


def make_step_loader(
    build_batch: BuildBatch,
    seed: int,
    start_step: int = 0,
    num_steps: int | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
    persistent_workers: bool = False,
) -> Iterator[dict[str, Any]]:
    """Iterate the batches of steps ``start_step, start_step + 1, ...``, in order.

    Args:
        build_batch: ``(step, rng, gen) -> dict`` (see :class:`StepBatches`).
        seed: data seed.
        start_step: first step (the resume point).
        num_steps: number of steps, or None for an endless stream (the loop stops it).
        num_workers: DataLoader worker processes; results do not depend on it.
        pin_memory: pin batches for faster host-to-GPU copies.
        prefetch_factor: batches prefetched per worker (DataLoader default when None).
        persistent_workers: keep workers alive between iterations of the returned loader.

    Returns:
        An iterator of batch dicts (a DataLoader with ``batch_size=None``).
    """
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
    loader = DataLoader(
        StepBatches(build_batch, seed),
        batch_size=None,
        sampler=_StepRange(start_step, num_steps),
        num_workers=num_workers,
        pin_memory=pin_memory,
        **kwargs,
    )
    return iter(loader)
