"""Flow ``demo``: every method's flow at CPU budgets on the embedded data, then one table."""

from __future__ import annotations

from prefect import flow

from correlearn.summary import demo_table
from correlearn.workspace import activate
from flows.common import publish_run


@flow(name="demo")
def demo_flow(
    config: str,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
    stop_after: str | None = None,
    methods: list[str] | None = None,
) -> dict:
    """Run the method flows in turn (as sub-flows) and print the comparison table."""
    from flows import METHOD_FLOWS

    results = []
    for name in methods or list(METHOD_FLOWS):
        results.append(METHOD_FLOWS[name](config, overrides or [], force or [], stop_after))
    table = demo_table(results)
    ws = activate()
    out = {"flow": "demo", "stages": [s for r in results for s in r["stages"]], "table": table}
    report = publish_run({**out, "flows": results}, config=config, overrides=overrides)
    print("\n" + table + "\n", flush=True)
    print(f"artifacts: {ws.artifacts}", flush=True)
    print(f"report:    {report}", flush=True)
    print("MLflow UI: make ui  (http://127.0.0.1:5000)", flush=True)
    return out
