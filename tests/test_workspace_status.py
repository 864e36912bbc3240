"""`correlearn status` over a real store and a local MLflow store; a dead tracking server fails
fast."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from app import cli
from correlearn.tracking import Tracker
from correlearn.workspace import get_workspace
from correlearn.workspace_status import artifact_stats, flow_runs, human_bytes

REPO = Path(__file__).resolve().parents[1]
DAVIS = REPO / "data" / "davis-mini"


def test_artifact_stats_count_finished_and_partial(ws):
    by_stage = {r["stage"]: r for r in artifact_stats(ws.store)}
    assert by_stage["image_shards"] == {
        "stage": "image_shards",
        "count": 2,
        "bytes": 1500,
        "partial": 0,
        "partial_bytes": 0,
    }
    assert by_stage["pretrain_byol"]["count"] == 2 and by_stage["pretrain_byol"]["bytes"] == 3700
    assert by_stage["pretrain_byol"]["partial"] == 2
    assert by_stage["pretrain_byol"]["partial_bytes"] == 60


def test_flow_runs_newest_first(ws):
    runs = flow_runs(Tracker(get_workspace(ws.home)), limit=2)
    assert [r["flow"] for r in runs] == ["byol", "vfs"]
    assert all(r["status"] == "FINISHED" and r["end_time"] >= r["start_time"] for r in runs)


def test_status_counts_artifacts_and_lists_flow_runs(ws, capsys):
    assert cli.main(["status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {r["stage"]: r["count"] for r in st["stages"]} == {
        "image_shards": 2,
        "pretrain_byol": 2,
    }
    assert [r["flow"] for r in st["flow_runs"]] == ["byol", "vfs", "byol"]
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "pretrain_byol" in out and "FINISHED" in out and "3.6 KiB" in out


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1536, 3 * 1024**2, 5 * 1024**4)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "3.0 MiB",
        "5120.0 GiB",
    ]


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
        [sys.executable, "-m", "app.cli", "flow", "run", "data", "--config", str(cfg)],
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
