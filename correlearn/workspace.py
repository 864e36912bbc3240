"""The workspace: one folder (``CORRELEARN_HOME``) for artifacts, the MLflow store and Prefect's home.

``CORRELEARN_HOME`` defaults to ``./.correlearn`` (git-ignored). Inside it:

- ``artifacts/``: the artifact store (:mod:`correlearn.artifacts`);
- ``mlflow.db`` and ``mlartifacts/``: the local MLflow tracking store, used unless
  ``MLFLOW_TRACKING_URI`` names a server;
- ``prefect/``: ``PREFECT_HOME`` (Prefect's SQLite database for ephemeral runs), analytics off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from correlearn.config import ConfigError


@dataclass(frozen=True)
class Workspace:
    """Resolved workspace paths."""

    home: Path

    @property
    def read_only(self) -> bool:
        """Whether the workspace exists but cannot be written (a read-only medium or folder)."""
        return self.home.is_dir() and not os.access(self.home, os.W_OK)

    @property
    def artifacts(self) -> Path:
        """Root of the artifact store."""
        return self.home / "artifacts"

    @property
    def mlflow_db(self) -> Path:
        """SQLite file of the local MLflow store."""
        return self.home / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        """Where MLflow stores run artifacts when tracking locally."""
        return self.home / "mlartifacts"

    @property
    def prefect_home(self) -> Path:
        """``PREFECT_HOME``."""
        return self.home / "prefect"

    @property
    def local_tracking_uri(self) -> str:
        """The SQLite tracking URI of the local store."""
        return f"sqlite:///{self.mlflow_db}"

    @property
    def tracking_uri(self) -> str:
        """``MLFLOW_TRACKING_URI`` when set (a server), else the local SQLite store."""
        return os.environ.get("MLFLOW_TRACKING_URI") or self.local_tracking_uri


def get_workspace(home: str | Path | None = None) -> Workspace:
    """Resolve ``CORRELEARN_HOME`` (argument, then environment, then ``./.correlearn``)."""
    home = Path(home or os.environ.get("CORRELEARN_HOME") or ".correlearn").expanduser().resolve()
    return Workspace(home)


def activate(home: str | Path | None = None) -> Workspace:
    """Create the workspace folders and point Prefect at them; call before Prefect is imported.

    Prefect reads its settings from the environment, so ``PREFECT_HOME`` and the analytics switch are
    set here unless the user set them. MLflow's URI is not exported: :mod:`correlearn.tracking` reads
    :attr:`Workspace.tracking_uri` explicitly, so a user's ``MLFLOW_TRACKING_URI`` always wins.
    """
    ws = get_workspace(home)
    if ws.home.exists() and not ws.home.is_dir():
        raise ConfigError(f"CORRELEARN_HOME={ws.home}: not a folder")
    for p in (ws.home, ws.artifacts, ws.mlflow_artifacts, ws.prefect_home):
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if ws.read_only:
                break  # a read-only workspace: reading commands work, writing ones fail later
            raise ConfigError(
                f"CORRELEARN_HOME={ws.home}: cannot create {p}: {exc.strerror}"
            ) from None
    os.environ["CORRELEARN_HOME"] = str(ws.home)
    os.environ.setdefault("PREFECT_HOME", str(ws.prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # The ephemeral API server starts in a subprocess; on a busy 2-core machine the default 20 s
    # is not always enough.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    return ws
