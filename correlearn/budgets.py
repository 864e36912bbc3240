"""Budgets of training stages: how a run stopped early is stored, found and continued.

A training stage's key (its *schedule key* K) leaves out the budget fields (``train.max_steps``,
``train.max_minutes``, marked :data:`~correlearn.config.BUDGET_STEPS` / ``BUDGET_TIME``): a budget
stops a run early on the full schedule, it does not change the schedule. The training state of
schedule K lives in the partial folder ``.partial-K`` and outlives every budget stop.

- A run that finishes the schedule is committed as K, as any stage.
- A run stopped by a budget after step s is committed as its own artifact
  ``snapshot_key(stage, version, K, s)``, a snapshot of the partial folder (backbone, pictures,
  the full resumable checkpoint), with ``schedule_key``, ``stopped_at_step``, ``total_steps`` and
  the ``requests`` it answered in its manifest. Evaluation stages therefore see a different input
  key for the checkpoint at step 1000 and the one at step 2000.
- A later call of the same schedule with a larger budget (or none) continues from the furthest
  checkpoint at or below its target: the partial folder, or else the checkpoint inside the best
  snapshot (so a cleaned-up partial folder loses nothing).

Which call answers which request: a step budget N is answered by the snapshot at step N (or by K
when the schedule is not longer than N); a time budget is answered by whatever an earlier call
with the same budget produced (recorded as a request key in the manifest), or by K once it exists.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from correlearn.artifacts import PARKED, ArtifactStore, compute_key

TRAIN_DIR = "train"
PARKED_DIR = PARKED  # a checkpoint past a smaller call's budget waits here (never snapshotted)
SIDECAR = "last.pt.json"  # correlearn.train.checkpoint.SIDECAR: {"step", "run_id"}


def request_key(stage: str, version: int, schedule: str, budget: dict[str, Any]) -> str:
    """Key of one budgeted request (schedule + budget values), recorded in the answer's manifest."""
    return compute_key(stage, version, {"schedule": schedule, "budget": budget}, {})


def snapshot_key(stage: str, version: int, schedule: str, step: int) -> str:
    """Key of the budget-stopped artifact of schedule ``schedule`` at ``step``."""
    return compute_key(stage, version, {"schedule": schedule, "stopped_at_step": int(step)}, {})


def snapshots(store: ArtifactStore, stage: str, schedule: str) -> list[dict[str, Any]]:
    """Manifests of the finished artifacts of one schedule (snapshots and the full run)."""
    return [m for m in store.list(stage) if m.get("schedule_key") == schedule]


def find_answer(
    store: ArtifactStore, stage: str, version: int, schedule: str, budget: dict[str, Any],
    max_steps: int | None,
) -> str | None:  # fmt: skip
    """The key of a finished artifact that answers a budgeted request, or None.

    Args:
        store: the artifact store.
        stage: stage name.
        version: stage version.
        schedule: the schedule key K.
        budget: the request's budget values (dotted field -> value, Nones left out).
        max_steps: the request's step budget, or None.
    """
    if max_steps is not None and store.exists(
        stage, snapshot_key(stage, version, schedule, max_steps)
    ):
        return snapshot_key(stage, version, schedule, max_steps)
    req = request_key(stage, version, schedule, budget)
    for m in snapshots(store, stage, schedule):
        if req in m.get("requests", []):
            return m["key"]
    if store.exists(stage, schedule):
        total = store.manifest(stage, schedule).get("stopped_at_step")
        if max_steps is None or (total is not None and total <= max_steps):
            return schedule
    return None


def partial_step(partial: Path) -> int | None:
    """Completed steps of the checkpoint in a partial folder (None: no checkpoint)."""
    sidecar = partial / TRAIN_DIR / SIDECAR
    try:
        return int(json.loads(sidecar.read_text())["step"])
    except (OSError, ValueError, KeyError):
        return None


def _park(partial: Path, have: int, parked: int | None) -> None:
    """Move the partial folder's training state (at step ``have``) to ``parked/``, keeping the furthest.

    A checkpoint past a call's step budget is the furthest progress of its schedule: a smaller
    budget must not delete it, and a later, larger call continues from it.
    """
    train, park = partial / TRAIN_DIR, partial / PARKED_DIR / TRAIN_DIR
    if parked is not None and parked >= have:
        shutil.rmtree(train)  # the parked one is further: this one is not the furthest progress
        return
    if park.exists():
        shutil.rmtree(park)
    park.parent.mkdir(parents=True, exist_ok=True)
    train.rename(park)
    print(f"[parked] {partial.name}: the checkpoint at step {have} is kept for a later call")


def _best_snapshot(store, stage, schedule, target) -> tuple[int, str] | None:
    best = None
    for m in snapshots(store, stage, schedule):
        s = m.get("stopped_at_step")
        ok = s is not None and (target is None or s <= target) and (best is None or s > best[0])
        if ok and (Path(store.path(stage, m["key"])) / TRAIN_DIR / SIDECAR).is_file():
            best = (int(s), m["key"])
    return best


def prepare_partial(
    store: ArtifactStore, stage: str, schedule: str, partial: Path, target: int | None
) -> int | None:
    """Make the partial folder hold the furthest checkpoint at or below ``target`` steps.

    The candidates are the partial folder's own checkpoint, the one parked there by an earlier
    smaller budget (``parked/train``) and the schedule's snapshots. A checkpoint past ``target``
    is parked, never deleted, so the furthest progress of the schedule always survives.

    Args:
        store: the artifact store.
        stage: stage name.
        schedule: the schedule key K (``partial`` is ``.partial-K``).
        partial: the partial folder.
        target: the step the call stops at (its step budget), or None (as far as it goes).

    Returns:
        The step training continues from (None: from scratch).
    """
    train = partial / TRAIN_DIR
    have, parked = partial_step(partial), partial_step(partial / PARKED_DIR)
    fits = have is not None and (target is None or have <= target)
    best = _best_snapshot(store, stage, schedule, target)
    park_fits = parked is not None and (target is None or parked <= target)
    if fits and (best is None or have >= best[0]) and (not park_fits or have >= parked):
        if parked is not None and parked <= have:
            shutil.rmtree(partial / PARKED_DIR)  # overtaken: no longer the furthest progress
        return have
    if have is not None and not fits:
        _park(partial, have, parked)
        parked = partial_step(partial / PARKED_DIR)
    elif train.exists():
        shutil.rmtree(train)
    if park_fits and (best is None or parked >= best[0]):
        (partial / PARKED_DIR / TRAIN_DIR).rename(train)
        (partial / PARKED_DIR).rmdir()
        return parked
    if best is None:
        return None
    src = store.path(stage, best[1]) / TRAIN_DIR
    train.mkdir(parents=True)
    for p in src.iterdir():
        if p.is_file():
            # A link is safe: checkpoints are replaced by rename, never rewritten in place.
            try:
                os.link(p, train / p.name)
            except OSError:
                shutil.copy2(p, train / p.name)
    return best[0]
