"""Computing one stage call: its partial folder, its MLflow run, its manifest and its commit.

:class:`~correlearn.pipeline.Pipeline` decides whether a call is answered from the cache; when it
is not, :func:`compute` runs the stage into its partial folder (continuing a stopped run of the
same key), writes the manifest, and commits the folder as the artifact, or as a snapshot when a
step or time budget stopped a training stage (:mod:`correlearn.budgets`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from correlearn import __version__
from correlearn.artifacts import MANIFEST, ArtifactRef, ArtifactStore
from correlearn.budgets import prepare_partial, request_key, snapshot_key
from correlearn.config import budget_fields
from correlearn.stage import StageContext, StageSpec
from correlearn.tracking import Tracker

RUN_ID_FILE = ".mlflow_run_id"


@dataclass(frozen=True)
class Budget:
    """The budget of one call of a stage with budget fields (a training stage)."""

    values: dict[str, Any]  # dotted field -> value, the fields that are set
    max_steps: int | None
    request: str

    @classmethod
    def of(cls, spec: StageSpec, config: Any, key: str) -> Budget | None:
        """The call's budget, or None for a stage without budget fields."""
        fields = budget_fields(config)
        if not fields:
            return None
        values = {k: v for k, (_, v) in fields.items() if v is not None}
        steps = [v for kind, v in fields.values() if kind == "steps" and v is not None]
        req = request_key(spec.name, spec.version, key, values)
        return cls(values, min(steps) if steps else None, req)


@dataclass(frozen=True)
class Call:
    """One stage call that is about to be computed."""

    spec: StageSpec
    config: Any
    resolved: dict[str, Any]
    inputs: dict[str, ArtifactRef]
    key: str
    budget: Budget | None
    force: bool


def tags(spec: StageSpec, key: str, refs: dict[str, ArtifactRef], cache_hit: bool) -> dict:
    """MLflow tags of a stage run: stage, key, cache hit and the input artifacts."""
    out = {"stage": spec.name, "key": key, "cache_hit": str(cache_hit).lower()}
    out.update({f"input.{k}": f"{v.stage}/{v.key}" for k, v in refs.items()})
    return out


def compute(
    call: Call,
    store: ArtifactStore,
    tracker: Tracker | None,
    parent_run_id: str | None,
    base_dir: Path,
    pipeline_config: dict[str, Any],
) -> tuple[ArtifactRef, str | None, float]:
    """Run the stage into its partial folder and commit it; returns (ref, MLflow run id, seconds)."""
    spec = call.spec
    # A forced call starts over from a clean partial folder (a damaged file left by a killed
    # run must not survive --force); anything else resumable continues.
    keep = spec.resumable and not call.force
    partial = store.begin(spec.name, call.key, keep_partial=keep)
    if call.budget is not None and not call.force:
        at = prepare_partial(store, spec.name, call.key, partial, call.budget.max_steps)
        if at:
            print(f"[continuing] {spec.name} {call.key} from step {at}", flush=True)
    run_file = partial / RUN_ID_FILE
    previous = run_file.read_text().strip() if run_file.exists() else None
    run_id = None
    if tracker:
        run_tags = tags(spec, call.key, call.inputs, cache_hit=False)
        run_id = tracker.start(spec.name, parent_run_id, run_tags, resume_run_id=previous)
        run_file.write_text(run_id)
        tracker.log_params(run_id, call.resolved)
    print(f"[{'resuming' if previous else 'running'}] {spec.name} {call.key}", flush=True)
    ctx = StageContext(
        spec, call.config, call.resolved, call.inputs, partial, tracker, run_id, base_dir,
        resumed=previous is not None, pipeline_config=pipeline_config,
    )  # fmt: skip
    started = time.time()
    try:
        with store.hold(call.inputs):  # gc must not remove an input while the stage reads it
            meta = spec.run(ctx) or {}
    except BaseException:
        _end_failed(spec, tracker, run_id)
        raise
    finished = time.time()
    manifest = _manifest(call, ctx, meta, started, finished, run_id)
    run_file.unlink(missing_ok=True)
    ref = _commit(call, store, partial, manifest, ctx.progress)
    if tracker and run_id:
        tracker.log_artifact(run_id, Path(ref.path) / MANIFEST)
        tracker.log_metrics(run_id, {"seconds": finished - started, **ctx.counts})
        tracker.set_tags(run_id, {"artifact_path": ref.path, "key": ref.key})
        tracker.end(run_id)
    print(f"[done] {spec.name} {ref.key} in {finished - started:.1f} s -> {ref.path}", flush=True)
    return ref, run_id, round(finished - started, 3)


def _manifest(call: Call, ctx: StageContext, meta: dict, started: float, finished: float, run_id):
    return {
        "stage": call.spec.name,
        "version": call.spec.version,
        "key": call.key,
        "config": call.resolved,
        "inputs": {k: {"stage": v.stage, "key": v.key} for k, v in call.inputs.items()},
        "counts": ctx.counts,
        "skipped": ctx.skipped,
        "metrics": ctx.metrics,
        "pictures": ctx.pictures,
        "metadata": meta,
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "seconds": round(finished - started, 3),
        "mlflow_run_id": run_id,
        "package_version": __version__,
    }


def _commit(
    call: Call, store: ArtifactStore, partial: Path, manifest: dict, progress
) -> ArtifactRef:
    """Commit the partial folder as the key, or snapshot it when a budget stopped the run."""
    spec, budget = call.spec, call.budget
    if budget is None:
        return store.commit(spec.name, call.key, manifest)
    progress = progress or {}
    step = progress.get("step")
    manifest.update(
        schedule_key=call.key,
        stopped_at_step=step,
        total_steps=progress.get("total_steps"),
        budget=budget.values,
        requests=[budget.request],
    )
    if not progress.get("stopped_on_budget"):
        return store.commit(spec.name, call.key, manifest)
    skey = snapshot_key(spec.name, spec.version, call.key, step)
    with store.lock(spec.name, skey):
        if store.exists(spec.name, skey):  # same weights (seeded); keep its requests
            old = store.manifest(spec.name, skey).get("requests", [])
            manifest["requests"] = sorted(set(old) | {budget.request})
        manifest["key"] = skey
        return store.snapshot(spec.name, partial, skey, manifest)


def _end_failed(spec: StageSpec, tracker: Tracker | None, run_id: str | None) -> None:
    # The stage's own error (disk full, say) must reach the user; failing to record it in
    # MLflow too is only a warning (the run is marked KILLED at the next start).
    if not (tracker and run_id):
        return
    try:
        tracker.end(run_id, ok=False)
    except Exception as exc:  # noqa: BLE001 - any tracking failure
        warnings.warn(
            f"{spec.name}: could not mark MLflow run {run_id} FAILED "
            f"({type(exc).__name__}: {exc}); the stage's own error follows",
            stacklevel=3,
        )


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"
