"""MLflow tracking: one run per flow, one nested run per stage.

The explicit :class:`mlflow.MlflowClient` API is used instead of the fluent one because Prefect runs
tasks in worker threads, and the fluent API keeps its active run in thread-local state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from correlearn.workspace import Workspace

if TYPE_CHECKING:
    from mlflow.entities import Experiment

EXPERIMENT = "correlearn"
_MAX_PARAM = 6000

# MLflow 3's UI lays an experiment out by its kind, read from this tag (the UI's kind selector
# writes it, and MLflow sets it to "genai_development" on its own GenAI demo). Untagged, the UI
# guesses, and an experiment without traces can open on the empty GenAI "Traces" overview.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # shown as "Machine learning": runs, metrics, charts
# Newer MLflow 3 UIs (3.17, for one) ignore that tag and lay every experiment out by the sidebar's
# "GenAI / Machine learning" switch, GenAI unless the browser remembers otherwise; this query
# parameter picks "Machine learning" for the page a link opens, so correlearn's links carry it.
UI_QUERY = "workflowType=machine_learning"
LOCAL_UI = "http://127.0.0.1:5000"  # where `make ui` serves the local store


class TrackingError(RuntimeError):
    """The tracking server is unreachable or refused a call."""


PID_TAG, HOST_TAG, BOOT_TAG = "correlearn.pid", "correlearn.host", "correlearn.pid_start"


def _pid_start(pid: int) -> str:
    # Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22): a reused
    # pid has a different one. Empty where /proc is missing.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def process_tags() -> dict[str, str]:
    """Tags naming the process that owns a run (host, pid, pid start time)."""
    pid = os.getpid()
    return {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), BOOT_TAG: _pid_start(pid)}


def process_alive(pid: str | None, started: str | None) -> bool:
    """Whether the process of a run's tags still exists (same pid and start time)."""
    try:
        os.kill(int(pid or ""), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True  # another user's process, or no pid recorded: leave it alone
    return not started or _pid_start(int(pid)) in ("", started)


@contextlib.contextmanager
def _workspace_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a nested config to dotted keys; lists and other leaves become JSON strings."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            text = v if isinstance(v, str) else json.dumps(v, default=str)
            out[key] = text[:_MAX_PARAM]
    return out


def _check_health(name: str, url: str, hint: str, timeout_s: float) -> None:
    """Raise :class:`TrackingError` unless ``<url>/health`` answers 200 within ``timeout_s``."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout_s) as r:
            if r.status != 200:
                raise TrackingError(f"{name}={url}: /health answered {r.status}")
    except (urllib.error.URLError, OSError) as exc:
        raise TrackingError(f"{name}={url} does not answer ({exc}); {hint}") from None


def check_server(uri: str, timeout_s: float = 5.0) -> None:
    """Fail before any work starts when an HTTP tracking server does not answer."""
    if uri.startswith(("http://", "https://")):
        hint = "start it (make server) or unset MLFLOW_TRACKING_URI to track in the local store"
        _check_health("MLFLOW_TRACKING_URI", uri, hint, timeout_s)


def check_prefect_api(timeout_s: float = 5.0) -> None:
    """Fail before any work when ``PREFECT_API_URL`` names a Prefect server that does not answer.

    Without it Prefect would start the flow, then fail with "Failed to reach API" and a traceback.
    """
    url = os.environ.get("PREFECT_API_URL", "")
    if url:
        hint = "start it (make server) or unset PREFECT_API_URL to run flows in-process"
        _check_health("PREFECT_API_URL", url, hint, timeout_s)


def experiment_kind_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The kind tag to add to an experiment that has ``tags``.

    A kind already set is kept, whatever it is: someone chose it (in the UI's kind selector or with
    ``set_experiment_tag``), and a tracker starting must not undo that choice.

    Args:
        tags: The experiment's current tags (empty for a new experiment).

    Returns:
        ``{EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}`` when no kind is set, else an empty dict.
    """
    return {} if tags.get(EXPERIMENT_KIND_TAG) else {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}


class Tracker:
    """A thin layer over :class:`mlflow.MlflowClient` bound to the workspace's experiment."""

    def __init__(self, ws: Workspace, uri: str | None = None):
        """Open (creating where needed) the workspace's store and its ``correlearn`` experiment.

        Args:
            ws: The workspace.
            uri: The tracking URI (default: :attr:`Workspace.tracking_uri`).
        """
        import logging

        import mlflow  # Heavy import, kept out of module import time for the CLI's --help.

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)

        self.uri = uri or ws.tracking_uri
        check_server(self.uri)
        if ws.read_only:
            self._open_read_only(ws)
            return
        # Two processes starting at once in a fresh workspace race on the SQLite schema
        # ("table ... already exists") and on the experiment: the first creates both while the
        # other waits on this lock, then finds them.
        with _workspace_lock(ws.home / ".mlflow.lock"):
            self.client = mlflow.MlflowClient(tracking_uri=self.uri)
            self.experiment_id = self._experiment(ws)
            self.reap_dead_runs()

    def _open_read_only(self, ws: Workspace) -> None:
        """A workspace on a read-only medium: reading commands work, nothing is written."""
        import mlflow

        self.client = mlflow.MlflowClient(tracking_uri=self.uri)
        try:
            exp = self.client.get_experiment_by_name(EXPERIMENT)
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy's errors on a read-only database
            msg = f"{ws.home}: read-only, and its MLflow store cannot be read ({exc})"
            raise TrackingError(msg) from None
        self.experiment_id = exp.experiment_id if exp is not None else None

    def _experiment(self, ws: Workspace) -> str:
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        if exp is not None:
            return self._mark_kind(exp)
        # The local store sets its artifact location explicitly so artifacts land in the
        # workspace, not in whatever the current directory is.
        location = None if self.uri.startswith("http") else ws.mlflow_artifacts.as_uri()
        try:
            return self.client.create_experiment(
                EXPERIMENT, artifact_location=location, tags=experiment_kind_tags({})
            )
        except Exception:  # another client (on a server: another machine) created it first
            exp = self.client.get_experiment_by_name(EXPERIMENT)
            if exp is None:
                raise
            return self._mark_kind(exp)

    def _mark_kind(self, exp: Experiment) -> str:
        """Tag an experiment created before the kind tag (or by another tool); returns its id."""
        for key, value in experiment_kind_tags(exp.tags).items():
            try:
                self.client.set_experiment_tag(exp.experiment_id, key, value)
            except Exception as exc:  # noqa: BLE001 - e.g. a server user who may only log runs
                # The tag only chooses the UI's layout: not worth failing a run over.
                logging.getLogger(__name__).warning(
                    "could not tag experiment %s: %s", EXPERIMENT, exc
                )
        return exp.experiment_id

    def reap_dead_runs(self) -> list[str]:
        """Mark KILLED the RUNNING runs started on this host by a process that no longer exists.

        A run killed with -9 cannot end itself; left RUNNING it would also keep ``gc``'s "still
        running" protection forever. A resumable stage still continues in its old run
        (:meth:`start` with ``resume_run_id`` sets it RUNNING again).

        Returns:
            The run ids marked KILLED.
        """
        host = socket.gethostname()
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and tags.`{PID_TAG}` LIKE '%'",
            max_results=1000,
        )
        killed = []
        for r in runs:
            tags = r.data.tags
            if tags.get(HOST_TAG) != host or process_alive(tags.get(PID_TAG), tags.get(BOOT_TAG)):
                continue
            self.client.set_terminated(r.info.run_id, status="KILLED")
            killed.append(r.info.run_id)
        return killed

    def start(
        self,
        name: str,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        resume_run_id: str | None = None,
    ) -> str:
        """Create a run (nested under ``parent_run_id``) or reopen ``resume_run_id``."""
        owner = process_tags()
        if resume_run_id:
            try:
                self.client.update_run(resume_run_id, status="RUNNING")
                self.set_tags(resume_run_id, owner)
                return resume_run_id
            except Exception:  # noqa: BLE001 - a deleted run: start a fresh one
                pass
        all_tags = {"mlflow.runName": name, **(tags or {}), **owner}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, tags=all_tags, run_name=name)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Log a (nested) config as flattened params; re-logging an unchanged value is allowed."""
        from mlflow.entities import Param

        flat = flatten(params)
        existing = self.client.get_run(run_id).data.params
        items = [Param(k, v) for k, v in flat.items() if k not in existing]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
        """Log numeric metrics at a step (non-numbers are skipped)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, int(step or 0))
            for k, v in metrics.items()
            if isinstance(v, int | float) and v == v  # v == v drops NaN
        ]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        """Set string tags."""
        for k, v in tags.items():
            self.client.set_tag(run_id, k, str(v))

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload one file or folder to the run's artifacts."""
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_path)
        elif path.exists():
            self.client.log_artifact(run_id, str(path), artifact_path)

    def end(self, run_id: str, ok: bool = True) -> None:
        """Mark the run FINISHED or FAILED.

        A store error is raised to the caller, which reports it in one line (a failed run's own
        error comes first); MLflow's store logger would print it again as a traceback, so it is
        muted for this call.
        """
        store_log = logging.getLogger("mlflow.store.db.utils")
        level = store_log.level
        store_log.setLevel(logging.CRITICAL)
        try:
            self.client.set_terminated(run_id, status="FINISHED" if ok else "FAILED")
        finally:
            store_log.setLevel(level)


