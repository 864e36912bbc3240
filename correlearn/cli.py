"""``correlearn``: run a stage or a flow, list and inspect artifacts.

Contract (tests and the Makefile rely on it): with ``--json`` the last line printed is one JSON
object: ``{"stage", "key", "cache_hit", "path"}`` for a stage, ``{"flow", "stages": [...]}`` for a
flow.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from correlearn.artifacts import ArtifactStore
from correlearn.config import ConfigError
from correlearn.tracking import check_prefect_api, check_server
from correlearn.workspace import activate


def _stage_run(args: argparse.Namespace) -> int:
    from correlearn.pipeline import Pipeline
    from correlearn.registry import stage_registry
    from correlearn.tracking import Tracker

    ws = activate()
    check_server(ws.tracking_uri)  # a configured server that does not answer: fail before any work
    pipe = Pipeline(args.config, stage_registry(), ws, args.set)
    pipe.section(args.stage, args.section)  # a bad config fails before any work or tracking
    pipe.tracker = Tracker(ws)
    from correlearn.inputs import parse_inputs, resolve_inputs

    inputs = resolve_inputs(pipe.store, pipe.registry[args.stage], parse_inputs(args.input))
    res = pipe.run_stage(args.stage, inputs=inputs, section=args.section, force=args.force)
    if args.json:
        print(json.dumps({k: v for k, v in res.to_dict().items() if k != "forced"}))
    return 0


def _flow_run(args: argparse.Namespace) -> int:
    ws = activate()  # Before Prefect is imported: it reads PREFECT_HOME at import.
    check_server(ws.tracking_uri)  # before Prefect's (slow) start: fail fast on a dead server
    check_prefect_api()  # likewise for a PREFECT_API_URL that does not answer
    from correlearn.registry import flow_registry

    flows = flow_registry()
    if args.flow not in flows:
        raise ConfigError(f"unknown flow {args.flow!r}; known: {sorted(flows)}")
    flow_fn = flows[args.flow]
    kwargs = {}
    if args.dask_workers or args.dask_address:
        from flows.common import with_dask

        flow_fn = with_dask(flow_fn, args.dask_workers or 2, args.dask_address)
        if args.flow == "orl":
            kwargs["map_shards"] = True  # the per-shard tasks are what Dask spreads
    if args.checkpoint:
        if args.flow != "demo":
            raise ConfigError(
                f"--checkpoint: only the demo flow evaluates given checkpoints, not {args.flow!r}"
            )
        from correlearn.artifacts import ArtifactStore
        from correlearn.inputs import find_checkpoint

        store = ArtifactStore(ws.artifacts)  # unknown keys fail here, before Prefect starts
        kwargs["checkpoints"] = [find_checkpoint(store, k).key for k in args.checkpoint]
    out = flow_fn(
        config=str(Path(args.config).resolve()),
        overrides=args.set or [],
        force=args.force or [],
        stop_after=args.stop_after,
        **kwargs,
    )
    print(f"artifacts under {ws.artifacts}; browse runs with `make ui`", flush=True)
    if args.json:
        print(json.dumps(out))
    return 0


def _stage_list(args: argparse.Namespace) -> int:
    from correlearn.registry import stage_registry

    for name, spec in sorted(stage_registry().items()):
        ins = ", ".join(f"{k}<-{v}" for k, v in spec.inputs.items()) or "-"
        print(f"{name:26s} v{spec.version}  inputs: {ins:40s} {spec.description}")
    return 0


def _artifacts_list(args: argparse.Namespace) -> int:
    store = ArtifactStore(activate().artifacts)
    rows = store.list(args.stage)
    for m in rows:
        size = m.get("bytes", 0) / 2**20
        print(
            f"{m['stage']:24s} {m['key']}  {m.get('finished_at', ''):23s} "
            f"{size:8.1f} MiB  {m.get('seconds', 0):8.1f} s"
        )
    if not rows:
        print("no artifacts yet")
    return 0


def _artifacts_show(args: argparse.Namespace) -> int:
    store = ArtifactStore(activate().artifacts)
    stage, key = store.find(args.key)
    manifest = store.manifest(stage, key)
    print(json.dumps(manifest, indent=2, sort_keys=True))
    for name, inp in manifest.get("inputs", {}).items():
        m = (
            store.manifest(inp["stage"], inp["key"])
            if store.exists(inp["stage"], inp["key"])
            else {}
        )
        print(f"input {name}: {inp['stage']}/{inp['key']} ({m.get('finished_at', 'missing')})")
    return 0


def _artifacts_verify(args: argparse.Namespace) -> int:
    store = ArtifactStore(activate().artifacts)
    targets = [store.find(args.key)] if args.key else [(m["stage"], m["key"]) for m in store.list()]
    bad = 0
    for stage, key in targets:
        problems = store.verify(stage, key, content=True)
        bad += bool(problems)
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        if problems:
            print(f"error: {stage}/{key}: corrupt; recompute it with --force", file=sys.stderr)
    print(f"{len(targets) - bad} of {len(targets)} artifact(s) intact (sizes and SHA-256)")
    return 2 if bad else 0


def _status(args: argparse.Namespace) -> int:
    from correlearn.tracking import Tracker, TrackingError
    from correlearn.workspace_ops import artifact_stats, flow_runs, human_bytes

    ws = activate()
    rows = artifact_stats(ArtifactStore(ws.artifacts))
    runs: list[dict] = []
    error = None
    try:
        runs = flow_runs(Tracker(ws), args.runs)
    except TrackingError as exc:
        error = str(exc)
    if args.json:
        print(json.dumps({"home": str(ws.home), "stages": rows, "flow_runs": runs, "error": error}))
        return 0
    print(f"workspace {ws.home}")
    print(f"{'stage':26s} {'artifacts':>9s} {'size':>11s} {'partial':>8s}")
    for r in rows:
        part = f"{r['partial']} ({human_bytes(r['partial_bytes'])})" if r["partial"] else "-"
        print(f"{r['stage']:26s} {r['count']:9d} {human_bytes(r['bytes']):>11s} {part:>8s}")
    total = sum(r["bytes"] for r in rows)
    print(f"{'total':26s} {sum(r['count'] for r in rows):9d} {human_bytes(total):>11s}")
    print(f"\nlast flow runs ({ws.tracking_uri}):")
    if error:
        print(f"  unavailable: {error}")
    for r in runs:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["start_time"] / 1000))
        mins = f"{(r['end_time'] - r['start_time']) / 60000:6.1f} min" if r["end_time"] else ""
        print(
            f"  {r['flow']:10s} {r['status']:9s} {start}  {mins:>10s}  {r['config']}  {r['run_id']}"
        )
    if not runs and not error:
        print("  none yet")
    return 0


def _gc(args: argparse.Namespace) -> int:
    from correlearn.tracking import Tracker
    from correlearn.workspace_ops import human_bytes, plan_gc, run_gc

    ws = activate()
    store = ArtifactStore(ws.artifacts)
    plan = plan_gc(store, Tracker(ws), args.keep_runs, args.stale_hours)
    verb = "would remove" if args.dry_run else "removed"
    removed = set() if args.dry_run else set(run_gc(store, plan))
    for a in plan.artifacts:
        ref = f"{a['stage']}/{a['key']}"
        gone = args.dry_run or ref in removed
        note = "" if gone else "  (kept: in use by a running stage)"
        print(f"{verb if gone else 'kept'} {ref}  {human_bytes(a['bytes'])}{note}")
    for s in plan.stale:
        print(f"{verb} stale {s['kind']} {s['path']}  ({s['age_hours']} h old)")
    print(
        f"{len(plan.artifacts)} artifact(s) and {len(plan.stale)} stale item(s), "
        f"{human_bytes(plan.bytes)}; {plan.kept} artifact(s) kept, referenced by the last "
        f"{len(plan.runs)} flow run(s)"
    )
    if plan.note:
        print(f"note: {plan.note}")
    if args.json:
        print(json.dumps({**plan.to_dict(), "dry_run": args.dry_run}))
    return 0


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


def _expected(exc: BaseException) -> bool:
    if any(t.__name__ in EXPECTED_ERRORS for t in type(exc).__mro__):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True  # disk full: the message names the file
    # Prefect's client when its API server is gone mid-run (the pre-flight check catches the rest).
    return isinstance(exc, RuntimeError) and "Failed to reach API" in str(exc)


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt("SIGTERM")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = exc.filename or os.environ.get("CORRELEARN_HOME", "the workspace")
        return f"{where}: {exc.strerror}"
    return str(exc)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="correlearn", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of errors")
    sub = p.add_subparsers(dest="cmd", required=True)

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
    sr.set_defaults(fn=_stage_run)
    stage.add_parser("list", help="list stages").set_defaults(fn=_stage_list)

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
    fr.set_defaults(fn=_flow_run)

    art = sub.add_parser("artifacts", help="inspect the artifact store").add_subparsers(
        dest="sub", required=True
    )
    al = art.add_parser("list")
    al.add_argument("--stage")
    al.set_defaults(fn=_artifacts_list)
    ash = art.add_parser("show")
    ash.add_argument("key", help="a key or a unique prefix of one")
    ash.set_defaults(fn=_artifacts_show)
    av = art.add_parser("verify", help="check files against their manifests (sizes, SHA-256)")
    av.add_argument("key", nargs="?", help="a key or unique prefix (default: every artifact)")
    av.set_defaults(fn=_artifacts_verify)

    st = sub.add_parser("status", help="artifacts per stage and the last flow runs")
    st.add_argument("--runs", type=int, default=10, metavar="N", help="flow runs to list")
    st.add_argument("--json", action="store_true")
    st.set_defaults(fn=_status)
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
    gc.set_defaults(fn=_gc)
    from correlearn.cli_checkpoints import add_commands

    add_commands(sub)  # import, export, eval
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
        return 130


if __name__ == "__main__":
    sys.exit(main())
