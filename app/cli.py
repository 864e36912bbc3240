"""``correlearn``: run a stage or a flow, list and inspect artifacts.

Contract (tests and the Makefile rely on it): with ``--json`` the last line printed is one JSON
object: ``{"stage", "key", "cache_hit", "path"}`` for a stage, ``{"flow", "stages": [...]}`` for a
flow (see :mod:`app.commands`). Expected failures print one ``error:`` line and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
import traceback

from app import commands

# Failures of input, state or environment: one ``error:`` line and exit code 2 (``-v`` adds the
# traceback). Matched by name so that the CLI need not import torch to catch CheckpointError.
EXPECTED_ERRORS = {
    "ConfigError",
    "ArtifactError",
    "TrackingError",
    "DataError",
    "CheckpointError",
    "BackboneLoadError",
}


_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)


def _expected(exc: BaseException) -> bool:
    if any(t.__name__ in EXPECTED_ERRORS for t in type(exc).__mro__):
        return True
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        return True  # disk full, or a read-only or unwritable workspace: the message names the file
    # Prefect's client when its API server is gone mid-run (the pre-flight check catches the rest).
    return isinstance(exc, RuntimeError) and "Failed to reach API" in str(exc)


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt("SIGTERM")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        where = exc.filename or os.environ.get("CORRELEARN_HOME", "the workspace")
        return f"{where}: {exc.strerror}"
    return str(exc)


def _add_stage_commands(sub: argparse._SubParsersAction) -> None:
    """``stage run`` and ``stage list``."""
    stage = sub.add_parser("stage", help="run or list stages").add_subparsers(
        dest="sub", required=True
    )
    sr = stage.add_parser("run", help="run one stage (its inputs from the cache or computed)")
    sr.add_argument("stage")
    sr.add_argument("--config", required=True)
    sr.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value")
    sr.add_argument("--section", help="config section to use (default: the stage's name)")
    sr.add_argument("--force", action="store_true", help="recompute even if cached")
    sr.add_argument(
        "--input", action="append", metavar="NAME=KEY", help="an input artifact (key or prefix)"
    )
    sr.add_argument("--json", action="store_true", help="end with one JSON line")
    sr.set_defaults(fn=commands.stage_run)
    stage.add_parser("list", help="list stages").set_defaults(fn=commands.stage_list)


def _add_flow_commands(sub: argparse._SubParsersAction) -> None:
    """``flow run``."""
    flow = sub.add_parser("flow", help="run a Prefect flow in-process").add_subparsers(
        dest="sub", required=True
    )
    fr = flow.add_parser("run")
    fr.add_argument("flow")
    fr.add_argument("--config", required=True)
    fr.add_argument("--set", action="append", metavar="KEY=VALUE")
    fr.add_argument("--force", nargs="+", metavar="STAGE", help="stages to recompute")
    fr.add_argument("--stop-after", metavar="STAGE", help="stop after this stage")
    fr.add_argument("--json", action="store_true")
    fr.add_argument(
        "--dask-workers",
        type=int,
        metavar="N",
        help="run tasks on a local Dask cluster of N workers",
    )
    fr.add_argument("--dask-address", metavar="TCP", help="run tasks on an existing Dask cluster")
    fr.add_argument(
        "--checkpoint",
        action="append",
        metavar="KEY",
        help="demo flow: also evaluate this checkpoint artifact (key or prefix) in its tables",
    )
    fr.set_defaults(fn=commands.flow_run)


def _add_artifact_commands(sub: argparse._SubParsersAction) -> None:
    """``artifacts list | show | verify``."""
    art = sub.add_parser("artifacts", help="inspect the artifact store").add_subparsers(
        dest="sub", required=True
    )
    al = art.add_parser("list")
    al.add_argument("--stage")
    al.set_defaults(fn=commands.artifacts_list)
    ash = art.add_parser("show")
    ash.add_argument("key", help="a key or a unique prefix of one")
    ash.set_defaults(fn=commands.artifacts_show)
    av = art.add_parser("verify", help="check files against their manifests (sizes, SHA-256)")
    av.add_argument("key", nargs="?", help="a key or unique prefix (default: every artifact)")
    av.set_defaults(fn=commands.artifacts_verify)


def _add_workspace_commands(sub: argparse._SubParsersAction) -> None:
    """``status`` and ``gc``."""
    st = sub.add_parser("status", help="artifacts per stage and the last flow runs")
    st.add_argument("--runs", type=int, default=10, metavar="N", help="flow runs to list")
    st.add_argument("--json", action="store_true")
    st.set_defaults(fn=commands.status)
    gc = sub.add_parser(
        "gc", help="remove artifacts no recent flow run used, stale partial folders and locks"
    )
    gc.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    gc.add_argument(
        "--keep-runs", type=int, default=10, metavar="N", help="flow runs whose artifacts stay"
    )
    gc.add_argument(
        "--stale-hours", type=float, default=24.0, help="age of removable partial folders/locks"
    )
    gc.add_argument("--json", action="store_true", help="end with one JSON line")
    gc.set_defaults(fn=commands.gc)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="correlearn", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of errors")
    sub = p.add_subparsers(dest="cmd", required=True)

    for add in (
        _add_stage_commands,
        _add_flow_commands,
        _add_artifact_commands,
        _add_workspace_commands,
    ):
        add(sub)
    from app.cli_checkpoints import add_commands

    add_commands(sub)  # import, export, eval
    from app.reproduce import add_command

    add_command(sub)  # reproduce
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``correlearn`` console script."""
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM outside the training loop (which checkpoints on it) ends like Ctrl-C: partial
        # folders kept, exit code 130, no traceback.
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.fn(args)
    except Exception as exc:
        if not _expected(exc):
            raise
        if args.verbose:
            traceback.print_exc()
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished artifacts are kept; re-run to continue", file=sys.stderr)
        if argv is None:  # the console script, not a caller that goes on running
            exit_within(SHUTDOWN_GRACE_S, 130)
        return 130


SHUTDOWN_GRACE_S = 30.0


def exit_within(seconds: float, code: int) -> None:
    """Make sure the process ends ``seconds`` from now even if a thread would keep it alive.

    After a signal, interpreter shutdown joins every non-daemon thread (a Prefect task runner's,
    a worker pool's) and can wait on one for minutes; checkpoints and artifacts are written
    atomically before this point, so ending the process then loses nothing.
    """

    def force() -> None:
        sys.stderr.flush()
        os._exit(code)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.start()


if __name__ == "__main__":
    sys.exit(main())
