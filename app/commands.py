"""The ``correlearn`` commands that run stages and flows and inspect the workspace.

Each takes the parsed arguments and returns the exit code; :mod:`app.cli` builds the parser and
turns expected failures into one ``error:`` line. With ``--json`` the last line printed is one JSON
object: the stage's :class:`~correlearn.records.StageRun` (``{"stage", "key", "cache_hit",
"path", ...}``) or the flow's :class:`~correlearn.records.FlowRun` (``{"flow", "stages": [...]}``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from correlearn.artifacts import ArtifactStore
from correlearn.config import ConfigError
from correlearn.tracking import check_prefect_api, check_server
from correlearn.workspace import activate


def method_flow_names() -> set[str]:
    """The flows with a ``map_shards`` parameter: one per registered method (flows.method_flow)."""
    from correlearn.pretrain import METHODS  # here, so --help imports neither torch nor a flow

    return set(METHODS)


def stage_run(args: argparse.Namespace) -> int:
    """``correlearn stage run STAGE``: one stage through the cache (inputs computed or given)."""
    from app.registry import stage_registry
    from correlearn.pipeline import Pipeline
    from correlearn.tracking import Tracker

    ws = activate()
    check_server(ws.tracking_uri)  # a configured server that does not answer: fail before any work
    pipe = Pipeline(args.config, stage_registry(), ws, args.set)
    pipe.section(args.stage, args.section)  # a bad config fails before any work or tracking
    pipe.tracker = Tracker(ws)
    from correlearn.inputs import parse_inputs, resolve_inputs

    inputs = resolve_inputs(pipe.store, pipe.spec(args.stage), parse_inputs(args.input))
    res = pipe.run_stage(args.stage, inputs=inputs, section=args.section, force=args.force)
    if args.json:
        print(json.dumps({**res.ref.to_dict(), "cache_hit": res.cache_hit}))
    return 0


def flow_run(args: argparse.Namespace) -> int:
    """``correlearn flow run FLOW``: a Prefect flow in this process (optionally on Dask)."""
    ws = activate()  # Before Prefect is imported: it reads PREFECT_HOME at import.
    check_server(ws.tracking_uri)  # before Prefect's (slow) start: fail fast on a dead server
    check_prefect_api()  # likewise for a PREFECT_API_URL that does not answer
    from app.registry import flow_registry

    flows = flow_registry()
    if args.flow not in flows:
        raise ConfigError(f"unknown flow {args.flow!r}; known: {sorted(flows)}")
    flow_fn = flows[args.flow]
    kwargs = {}
    if args.dask_workers or args.dask_address:
        from app.dask import with_dask

        flow_fn = with_dask(flow_fn, args.dask_workers or 2, args.dask_address)
        if args.flow in method_flow_names():
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


def stage_list(args: argparse.Namespace) -> int:
    """``correlearn stage list``: every stage with its version, inputs and description."""
    from app.registry import stage_registry

    for name, spec in sorted(stage_registry().items()):
        ins = ", ".join(f"{k}<-{v}" for k, v in spec.inputs.items()) or "-"
        print(f"{name:26s} v{spec.version}  inputs: {ins:40s} {spec.description}")
    return 0


def artifacts_list(args: argparse.Namespace) -> int:
    """``correlearn artifacts list``: finished artifacts, newest first."""
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


def artifacts_show(args: argparse.Namespace) -> int:
    """``correlearn artifacts show KEY``: an artifact's manifest and its inputs."""
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


def artifacts_verify(args: argparse.Namespace) -> int:
    """``correlearn artifacts verify [KEY]``: files against manifests; exit 2 if corrupt."""
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


def status(args: argparse.Namespace) -> int:
    """``correlearn status``: artifacts per stage and the last flow runs."""
    from correlearn.tracking import Tracker, TrackingError
    from correlearn.workspace_status import artifact_stats, flow_runs, human_bytes

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


def gc(args: argparse.Namespace) -> int:
    """``correlearn gc``: remove what no recent flow run used, stale partial folders and locks."""
    from correlearn.gc import plan_gc, run_gc
    from correlearn.tracking import Tracker
    from correlearn.workspace_status import human_bytes

    ws = activate()
    store = ArtifactStore(ws.artifacts)
    plan = plan_gc(store, Tracker(ws), args.keep_runs, args.stale_hours)
    verb = "would remove" if args.dry_run else "removed"
    removed = set() if args.dry_run else set(run_gc(store, plan))
    held = []
    for a in plan.artifacts:
        ref = f"{a['stage']}/{a['key']}"
        gone = args.dry_run or ref in removed
        held += [] if gone else [a]
        note = "" if gone else "  (kept: in use by a running stage)"
        print(f"{verb if gone else 'kept'} {ref}  {human_bytes(a['bytes'])}{note}")
    for s in plan.stale:
        print(f"{verb} stale {s['kind']} {s['path']}  ({s['age_hours']} h old)")
    freed = plan.bytes - sum(a["bytes"] for a in held)
    in_use = f", {len(held)} in use by a running stage" if held else ""
    print(
        f"{len(plan.artifacts) - len(held)} artifact(s) and {len(plan.stale)} stale item(s), "
        f"{human_bytes(freed)}; {plan.kept + len(held)} artifact(s) kept (referenced by the last "
        f"{len(plan.runs)} flow run(s){in_use})"
    )
    if plan.note:
        print(f"note: {plan.note}")
    if args.json:
        print(json.dumps({**plan.to_dict(), "dry_run": args.dry_run}))
    return 0
