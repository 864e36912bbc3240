"""The MLflow UI (`make ui`) opens the correlearn experiment on its runs, in headless Chromium."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from correlearn.tracking import Tracker, experiment_url
from correlearn.workspace import get_workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bin"))
from check_report import FLAGS, find_browser  # noqa: E402

pytestmark = pytest.mark.timeout(240)

RUN_NAME = "pretrain_byol-ui-check"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base: str, proc: subprocess.Popen, log: Path, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"mlflow ui exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow ui did not answer within {deadline_s:.0f} s: {log.read_text()[-2000:]}")


@pytest.fixture
def mlflow_ui(tmp_path, monkeypatch):
    """``mlflow ui`` as ``make ui`` starts it, on a free port, over a store with one run.

    Yields:
        (the UI's base URL, the correlearn experiment's id).
    """
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ws = get_workspace(tmp_path / "home")
    tracker = Tracker(ws)  # creates the correlearn experiment, as any flow does
    run = tracker.start(RUN_NAME)
    tracker.log_metrics(run, {"jf_mean": 0.41}, step=1)
    tracker.end(run)
    port = _free_port()
    log = tmp_path / "mlflow-ui.log"
    cmd = [
        *(sys.executable, "-m", "mlflow", "ui", "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", "1", "--backend-store-uri", ws.local_tracking_uri),
        *("--default-artifact-root", str(ws.mlflow_artifacts)),
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log, "w") as out:
        # Its own process group: the server's uvicorn workers end with it.
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, proc, log, deadline_s=120)
        yield base, tracker.experiment_id
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)


def _dom(browser: str, url: str) -> str:
    """The page's DOM once the app has loaded (virtual time lets its API calls finish)."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                *(browser, *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,900"),
                *("--virtual-time-budget=15000", "--dump-dom", url),
            ],
            capture_output=True,
            text=True,
            timeout=90,
        ).stdout


@pytest.mark.skipif(find_browser() is None, reason="no Chromium (apt-get install chromium)")
def test_the_experiment_opens_on_its_runs_table(mlflow_ui):
    base, experiment_id = mlflow_ui
    url = experiment_url(base, experiment_id)  # the link `make ui` prints
    for _ in range(3):  # a busy machine can still be loading the app's data after the budget
        dom = _dom(find_browser(), url)
        if RUN_NAME in dom:
            break
    # The GenAI layout shows an empty traces overview ("No data available") and no run.
    shows_run, genai_overview = RUN_NAME in dom, "No data available" in dom
    assert shows_run and not genai_overview, f"{url}: no runs table ({len(dom)} chars of DOM)"