def ui_base(uri: str) -> str:
    """The MLflow UI of a tracking URI: the server itself, or ``make ui`` for the local store.

    ``CORRELEARN_MLFLOW_UI`` overrides it (a proxy, another port).
    """
    base = uri if uri.startswith("http") else LOCAL_UI
    return os.environ.get("CORRELEARN_MLFLOW_UI", base).rstrip("/")


def experiment_url(base: str, experiment_id: str) -> str:
    """A link to an experiment's page in the MLflow UI at ``base``, opening on its runs table."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}?{UI_QUERY}"


def run_url(tracker: Tracker, run_id: str) -> str:
    """A link to a run in the MLflow UI (for a server URI) or the local store's UI (``make ui``)."""
    base = ui_base(tracker.uri)
    return f"{base}/#/experiments/{tracker.experiment_id}/runs/{run_id}?{UI_QUERY}"


def local_ui_link(home: str | Path | None = None) -> str:
    """The local store's ``correlearn`` experiment in ``make ui``, tagged with its kind first.

    Opening a :class:`Tracker` on the local store creates the experiment with the kind tag, or adds
    the tag to an older experiment, before the UI first shows it.

    Args:
        home: The workspace (default: ``CORRELEARN_HOME``, else ``./.correlearn``).

    Returns:
        The link :func:`experiment_url` gives for the experiment; the UI's home page where a
        read-only workspace has none.
    """
    from correlearn.workspace import get_workspace

    ws = get_workspace(home)
    tracker = Tracker(ws, uri=ws.local_tracking_uri)
    base = os.environ.get("CORRELEARN_MLFLOW_UI", LOCAL_UI).rstrip("/")
    return experiment_url(base, tracker.experiment_id) if tracker.experiment_id else base
