"""The workspace's garbage collector behind ``correlearn gc``: plan what to remove, then remove it.

A finished artifact is kept when one of the ``keep_runs`` most recent flow runs used it, or is an
input (transitively) of one that was used. What a flow run used is the stage calls of the
:class:`~correlearn.records.FlowRun` in its ``flow_result.json`` (:data:`FLOW_RESULT`, logged to
its MLflow parent run when it ends; older files, plain dicts, read the same); for runs without
one, the ``stage``/``key`` tags of its nested stage runs. Artifacts finished after the start of a
flow run that is still running are kept too (its record is not written yet). ``gc`` also removes
``.partial-*``, ``.old-*`` and ``.gc-*`` folders and lock files untouched for ``stale_hours``,
unless a writer holds the lock. Artifacts made by ``correlearn stage run`` alone belong to no flow
run: gc removes them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from correlearn.artifacts import ArtifactError, ArtifactStore
from correlearn.records import FLOW_RESULT, FlowRun
from correlearn.workspace_status import flow_runs, tree_bytes_and_mtime

Ref = tuple[str, str]  # (stage, key)
HOUR = 3600.0


@dataclass
class GcPlan:
    """What ``gc`` removes (and why it keeps the rest)."""

    artifacts: list[dict[str, Any]] = field(default_factory=list)  # {stage, key, path, bytes}
    stale: list[dict[str, Any]] = field(default_factory=list)  # {kind, path, bytes, age_hours}
    kept: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)  # the flow runs whose refs are kept
    note: str = ""

    @property
    def bytes(self) -> int:
        """Bytes freed by the plan."""
        return sum(a["bytes"] for a in self.artifacts) + sum(s["bytes"] for s in self.stale)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``correlearn gc --json``)."""
        return {
            "artifacts": self.artifacts,
            "stale": self.stale,
            "kept": self.kept,
            "runs": self.runs,
            "bytes": self.bytes,
            "note": self.note,
        }


def used_artifacts(run: FlowRun) -> set[Ref]:
    """The artifacts a flow run's stage calls used (those of the flow runs it made included)."""
    return {(r.stage, r.key) for r in run.all_stages()}


