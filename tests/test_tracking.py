"""Tracker faults (issue 11): a fresh workspace opened by two processes at once (item 5), and runs
whose process was killed with -9 (item 11)."""

import fcntl
import multiprocessing as mp
import socket
import subprocess
import threading
import time

from correlearn.tracking import Tracker
from correlearn.workspace import get_workspace

PID_TAG, HOST_TAG = "correlearn.pid", "correlearn.host"  # the tags a run names its process by


def _open_tracker(home: str, out) -> None:
    try:
        out.put(Tracker(get_workspace(home)).experiment_id)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out.put(f"{type(exc).__name__}: {exc}")


def test_tracker_waits_for_the_workspace_lock(tmp_path):
    ws = get_workspace(tmp_path / "home")
    ws.mlflow_artifacts.mkdir(parents=True)
    Tracker(ws)  # schema and experiment exist: a second tracker alone would open in well under 1 s
    done = {}

    def open_one():
        tracker = Tracker(ws)
        done["at"], done["tracker"] = time.monotonic(), tracker

    with open(ws.home / ".mlflow.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # another process is creating the schema
        t = threading.Thread(target=open_one)
        t.start()
        time.sleep(2.0)
        released = time.monotonic()
    t.join(120)
    assert done["at"] >= released and done["tracker"].experiment_id


def test_two_processes_open_a_fresh_workspace_at_once(tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_open_tracker, args=(str(tmp_path / "h"), out)) for _ in range(2)]
    for p in procs:
        p.start()
    ids = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(60)
    assert ids[0] == ids[1] and ids[0].isdigit(), ids


def test_runs_of_dead_processes_are_marked_killed_and_can_resume(tmp_path):
    ws = get_workspace(tmp_path / "home")
    ws.mlflow_artifacts.mkdir(parents=True)
    tracker = Tracker(ws)
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tracker.start("pretrain_byol")
    tracker.set_tags(dead, {PID_TAG: str(gone.pid), HOST_TAG: socket.gethostname()})
    alive = tracker.start("pretrain_cim")  # this process: still running
    elsewhere = tracker.start("pretrain_vfs")
    tracker.set_tags(elsewhere, {PID_TAG: str(gone.pid), HOST_TAG: "another-host"})

    again = Tracker(ws)  # the next start in this workspace
    status = {r: again.client.get_run(r).info.status for r in (dead, alive, elsewhere)}
    assert status == {dead: "KILLED", alive: "RUNNING", elsewhere: "RUNNING"}
    assert again.start("pretrain_byol", resume_run_id=dead) == dead
    assert again.client.get_run(dead).info.status == "RUNNING"


KIND = "mlflow.experimentKind"  # the experiment tag MLflow 3's UI reads for an experiment's layout


def test_the_experiment_is_created_and_kept_marked_as_model_training(tmp_path, monkeypatch):
    import mlflow

    from correlearn.tracking import experiment_kind_tags

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert experiment_kind_tags({}) == {KIND: "custom_model_development"}
    assert experiment_kind_tags({KIND: "genai_development"}) == {}

    fresh = Tracker(get_workspace(tmp_path / "fresh"))
    tags = fresh.client.get_experiment(fresh.experiment_id).tags
    assert tags[KIND] == "custom_model_development"

    # A workspace from before the tag: its experiment is marked when a tracker next opens it.
    ws = get_workspace(tmp_path / "old")
    old = mlflow.MlflowClient(tracking_uri=ws.tracking_uri).create_experiment("correlearn")
    assert KIND not in mlflow.MlflowClient(ws.tracking_uri).get_experiment(old).tags
    tracker = Tracker(ws)
    assert tracker.experiment_id == old
    assert tracker.client.get_experiment(old).tags[KIND] == "custom_model_development"

    # A kind someone chose is theirs: a tracker starting leaves it alone.
    tracker.client.set_experiment_tag(old, KIND, "genai_development")
    assert Tracker(ws).client.get_experiment(old).tags[KIND] == "genai_development"


def test_links_open_the_ui_in_its_machine_learning_layout(tmp_path, monkeypatch):
    from correlearn.tracking import experiment_url, local_ui_link, run_url

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CORRELEARN_MLFLOW_UI", raising=False)
    url = experiment_url("http://h:5000/", "7")
    assert url == "http://h:5000/#/experiments/7?workflowType=machine_learning"
    tracker = Tracker(get_workspace(tmp_path / "home"))
    eid = tracker.experiment_id
    assert run_url(tracker, "r1") == (
        f"http://127.0.0.1:5000/#/experiments/{eid}/runs/r1?workflowType=machine_learning"
    )
    # `make ui`'s link: the local store's experiment, even with a tracking server configured.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert local_ui_link(tmp_path / "home") == experiment_url("http://127.0.0.1:5000", eid)
