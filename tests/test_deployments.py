"""`make server` end to end on free ports: Prefect server + process worker + MLflow server.

Registers the `data/demo` deployment of prefect.yaml, runs it with a tiny config (two DAVIS
sequences, 64 px), waits for Completed, checks the MLflow server holds one parent run (tag flow=data)
with the stages nested under it and the run's report, then stops everything it started.
About 60-90 s here (Prefect server start ~10-20 s, flow-run process start ~10 s).
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVER = [sys.executable, str(REPO / "bin" / "server.py")]

pytestmark = pytest.mark.timeout(480)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_config(tmp: Path, make_davis) -> Path:
    root = make_davis(tmp / "davis", n=10)
    cfg = tmp / "tiny.yaml"
    cfg.write_text(
        f"datasets:\n  d: {{root: {root}, layout: davis}}\n"
        "image_shards: {dataset: d, max_short_side: 64, frame_step: 4}\n"
        "video_shards: {dataset: d, max_short_side: 64}\n"
    )
    return cfg


def _mlflow(base: str, endpoint: str, body: dict | None = None) -> dict:
    url = f"{base}/api/2.0/mlflow/{endpoint}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _pid_alive(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def test_server_worker_deployment_run_logs_to_mlflow(tmp_path, make_davis):
    cfg = _tiny_config(tmp_path, make_davis)
    home = tmp_path / "home"
    pport, mport = _free_port(), _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_TRACKING")) and k != "CORRELEARN_HOME"
    }
    env.update(
        CORRELEARN_HOME=str(home),
        PREFECT_PORT=str(pport),
        MLFLOW_PORT=str(mport),
        PREFECT_UI_ENABLED="false",  # no UI build at start: faster, and the test needs only the API
    )
    cli_env = {
        **env,
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{pport}/api",
    }
    mlflow = f"http://127.0.0.1:{mport}"
    pids: dict[str, int] = {}
    t0 = time.monotonic()
    try:
        start = subprocess.run(
            [*SERVER, "start", "--deploy", "data/demo", "--timeout", "240"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=400,
        )
        for name in ("prefect-server", "prefect-worker", "mlflow"):
            pid_file = home / "run" / f"{name}.pid"
            if pid_file.exists():
                pids[name] = int(pid_file.read_text())
        assert start.returncode == 0, start.stdout + start.stderr
        assert f"http://127.0.0.1:{pport}" in start.stdout and mlflow in start.stdout
        assert set(pids) == {"prefect-server", "prefect-worker", "mlflow"}
        up = time.monotonic() - t0

        run = subprocess.run(
            [sys.executable, "-m", "prefect", "deployment", "run", "data/demo"]
            + ["--param", f"config={json.dumps(str(cfg))}", "--watch", "--watch-timeout", "240"],
            env=cli_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        logs = (home / "run" / "prefect-worker.log").read_text(errors="replace")[-4000:]
        assert run.returncode == 0, run.stdout + run.stderr + logs
        assert "Completed" in run.stdout

        exp = _mlflow(mlflow, "experiments/get-by-name?experiment_name=correlearn")
        runs = _mlflow(
            mlflow,
            "runs/search",
            {"experiment_ids": [exp["experiment"]["experiment_id"]], "max_results": 100},
        )["runs"]
        tags = {
            r["info"]["run_id"]: {t["key"]: t["value"] for t in r["data"]["tags"]} for r in runs
        }
        parents = [rid for rid, t in tags.items() if t.get("flow") == "data"]
        assert len(parents) == 1, tags
        parent = parents[0]
        children = {t.get("stage") for t in tags.values() if t.get("mlflow.parentRunId") == parent}
        assert {"image_shards", "video_shards", "frame_index"} <= children
        status = next(r["info"]["status"] for r in runs if r["info"]["run_id"] == parent)
        assert status == "FINISHED"
        files = _mlflow(mlflow, f"artifacts/list?run_id={parent}").get("files", [])
        assert {"report.html", "flow_result.json"} <= {f["path"] for f in files}
        assert (home / "reports" / "latest-data.html").is_file()
        # The Prefect flow run links the report (markdown artifact).
        req = urllib.request.Request(
            f"http://127.0.0.1:{pport}/api/artifacts/filter",
            data=json.dumps({"artifacts": {"key": {"any_": ["report-data"]}}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            arts = json.loads(r.read())
        assert arts and "latest-data.html" not in arts[0]["data"] and ".html" in arts[0]["data"]
        print(f"services up in {up:.0f} s; total {time.monotonic() - t0:.0f} s")
    finally:
        stop = subprocess.run(
            [*SERVER, "stop"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
        )
        time.sleep(0.5)
        left = {name: pid for name, pid in pids.items() if _pid_alive(pid)}
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not left, f"still running after stop: {left}"
        assert not list((home / "run").glob("*.pid"))