def run_references(tracker, run_id: str) -> tuple[set[Ref], str]:
    """(stage, key) pairs a flow run used, and where they were read from."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = tracker.client.download_artifacts(run_id, FLOW_RESULT, tmp)
            return used_artifacts(FlowRun.read(local)), FLOW_RESULT
    except Exception:  # noqa: BLE001 - no record (older run, failed upload): use the stage runs
        pass
    children = tracker.client.search_runs(
        [tracker.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'",
        max_results=5000,
    )
    refs = {
        (c.data.tags["stage"], c.data.tags["key"])
        for c in children
        if "stage" in c.data.tags and "key" in c.data.tags
    }
    return refs, "stage runs"


def with_inputs(store: ArtifactStore, refs: set[Ref]) -> set[Ref]:
    """``refs`` plus every input of them, transitively (from the manifests)."""
    out: set[Ref] = set()
    todo = list(refs)
    while todo:
        ref = todo.pop()
        if ref in out:
            continue
        out.add(ref)
        if store.exists(*ref):
            try:
                inputs = store.manifest(*ref).get("inputs", {})
            except ArtifactError:
                continue
            todo.extend((v["stage"], v["key"]) for v in inputs.values())
    return out


def _lock_free(lock_path: Path) -> bool:
    """True when nobody holds the ``flock`` of ``lock_path`` (or it does not exist)."""
    try:
        fh = open(lock_path)  # noqa: SIM115
    except FileNotFoundError:
        return True
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
    return True


def _iso_epoch(text: str) -> float:
    try:
        return time.mktime(time.strptime(text.split(".")[0], "%Y-%m-%dT%H:%M:%S"))
    except (ValueError, AttributeError):
        return 0.0


def _referenced(tracker, runs: list[dict[str, Any]], plan: GcPlan) -> set[Ref]:
    """What the flow runs used; each run is noted in ``plan.runs`` with its count and source."""
    refs: set[Ref] = set()
    for run in runs:
        used, source = run_references(tracker, run["run_id"])
        refs |= used
        plan.runs.append({**run, "artifacts": len(used), "source": source})
    return refs


def _plan_artifacts(
    plan: GcPlan, store: ArtifactStore, keep: set[Ref], protect_after: float | None
) -> None:
    """Add every finished artifact outside ``keep`` to the plan, unless it is young."""
    for m in store.list():
        ref = (m["stage"], m["key"])
        young = protect_after is not None and _iso_epoch(m.get("finished_at", "")) >= protect_after
        if ref in keep or young:
            plan.kept += 1
            continue
        plan.artifacts.append(
            {
                "stage": m["stage"],
                "key": m["key"],
                "path": str(store.path(*ref)),
                "bytes": int(m.get("bytes", 0)),
            }
        )


def _stale_folder(sdir: Path, p: Path, horizon: float, now: float) -> dict[str, Any] | None:
    """A ``.partial-``/``.old-``/``.gc-<key>-...`` folder untouched since ``horizon``, unlocked."""
    kind = p.name[1:].split("-")[0]
    key = p.name.split("-", 1)[1].split("-")[0]
    size, newest = tree_bytes_and_mtime(p)
    if newest >= horizon or not _lock_free(sdir / f".{key}.lock"):
        return None
    return {
        "kind": kind,
        "path": str(p),
        "bytes": size,
        "age_hours": round((now - newest) / HOUR, 1),
    }


def _stale_lock(
    store: ArtifactStore, sdir: Path, p: Path, horizon: float, now: float
) -> dict[str, Any] | None:
    """A ``.<key>.lock`` file untouched since ``horizon`` that nobody holds, with no partial folder."""
    mtime = p.stat().st_mtime
    key = p.name[1 : -len(".lock")]
    if mtime >= horizon or not _lock_free(p) or store.partial_path(sdir.name, key).exists():
        return None
    return {"kind": "lock", "path": str(p), "bytes": 0, "age_hours": round((now - mtime) / HOUR, 1)}


def stale_items(store: ArtifactStore, stale_hours: float, now: float) -> list[dict[str, Any]]:
    """Leftover folders and lock files untouched for ``stale_hours`` that no writer holds."""
    horizon = now - stale_hours * HOUR
    out = []
    for sdir in sorted(p for p in store.root.glob("*") if p.is_dir()):
        for p in sorted(sdir.iterdir()):
            item = None
            if p.is_dir() and p.name.startswith((".partial-", ".old-", ".gc-")):
                item = _stale_folder(sdir, p, horizon, now)
            elif p.is_file() and p.name.startswith(".") and p.name.endswith(".lock"):
                item = _stale_lock(store, sdir, p, horizon, now)
            if item is not None:
                out.append(item)
    return out


def plan_gc(
    store: ArtifactStore, tracker, keep_runs: int = 10, stale_hours: float = 24.0
) -> GcPlan:
    """Decide what ``gc`` removes; nothing is touched.

    Args:
        store: the artifact store.
        tracker: a :class:`~correlearn.tracking.Tracker` (the flow runs and their records).
        keep_runs: how many of the most recent flow runs keep their artifacts.
        stale_hours: age (newest file in the tree) past which partial/old folders and lock files
            that no writer holds are removed.

    Returns:
        The plan. With no recorded flow run it removes no finished artifact (it would otherwise
        remove them all) and says so in ``note``.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    plan = GcPlan()
    now = time.time()
    runs = flow_runs(tracker, keep_runs)
    refs = _referenced(tracker, runs, plan)
    running = [r["start_time"] / 1000 for r in runs if r["status"] == "RUNNING"]
    if not refs:
        plan.note = "no flow run records any artifact: keeping every finished artifact"
        plan.kept = len(store.list())
    else:
        _plan_artifacts(plan, store, with_inputs(store, refs), min(running) if running else None)
        if running:
            plan.note = f"{len(running)} flow run(s) still running: their new artifacts are kept"
    plan.stale = stale_items(store, stale_hours, now)
    return plan


def run_gc(store: ArtifactStore, plan: GcPlan) -> list[str]:
    """Carry out a plan; returns what was removed. An artifact whose lock is held is left alone."""
    removed = []
    for a in plan.artifacts:
        try:
            with store.lock(a["stage"], a["key"], timeout_s=0):
                final = store.path(a["stage"], a["key"])
                if not final.is_dir():
                    continue
                # Renamed first: the artifact stops existing atomically, then the files go.
                trash = final.with_name(f".gc-{a['key']}-{os.getpid()}")
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
                removed.append(f"{a['stage']}/{a['key']}")
        except ArtifactError:
            continue  # being written right now
    for s in plan.stale:
        p = Path(s["path"])
        if s["kind"] == "lock":
            p.unlink(missing_ok=True)
        else:
            shutil.rmtree(p, ignore_errors=True)
        removed.append(str(p))
    return removed
