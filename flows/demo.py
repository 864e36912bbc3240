"""Flow ``demo``: every method's flow at CPU budgets on the embedded data, then one table."""

from __future__ import annotations

from prefect import flow

from correlearn.demo_tables import closing_tables
from correlearn.records import FlowRun
from correlearn.workspace import activate
from flows.evaluation import evaluate_checkpoint
from flows.flow_session import flow_session
from flows.methods import METHOD_FLOWS
from flows.publish import publish_run


@flow(name="checkpoints")
def checkpoints_flow(
    config: str,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
    stop_after: str | None = None,
    keys: list[str] | None = None,
) -> dict:
    """Evaluate given checkpoint artifacts with the demo's protocol and baselines."""
    with flow_session("checkpoints", config, overrides or [], force or [], stop_after) as s:
        for key in keys or []:
            evaluate_checkpoint(s, key, s.options)
    return s.summary().to_dict()


@flow(name="demo")
def demo_flow(
    config: str,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
    stop_after: str | None = None,
    methods: list[str] | None = None,
    checkpoints: list[str] | None = None,
) -> dict:
    """Run the method flows in turn (as sub-flows) and print the comparison table.

    ``checkpoints`` (artifact keys, ``correlearn flow run demo --checkpoint KEY``) are evaluated
    after the methods, with the same protocol and baselines, and get rows of their own.
    """
    runs = [
        FlowRun.from_dict(METHOD_FLOWS[name](config, overrides or [], force or [], stop_after))
        for name in methods or list(METHOD_FLOWS)
    ]
    if checkpoints:
        out = checkpoints_flow(config, overrides or [], force or [], stop_after, checkpoints)
        runs.append(FlowRun.from_dict(out))
    table = closing_tables(runs)
    ws = activate()
    demo = FlowRun("demo", [r for run in runs for r in run.stages], flows=runs, table=table)
    report = publish_run(demo, config=config, overrides=overrides)
    print("\n" + table + "\n", flush=True)
    print(f"artifacts: {ws.artifacts}", flush=True)
    print(f"report:    {report}", flush=True)
    print("MLflow UI: make ui  (prints the link that opens the runs table)", flush=True)
    return demo.to_dict()
