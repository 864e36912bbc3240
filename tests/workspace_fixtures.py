"""A workspace for ``status`` and ``gc``: a real store and a local MLflow store with flow runs.

:func:`build_template` makes it once per test module (a fresh MLflow SQLite store takes seconds);
:func:`copy_workspace` gives each test its own copy. Import with
``from tests.workspace_fixtures import ...``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from correlearn.artifacts import ArtifactStore
from correlearn.records import FLOW_RESULT, FlowRun, StageRun
from correlearn.tracking import Tracker
from correlearn.workspace import get_workspace

DAY = 24 * 3600
A, B, C, D = "a" * 16, "b" * 16, "c" * 16, "d" * 16  # shards, ckpt(shards), shards, ckpt


def env(home: Path) -> dict[str, str]:
    """The environment of a hermetic workspace at ``home`` (no tracking server, quiet Prefect)."""
    return {
        "CORRELEARN_HOME": str(home),
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "MLFLOW_ENABLE_TELEMETRY": "false",
    }


def _commit(store: ArtifactStore, stage: str, key: str, size: int, inputs=None) -> None:
    part = store.begin(stage, key, keep_partial=False)
    (part / "data.bin").write_bytes(b"x" * size)
    store.commit(
        stage,
        key,
        {
            "stage": stage,
            "key": key,
            "inputs": {n: {"stage": s, "key": k} for n, (s, k) in (inputs or {}).items()},
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - DAY)),
        },
    )


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    for p in [path, *path.rglob("*")]:
        os.utime(p, (t, t))


def _log_record(tracker: Tracker, run_id: str, tmp: Path, record: dict) -> None:
    rec = tmp / FLOW_RESULT
    rec.write_text(json.dumps(record))
    tracker.log_artifact(run_id, rec)


def _flow_runs(tracker: Tracker, store: ArtifactStore, tmp: Path) -> None:
    """Three flow runs, oldest first: no record (a nested stage run tagged ``C``), an old-style
    dict record naming ``D``, a :class:`FlowRun` record naming ``B``."""
    oldest = tracker.start("byol", tags={"flow": "byol"})
    tracker.end(tracker.start("image_shards", oldest, {"stage": "image_shards", "key": C}))
    tracker.end(oldest)
    time.sleep(0.02)  # MLflow orders by start time in milliseconds
    middle = tracker.start("vfs", tags={"flow": "vfs"})
    d = str(store.path("pretrain_byol", D))
    stage = {"stage": "pretrain_byol", "key": D, "path": d, "cache_hit": False}
    _log_record(tracker, middle, tmp, {"flow": "vfs", "stages": [{**stage, "label": "x@5"}]})
    tracker.end(middle)
    time.sleep(0.02)
    newest = tracker.start("byol", tags={"flow": "byol"})
    b = StageRun("pretrain_byol", B, str(store.path("pretrain_byol", B)), True, label="x")
    _log_record(tracker, newest, tmp, FlowRun("byol", [b]).to_dict())
    tracker.end(newest)


def build_template(tmp: Path) -> Path:
    """4 finished artifacts, an old and a fresh partial folder, an old lock, 3 flow runs.

    The newest flow run's record names ``B`` (whose input is ``A``), the middle one's ``D``, the
    oldest has only a nested stage run with ``C``'s key. Returns the workspace home.
    """
    home = tmp / "home"
    mp = pytest.MonkeyPatch()
    for k, v in env(home).items():
        mp.setenv(k, v)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        ws = get_workspace(home)
        store = ArtifactStore(ws.artifacts)
        _commit(store, "image_shards", A, 1000)
        _commit(store, "pretrain_byol", B, 3000, {"shards": ("image_shards", A)})
        _commit(store, "image_shards", C, 500)
        _commit(store, "pretrain_byol", D, 700)
        old = store.partial_path("pretrain_byol", "e" * 16)
        old.mkdir()
        (old / "last.pt").write_bytes(b"y" * 50)
        _age(old, 2 * DAY)
        fresh = store.partial_path("pretrain_byol", "f" * 16)
        fresh.mkdir()
        (fresh / "last.pt").write_bytes(b"z" * 10)
        lock = store.root / "image_shards" / ".0123456789abcdef.lock"
        lock.touch()
        _age(lock, 2 * DAY)
        _flow_runs(Tracker(ws), store, tmp)
    finally:
        mp.undo()
    return home


@dataclass
class Workspace:
    """A copy of the template: its store, the old and fresh partial folders, the old lock."""

    home: Path
    store: ArtifactStore
    old: Path
    fresh: Path
    lock: Path


def copy_workspace(template: Path, tmp: Path, monkeypatch) -> Workspace:
    """A private copy of the template workspace, activated through the environment."""
    home = tmp / "home"
    shutil.copytree(template, home)  # copy2: modification times (staleness) are kept
    for k, v in env(home).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = ArtifactStore(home / "artifacts")
    return Workspace(
        home,
        store,
        store.partial_path("pretrain_byol", "e" * 16),
        store.partial_path("pretrain_byol", "f" * 16),
        store.root / "image_shards" / ".0123456789abcdef.lock",
    )
