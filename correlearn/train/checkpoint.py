"""Resumable training state on disk: atomic writes, the checkpoint dict, run-id lookup.

A checkpoint is a dict saved with ``torch.save`` and loadable with ``weights_only=True`` (only
tensors, numbers, strings and containers): model, optimiser and scaler state, the number of
completed steps, the RNG states of python/numpy/torch (CPU and CUDA), the MLflow run id, the config,
and the loss history. ``workdir/last.pt`` is the newest; ``workdir/prev.pt`` the one before; a small
``workdir/last.pt.json`` sidecar lets the stage runner read the run id without loading tensors.
The RNG states are captured and restored by :mod:`correlearn.train.rng`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from correlearn.train.distributed import rank_seed
from correlearn.train.rng import seed_everything, set_rng_state

LAST = "last.pt"
PREV = "prev.pt"
SIDECAR = "last.pt.json"


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read; the message names the file."""


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_synced(obj: Any, tmp: Path) -> None:
    # The bytes are on disk before any rename points at them; a failed write leaves no tmp behind.
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """Save ``obj`` to ``path`` so that a crash leaves either the old file or the new one.

    Writes ``path.tmp`` in the same directory, fsyncs it and renames it over ``path``.

    Args:
        obj: anything ``torch.save`` accepts.
        path: destination file.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    _write_synced(obj, tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return path


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(state: dict[str, Any], workdir: str | Path, keep_previous: bool = True) -> Path:
    """Write ``state`` as ``workdir/last.pt`` atomically, keeping the former one as ``prev.pt``.

    Between the two renames only ``prev.pt`` exists, which :func:`latest_checkpoint` falls back to.

    Args:
        state: the checkpoint dict (see the module docstring).
        workdir: the run's directory.
        keep_previous: keep the former ``last.pt`` as ``prev.pt`` (else it is overwritten).

    Returns:
        The path of ``last.pt``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    last = workdir / LAST
    tmp = workdir / (LAST + ".tmp")
    _write_synced(state, tmp)  # complete before anything is renamed
    if keep_previous and last.exists():
        os.replace(last, workdir / PREV)
    os.replace(tmp, last)
    _fsync_dir(workdir)
    sidecar = {"step": int(state.get("step", 0)), "run_id": state.get("run_id")}
    _atomic_write_text(workdir / SIDECAR, json.dumps(sidecar))
    return last


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU.

    Args:
        path: a ``.pt`` file written by :func:`save_checkpoint`.

    Returns:
        The checkpoint dict.

    Raises:
        CheckpointError: the file is missing, truncated, corrupt or not a checkpoint dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/corrupt archives
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); "
            f"delete it to start over or restore {PREV} from the same directory"
        ) from exc
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"checkpoint {path} is not a training checkpoint (no 'step' entry)")
    return state


def latest_checkpoint(workdir: str | Path) -> Path | None:
    """The newest checkpoint of a run: ``last.pt``, else ``prev.pt``, else None."""
    for name in (LAST, PREV):
        p = Path(workdir) / name
        if p.is_file():
            return p
    return None


def read_run_id(workdir: str | Path) -> str | None:
    """MLflow run id stored with the newest checkpoint, or None when there is no checkpoint/run id.

    Reads the small ``last.pt.json`` sidecar, falling back to the checkpoint itself.
    """
    sidecar = Path(workdir) / SIDECAR
    if sidecar.is_file() and (Path(workdir) / LAST).is_file():
        try:
            return json.loads(sidecar.read_text()).get("run_id")
        except (ValueError, OSError):
            pass  # fall back to the checkpoint
    path = latest_checkpoint(workdir)
    if path is None:
        return None
    return load_checkpoint(path).get("run_id")


def training_state(
    *,
    step: int,
    total_steps: int,
    method: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    rngs: list[dict[str, Any]],
    run_id: str | None,
    config: dict[str, Any],
    history: list[tuple[int, float]],
    last_losses: dict[str, float],
    stop_reason: str,
    minutes: float,
) -> dict[str, Any]:
    """The checkpoint dict of a training run after ``step`` completed steps.

    Args:
        step: completed optimiser steps.
        total_steps: length of the schedule.
        method: the (unwrapped) method; its full state, EMA targets included.
        optimizer: the optimiser.
        scaler: the AMP grad scaler (empty state when disabled).
        rngs: :func:`~correlearn.train.rng.get_rng_state` of every rank, rank 0 first.
        run_id: MLflow run id.
        config: the loop and optimiser configs as plain data.
        history: ``(step, loss)`` of every step so far.
        last_losses: named losses of the last step.
        stop_reason: ``"running"`` for a periodic checkpoint, else why the run stopped.
        minutes: training minutes over all sessions.

    Returns:
        A dict that :func:`save_checkpoint` writes and :func:`restore_training_state` reads.
    """
    return {
        "format": 1,
        "step": step,
        "total_steps": total_steps,
        "model": method.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rngs[0],
        "rng_per_rank": rngs if len(rngs) > 1 else None,
        "run_id": run_id,
        "config": config,
        "history": {
            "step": torch.tensor([s for s, _ in history], dtype=torch.long),
            "loss": torch.tensor([v for _, v in history], dtype=torch.float64),
        },
        "last_losses": dict(last_losses),
        "stop_reason": stop_reason,
        "minutes": minutes,
        "world_size": len(rngs),
    }


def restore_training_state(
    ckpt: dict[str, Any],
    method: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Load a checkpoint's weights, optimiser, scaler and this rank's RNG states in place.

    When the world size changed since the save, ranks other than 0 get a fresh stream seeded with
    ``(seed, rank, step)`` instead of a saved one.

    Args:
        ckpt: from :func:`load_checkpoint`.
        method: the method, already on its device.
        optimizer: its optimiser (state is moved to the parameters' device).
        scaler: the AMP grad scaler.
        rank: this process's rank.
        world_size: number of processes now.
        seed: the run's seed (used only when the world size changed).

    Returns:
        ``step``, ``total_steps``, ``history`` (list of (step, loss)), ``last_losses``, ``minutes``
        and ``run_id`` of the checkpoint.
    """
    method.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scaler.is_enabled() and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    step = int(ckpt["step"])
    per_rank = ckpt.get("rng_per_rank")
    if per_rank is not None and len(per_rank) == world_size:
        set_rng_state(per_rank[rank])
    elif rank == 0:
        set_rng_state(ckpt["rng"])
    else:
        seed_everything(rank_seed(seed, rank) + step)
    hist = ckpt.get("history") or {}
    history = []
    if "step" in hist:
        history = list(zip(hist["step"].tolist(), hist["loss"].tolist(), strict=True))
    return {
        "step": step,
        "total_steps": ckpt.get("total_steps"),
        "history": history,
        "last_losses": dict(ckpt.get("last_losses") or {}),
        "minutes": float(ckpt.get("minutes", 0.0)),
        "run_id": ckpt.get("run_id"),
    }
