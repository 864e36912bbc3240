#!/usr/bin/env python3
"""Start and stop the local services of ``make server`` / ``make stop``.

``start`` launches, on 127.0.0.1 and with all state under ``CORRELEARN_HOME``:

- a Prefect server (``PREFECT_HOME=$CORRELEARN_HOME/prefect``, SQLite ``prefect/server.db``,
  analytics off) on ``PREFECT_PORT`` (default 4200);
- an MLflow tracking server (one worker, SQLite ``mlflow.db``, artifacts in ``mlartifacts/``, job
  execution off) on ``MLFLOW_PORT`` (default 5000);
- a Prefect worker of the process work pool ``correlearn`` (polling every 2 s) whose flow runs see
  ``MLFLOW_TRACKING_URI``, ``CORRELEARN_HOME`` and ``CORRELEARN_REPO``;

then registers the deployments of ``prefect.yaml`` (all of them, or those named with ``--deploy``),
writes ``run/<service>.pid`` (each service leads its own process group) and ``run/env`` (the exports a
shell needs), and prints the URLs. ``stop`` ends exactly the process groups named in those PID files.
Logs: ``run/<service>.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
POOL = "correlearn"  # the work pool named in prefect.yaml
SERVICES = ("prefect-worker", "prefect-server", "mlflow")  # stop order
# A word each service's command line holds: a PID file is only acted on when the process it names
# still runs that command (PIDs are reused).
MARKERS = {
    "prefect-server": "prefect server",
    "prefect-worker": "prefect worker",
    "mlflow": "mlflow server",
}


def _home() -> Path:
    home = os.environ.get("CORRELEARN_HOME") or str(REPO / ".correlearn")
    return Path(home).expanduser().resolve()


def _ports() -> tuple[int, int]:
    return int(os.environ.get("PREFECT_PORT", "4200")), int(os.environ.get("MLFLOW_PORT", "5000"))


def urls() -> dict[str, str]:
    """The Prefect API, Prefect UI and MLflow URLs for the configured ports."""
    p, m = _ports()
    return {
        "prefect_api": f"http://{HOST}:{p}/api",
        "prefect_ui": f"http://{HOST}:{p}",
        "mlflow": f"http://{HOST}:{m}",
    }


def _run_dir(home: Path) -> Path:
    return home / "run"


def _env(home: Path) -> dict[str, str]:
    """The environment of every service and of the flow runs the worker starts."""
    u = urls()
    prefect_home = home / "prefect"
    env = dict(os.environ)
    env.update(
        {
            "CORRELEARN_HOME": str(home),
            "CORRELEARN_REPO": str(REPO),
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_API_URL": u["prefect_api"],
            "MLFLOW_TRACKING_URI": u["mlflow"],
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "MLFLOW_ENABLE_TELEMETRY": "false",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # Its own database file: in-process (ephemeral) flow runs keep using prefect/prefect.db, and
    # two servers writing one SQLite file would lock each other out.
    env.setdefault(
        "PREFECT_API_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{prefect_home / 'server.db'}"
    )
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "2")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return env


def _commands(home: Path) -> dict[str, list[str]]:
    p, m = _ports()
    py = sys.executable
    return {
        "prefect-server": [
            py,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            HOST,
            "--port",
            str(p),
        ],
        "mlflow": [
            py,
            "-m",
            "mlflow",
            "server",
            "--host",
            HOST,
            "--port",
            str(m),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{home / 'mlflow.db'}",
            "--artifacts-destination",
            str(home / "mlartifacts"),
        ],
        "prefect-worker": [
            py,
            "-m",
            "prefect",
            "worker",
            "start",
            "--pool",
            POOL,
            "--type",
            "process",
            "--name",
            f"correlearn-{socket.gethostname()}",
        ],
    }


def _alive(pid: int, marker: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def _read_pid(run: Path, name: str) -> int | None:
    try:
        return int((run / f"{name}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running(home: Path | None = None) -> dict[str, int]:
    """Services whose PID file names a live process of that service: name -> PID."""
    run = _run_dir(home or _home())
    out = {}
    for name in SERVICES:
        pid = _read_pid(run, name)
        if pid is not None and _alive(pid, MARKERS[name]):
            out[name] = pid
    return out


def _spawn(name: str, cmd: list[str], env: dict[str, str], run: Path) -> subprocess.Popen:
    log = open(run / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: `stop` ends it and its children
    )
    (run / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def _get(url: str, timeout: float = 3.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _wait(
    checks: dict[str, str], procs: dict[str, subprocess.Popen], run: Path, timeout: float
) -> dict[str, float]:
    """Wait until every URL in ``checks`` (service -> URL) answers 200; seconds each took."""
    t0 = time.monotonic()
    pending = dict(checks)
    took = {}
    while pending:
        for name, url in list(pending.items()):
            if procs[name].poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {procs[name].returncode}; "
                    f"{run / (name + '.log')}:\n{_tail(run / (name + '.log'))}"
                )
            if _get(url) == 200:
                took[name] = time.monotonic() - t0
                del pending[name]
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(
                f"not up after {timeout:.0f} s: {sorted(pending)}; see the logs in {run}"
            )
        time.sleep(0.5)
    return took


def deploy(env: dict[str, str], names: list[str] | None, run: Path) -> None:
    """``prefect deploy`` from prefect.yaml: every deployment, or the named ``flow/deployment``s."""
    cmd = [sys.executable, "-m", "prefect", "--no-prompt", "deploy"]
    # `prefect deploy --name` matches FLOW by the entrypoint's function: data/demo -> data_flow/demo.
    names = [
        n if "/" not in n else n.split("/")[0] + "_flow/" + n.split("/")[1] for n in names or []
    ]
    cmd += [a for n in names for a in ("--name", n)] if names else ["--all"]
    with open(run / "deploy.log", "ab") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`{shlex.join(cmd[1:])}` failed ({proc.returncode}):\n{_tail(run / 'deploy.log')}"
        )


def start(deployments: list[str] | None = None, no_deploy: bool = False, timeout: float = 300.0):
    """Start the three services, register deployments, write PID files and ``run/env``."""
    home = _home()
    run = _run_dir(home)
    run.mkdir(parents=True, exist_ok=True)
    for sub in ("prefect", "mlartifacts", "artifacts"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    live = running(home)
    if live:
        raise RuntimeError(f"already running: {live} (PID files in {run}); `make stop` first")
    p, m = _ports()
    busy = [port for port in (p, m) if not _port_free(port)]
    if busy:
        raise RuntimeError(f"port(s) {busy} on {HOST} are taken; set PREFECT_PORT / MLFLOW_PORT")
    env = _env(home)
    cmds = _commands(home)
    u = urls()
    t0 = time.monotonic()
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["mlflow"] = _spawn("mlflow", cmds["mlflow"], env, run)
        procs["prefect-server"] = _spawn("prefect-server", cmds["prefect-server"], env, run)
        took = _wait(
            {"prefect-server": u["prefect_api"] + "/health", "mlflow": u["mlflow"] + "/health"},
            procs,
            run,
            timeout,
        )
        procs["prefect-worker"] = _spawn("prefect-worker", cmds["prefect-worker"], env, run)
        # The worker creates the pool (type process) when it does not exist yet.
        took.update(
            _wait({"prefect-worker": f"{u['prefect_api']}/work_pools/{POOL}"}, procs, run, timeout)
        )
        if not no_deploy:
            t = time.monotonic()
            deploy(env, deployments, run)
            took["deploy"] = time.monotonic() - t
    except BaseException:
        stop(quiet=True)
        raise
    exports = {
        "PREFECT_API_URL": u["prefect_api"],
        "MLFLOW_TRACKING_URI": u["mlflow"],
        "CORRELEARN_HOME": str(home),
    }
    (run / "env").write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items()))
    (run / "timings.json").write_text(json.dumps({k: round(v, 1) for k, v in took.items()}))
    print(f"Prefect UI   {u['prefect_ui']}   (API {u['prefect_api']})")
    print(f"MLflow UI    {u['mlflow']}")
    print(f"work pool    {POOL} (process), worker PID {procs['prefect-worker'].pid}")
    print(f"state        {home}   logs and PID files in {run}")
    print(
        f"up in {time.monotonic() - t0:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in took.items())})"
    )
    print(f"\n  source {run / 'env'}     # or: export PREFECT_API_URL={u['prefect_api']}")
    print("  prefect deployment run 'cim/demo' --watch")
    print("  make stop")


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def stop(quiet: bool = False, grace_s: float = 15.0) -> list[str]:
    """End the process group of each service whose PID file names a live process of it."""
    run = _run_dir(_home())
    stopped = []
    for name in SERVICES:
        pid = _read_pid(run, name)
        if pid is None:
            continue
        if _alive(pid, MARKERS[name]):
            _kill_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while _alive(pid, MARKERS[name]) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.2)
            # Also the group's other members (a flow run, uvicorn workers) that outlived SIGTERM.
            _kill_group(pid, signal.SIGKILL)
            _reap(pid)
            stopped.append(f"{name} ({pid})")
        (run / f"{name}.pid").unlink(missing_ok=True)
    (run / "env").unlink(missing_ok=True)
    if not quiet:
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return stopped


def _reap(pid: int) -> None:
    """Collect a child we started in this process (``start`` failing half-way), if it exited."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status() -> int:
    """Print which services run; 0 when all of them do."""
    live = running()
    for name in SERVICES:
        print(f"{name:15s} {'PID ' + str(live[name]) if name in live else 'not running'}")
    if live:
        for k, v in urls().items():
            print(f"{k:15s} {v}")
    return 0 if len(live) == len(SERVICES) else 1


def main(argv: list[str] | None = None) -> int:
    """``server.py start [--deploy FLOW/NAME ...] [--no-deploy] | stop | status``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start")
    st.add_argument("--deploy", nargs="+", metavar="FLOW/NAME", help="only these deployments")
    st.add_argument("--no-deploy", action="store_true", help="register no deployments")
    st.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each step")
    sub.add_parser("stop")
    sub.add_parser("status")
    args = ap.parse_args(argv)
    if args.cmd == "stop":
        stop()
        return 0
    if args.cmd == "status":
        return status()
    try:
        start(args.deploy, args.no_deploy, args.timeout)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
