"""What ``correlearn status`` lists: the store's artifacts per stage and the last flow runs.

Per stage, the finished artifacts (count, bytes from their manifests) and the partial folders a
stopped or running stage left; then the last flow runs from MLflow (parent runs tagged ``flow``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from correlearn.artifacts import MANIFEST, ArtifactStore
from correlearn.stage_names import current_name


def tree_bytes_and_mtime(path: Path) -> tuple[int, float]:
    """Total size of the files under ``path`` and the newest modification time in the tree."""
    total, newest = 0, path.stat().st_mtime if path.exists() else 0.0
    for root, _dirs, files in os.walk(path):
        newest = max(newest, os.stat(root).st_mtime)
        for f in files:
            try:
                st = os.stat(os.path.join(root, f))
            except OSError:
                continue  # removed while we walk (a stage finishing, gc)
            total += st.st_size
            newest = max(newest, st.st_mtime)
    return total, newest


def _finished_bytes(adir: Path) -> int:
    """An artifact's size as its manifest records it (the files' when the manifest is unreadable)."""
    try:
        return int(json.loads((adir / MANIFEST).read_text()).get("bytes", 0))
    except (OSError, ValueError):
        return tree_bytes_and_mtime(adir)[0]


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
                partial_bytes += tree_bytes_and_mtime(adir)[0]
            elif not adir.name.startswith(".") and (adir / MANIFEST).is_file():
                count += 1
                size += _finished_bytes(adir)
        rows.append(
            {
                "stage": current_name(sdir.name),
                "count": count,
                "bytes": size,
                "partial": partial,
                "partial_bytes": partial_bytes,
            }
        )
    return rows


def flow_runs(tracker, limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` most recent flow parent runs, newest first.

    Args:
        tracker: a :class:`~correlearn.tracking.Tracker`.
        limit: how many runs to return.

    Returns:
        ``{run_id, flow, config, status, start_time, end_time}`` per run; times are epoch
        milliseconds as MLflow stores them (``end_time`` None while running).
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
            continue  # nested under another run: only top-level runs are flow runs
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


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
