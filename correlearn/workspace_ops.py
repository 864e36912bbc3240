"""Workspace housekeeping behind ``correlearn status`` and ``correlearn gc``.

``status``: per stage the finished artifacts (count, bytes) and the partial folders a stopped or
running stage left, then the last flow runs from MLflow (parent runs, tag ``flow``).

``gc``: a finished artifact is kept when one of the ``keep_runs`` most recent flow runs used it, or
is an input (transitively) of one that was used. What a flow run used is its ``flow_result.json``
(logged to the parent run by ``flows.common.publish_run``); for older runs without it, the
``stage``/``key`` tags of its nested stage runs. Artifacts finished after the start of a flow run that
is still running are kept too (its record is not written yet). ``gc`` also removes ``.partial-*``
and ``.old-*`` folders and lock files untouched for ``stale_hours``, unless a writer holds the lock.
Artifacts made by ``correlearn stage run`` alone belong to no flow run: gc removes them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from correlearn.artifacts import MANIFEST, ArtifactError, ArtifactStore

RESULT_FILE = "flow_result.json"


def _tree_bytes_and_mtime(path: Path) -> tuple[int, float]:
    """Total size of the files under ``path`` and the newest modification time in the tree."""
    total, newest = 0, path.stat().st_mtime if path.exists() else 0.0
    for root, _dirs, files in os.walk(path):
        newest = max(newest, os.stat(root).st_mtime)
        for f in files:
            try:
                st = os.stat(os.path.join(root, f))
            except OSError:
                continue
            total += st.st_size
            newest = max(newest, st.st_mtime)
    return total, newest


def artifact_stats(store: ArtifactStore) -> list[dict[str, Any]]:
    """Per stage: ``{stage, count, bytes, partial, partial_bytes}`` of the store's folders."""
    rows = []
    if not store.root.is_dir():
        return rows
    for sdir in sorted(p for p in store.root.iterdir() if p.is_dir()):
        count = size = partial = partial_bytes = 0
        for adir in sdir.iterdir():
            if not adir.is_dir():
                continue
            if adir.name.startswith(".partial-"):
                partial += 1
                partial_bytes += _tree_bytes_and_mtime(adir)[0]
            elif not adir.name.startswith(".") and (adir / MANIFEST).is_file():
                count += 1
                try:
                    size += int(json.loads((adir / MANIFEST).read_text()).get("bytes", 0))
                except (OSError, ValueError):
                    size += _tree_bytes_and_mtime(adir)[0]
        rows.append(
            {
                "stage": sdir.name,
                "count": count,
                "bytes": size,
                "partial": partial,
                "partial_bytes": partial_bytes,
            }
        )
    return rows


def flow_runs(tracker, limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` most recent flow parent runs: ``{run_id, flow, status, start_time, end_time}``.

    Times are epoch milliseconds as MLflow stores them (``end_time`` None while running).
    """
    runs = tracker.client.search_runs(
        [tracker.experiment_id],
        filter_string="tags.flow LIKE '%'",
        order_by=["attributes.start_time DESC"],
        max_results=limit,
    )
    out = []
    for r in runs:
        tags = r.data.tags
        if "mlflow.parentRunId" in tags:
            continue
        out.append(
            {
                "run_id": r.info.run_id,
                "flow": tags.get("flow", ""),
                "config": tags.get("config", ""),
                "status": r.info.status,
                "start_time": r.info.start_time,
                "end_time": r.info.end_time,
            }
        )
    return out


def run_references(tracker, run_id: str) -> tuple[set[tuple[str, str]], str]:
    """(stage, key) pairs a flow run used, and where they were read from."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = tracker.client.download_artifacts(run_id, RESULT_FILE, tmp)
            result = json.loads(Path(local).read_text())
        return {(s["stage"], s["key"]) for s in result.get("stages", [])}, RESULT_FILE
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


def with_inputs(store: ArtifactStore, refs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """``refs`` plus every input of them, transitively (from the manifests)."""
    out: set[tuple[str, str]] = set()
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
    refs: set[tuple[str, str]] = set()
    for run in runs:
        used, source = run_references(tracker, run["run_id"])
        refs |= used
        plan.runs.append({**run, "artifacts": len(used), "source": source})
    keep = with_inputs(store, refs)
    running = [r["start_time"] / 1000 for r in runs if r["status"] == "RUNNING"]
    protect_after = min(running) if running else None
    finished = store.list()
    if not refs:
        plan.note = "no flow run records any artifact: keeping every finished artifact"
        plan.kept = len(finished)
    else:
        for m in finished:
            ref = (m["stage"], m["key"])
            young = (
                protect_after is not None and _iso_epoch(m.get("finished_at", "")) >= protect_after
            )
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
        if running:
            plan.note = f"{len(running)} flow run(s) still running: their new artifacts are kept"
    horizon = now - stale_hours * 3600
    for sdir in sorted(p for p in store.root.glob("*") if p.is_dir()):
        for p in sorted(sdir.iterdir()):
            if p.is_dir() and p.name.startswith((".partial-", ".old-", ".gc-")):
                kind = p.name[1:].split("-")[0]
                key = p.name.split("-", 1)[1].split("-")[0]
                size, newest = _tree_bytes_and_mtime(p)
                if newest < horizon and _lock_free(sdir / f".{key}.lock"):
                    plan.stale.append(
                        {
                            "kind": kind,
                            "path": str(p),
                            "bytes": size,
                            "age_hours": round((now - newest) / 3600, 1),
                        }
                    )
            elif p.is_file() and p.name.startswith(".") and p.name.endswith(".lock"):
                age = now - p.stat().st_mtime
                key = p.name[1 : -len(".lock")]
                if (
                    age > stale_hours * 3600
                    and _lock_free(p)
                    and not store.partial_path(sdir.name, key).exists()
                ):
                    plan.stale.append(
                        {
                            "kind": "lock",
                            "path": str(p),
                            "bytes": 0,
                            "age_hours": round(age / 3600, 1),
                        }
                    )
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


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
