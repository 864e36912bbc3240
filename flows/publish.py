"""A finished (or failed) flow run's record and report: MLflow artifacts, HTML file, Prefect link."""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path

from correlearn.records import FLOW_RESULT, FlowRun
from correlearn.tracking import Tracker
from correlearn.workspace import activate


def publish_run(
    run: FlowRun,
    tracker: Tracker | None = None,
    run_id: str | None = None,
    status: str = "completed",
    config: str | None = None,
    overrides: list[str] | None = None,
) -> Path | None:
    """Record a flow's result and report: MLflow artifacts, HTML file, Prefect artifact.

    Logs ``flow_result.json`` (the artifact keys the run used; ``correlearn gc`` keeps them) and
    ``report.html`` to the parent run, writes ``reports/<flow>-<timestamp>.html`` and
    ``reports/latest-<flow>.html`` under ``CORRELEARN_HOME``, and links the file from the Prefect
    flow run (a markdown artifact). A report that cannot be written is a warning, never a failure.
    """
    from correlearn.report import lp_results, publish_report
    from correlearn.tracking import run_url

    ws = activate()
    meta = {"status": status, "config": config, "overrides": overrides, "home": str(ws.home)}
    if tracker and run_id:
        meta.update(mlflow_run_id=run_id, mlflow_url=run_url(tracker, run_id))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if tracker and run_id:
                rec = Path(tmp) / FLOW_RESULT
                rec.write_text(json.dumps(run.to_dict(), default=str))
                tracker.log_artifact(run_id, rec)
            path = publish_report(run, ws.home / "reports", meta)
            if tracker and run_id:
                shutil.copyfile(path, Path(tmp) / "report.html")
                tracker.log_artifact(run_id, Path(tmp) / "report.html")
        _prefect_report_artifact(run, path, meta, lp_results(run))
    except Exception as exc:  # noqa: BLE001 - the flow's work is done; a report must not undo it
        warnings.warn(f"flow {run.flow}: report not written: {exc}", stacklevel=2)
        return None
    print(f"report: {path}", flush=True)
    return path


def _prefect_report_artifact(run: FlowRun, path: Path, meta: dict, lp: dict) -> None:
    """A markdown artifact on the Prefect flow run that links the report (no-op outside a run)."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return
    lines = [f"**Report**: [{path.name}]({path.as_uri()})  ", f"`{path}`", ""]
    if meta.get("mlflow_url"):
        lines += [f"**MLflow run**: [{meta['mlflow_run_id']}]({meta['mlflow_url']})", ""]
    if lp:
        lines += ["| checkpoint | J&F | J | F |", "|---|---|---|---|"]
        for name, m in lp.items():
            vals = [m.get(k) for k in ("JF_mean", "J_mean", "F_mean")]
            lines.append(
                f"| {name} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + " |"
            )
        lines.append("")
    lines += ["| label | stage | cache hit | key |", "|---|---|---|---|"]
    for r in run.stages:
        lines.append(f"| {r.name} | {r.stage} | {r.cache_hit} | `{r.key}` |")
    flow = "".join(c if c.isalnum() else "-" for c in run.flow.lower())
    create_markdown_artifact(
        markdown="\n".join(lines), key=f"report-{flow}", description="correlearn run report"
    )
