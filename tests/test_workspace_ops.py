"""`correlearn status` and `correlearn gc` over a real store and a local MLflow store; a dead
tracking server fails fast."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from correlearn import cli
from correlearn.artifacts import ArtifactStore
from correlearn.tracking import Tracker
from correlearn.workspace import get_workspace

REPO = Path(__file__).resolve().parents[1]
DAVIS = REPO / "data" / "davis-mini"
DAY = 24 * 3600


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


def _env(home: Path) -> dict[str, str]:
    return {
        "CORRELEARN_HOME": str(home),
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "MLFLOW_ENABLE_TELEMETRY": "false",
    }


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store with 4 finished artifacts, partial folders and a lock, and 2 recorded flow runs.

    The newest flow run records shards -> ckpt in its flow_result.json; an older one has no record,
    only a nested stage run tagged with `other`'s key; `orphan` belongs to no run. Built once (a
    fresh MLflow SQLite store takes seconds); each test works on a copy.
    """
    tmp = tmp_path_factory.mktemp("ws")
    home = tmp / "home"
    mp = pytest.MonkeyPatch()
    for k, v in _env(home).items():
        mp.setenv(k, v)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        ws = get_workspace(home)
        store = ArtifactStore(ws.artifacts)
        _commit(store, "image_shards", "a" * 16, 1000)
        _commit(store, "pretrain_image", "b" * 16, 3000, {"shards": ("image_shards", "a" * 16)})
        _commit(store, "image_shards", "c" * 16, 500)
        _commit(store, "pretrain_image", "d" * 16, 700)
        old = store.partial_path("pretrain_image", "e" * 16)
        old.mkdir()
        (old / "last.pt").write_bytes(b"y" * 50)
        _age(old, 2 * DAY)
        fresh = store.partial_path("pretrain_image", "f" * 16)
        fresh.mkdir()
        (fresh / "last.pt").write_bytes(b"z" * 10)
        lock = store.root / "image_shards" / ".0123456789abcdef.lock"
        lock.touch()
        _age(lock, 2 * DAY)

        tracker = Tracker(ws)
        older = tracker.start("byol", tags={"flow": "byol"})
        child = tracker.start("image_shards", older, {"stage": "image_shards", "key": "c" * 16})
        tracker.end(child)
        tracker.end(older)
        time.sleep(0.01)
        newest = tracker.start("byol", tags={"flow": "byol"})
        rec = tmp / "flow_result.json"
        stages = [{"stage": "pretrain_image", "key": "b" * 16}]
        rec.write_text(json.dumps({"flow": "byol", "stages": stages}))
        tracker.log_artifact(newest, rec)
        tracker.end(newest)
    finally:
        mp.undo()
    return home


@pytest.fixture
def workspace(template, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(template, home)  # copy2: modification times (staleness) are kept
    for k, v in _env(home).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = ArtifactStore(home / "artifacts")
    old = store.partial_path("pretrain_image", "e" * 16)
    fresh = store.partial_path("pretrain_image", "f" * 16)
    return store, old, fresh, store.root / "image_shards" / ".0123456789abcdef.lock"


def _json_line(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_gc_dry_run_lists_and_keeps_everything(workspace, capsys):
    store, old, fresh, lock = workspace
    assert cli.main(["gc", "--dry-run", "--keep-runs", "1", "--json"]) == 0
    plan = _json_line(capsys)
    gone = {(a["stage"], a["key"]) for a in plan["artifacts"]}
    # Kept: ckpt (recorded) and its input shards; removed: the two others.
    assert gone == {("image_shards", "c" * 16), ("pretrain_image", "d" * 16)}
    assert {s["path"] for s in plan["stale"]} == {str(old), str(lock)}
    assert plan["kept"] == 2 and plan["bytes"] == 500 + 700 + 50
    assert len(store.list()) == 4 and old.exists() and lock.exists()


def test_gc_deletes_unreferenced_and_keeps_referenced(workspace, capsys):
    store, old, fresh, lock = workspace
    # Two runs: the older one's nested stage run references `c`.
    assert cli.main(["gc", "--keep-runs", "2"]) == 0
    left = {(m["stage"], m["key"]) for m in store.list()}
    assert left == {
        ("image_shards", "a" * 16),
        ("pretrain_image", "b" * 16),
        ("image_shards", "c" * 16),
    }
    assert not old.exists() and not lock.exists() and fresh.exists()
    assert cli.main(["gc", "--keep-runs", "1"]) == 0
    assert {m["key"] for m in store.list()} == {"a" * 16, "b" * 16}
    assert "image_shards" in capsys.readouterr().out


def test_status_counts_artifacts_and_lists_flow_runs(workspace, capsys):
    assert cli.main(["status", "--json"]) == 0
    st = _json_line(capsys)
    by_stage = {r["stage"]: r for r in st["stages"]}
    assert by_stage["image_shards"]["count"] == 2 and by_stage["image_shards"]["bytes"] == 1500
    assert by_stage["pretrain_image"]["count"] == 2 and by_stage["pretrain_image"]["bytes"] == 3700
    assert by_stage["pretrain_image"]["partial"] == 2
    assert [r["flow"] for r in st["flow_runs"]] == ["byol", "byol"]
    assert all(r["status"] == "FINISHED" for r in st["flow_runs"])
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "pretrain_image" in out and "FINISHED" in out


def test_unreachable_tracking_server_fails_fast_naming_it(tmp_path):
    root = tmp_path / "davis" / "JPEGImages" / "480p" / "bear"
    root.mkdir(parents=True)
    shutil.copy(sorted((DAVIS / "JPEGImages" / "480p" / "bear").glob("*.jpg"))[0], root)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"datasets:\n  d: {{root: {tmp_path / 'davis'}, layout: davis}}\n")
    env = {
        **os.environ,
        "CORRELEARN_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
    }
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "correlearn.cli", "flow", "run", "data", "--config", str(cfg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - t0
    assert p.returncode == 2, p.stdout + p.stderr
    assert "error: MLFLOW_TRACKING_URI=http://127.0.0.1:9 does not answer" in p.stderr
    assert "Traceback" not in p.stderr and took < 30
    assert not any((tmp_path / "home" / "artifacts").iterdir())  # no stage started
