"""Flow ``demo``: every method's flow at CPU budgets on the embedded data, then one table."""

from __future__ import annotations

from prefect import flow

from correlearn.summary import curve_table, demo_table
from correlearn.workspace import activate
from flows.common import flow_session, publish_run
from flows.evaluation import evaluate_checkpoint


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
    return s.summary()


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
    from flows import METHOD_FLOWS

    results = []
    for name in methods or list(METHOD_FLOWS):
        results.append(METHOD_FLOWS[name](config, overrides or [], force or [], stop_after))
    if checkpoints:
        results.append(
            checkpoints_flow(config, overrides or [], force or [], stop_after, checkpoints)
        )
    table = demo_table(results) + "\n\nJ&F vs steps (held-out):\n\n" + curve_table(results)
    ws = activate()
    out = {"flow": "demo", "stages": [s for r in results for s in r["stages"]], "table": table}
    report = publish_run({**out, "flows": results}, config=config, overrides=overrides)
    print("\n" + table + "\n", flush=True)
    print(f"artifacts: {ws.artifacts}", flush=True)
    print(f"report:    {report}", flush=True)
    print("MLflow UI: make ui  (http://127.0.0.1:5000)", flush=True)
    return out
