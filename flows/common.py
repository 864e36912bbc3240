"""What every flow shares: one Prefect task that runs one stage, and the flow's MLflow parent run.

Tasks pass artifact references (small dicts), never tensors. A flow never computes: it names stages
and wires their outputs to inputs.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from correlearn.config import ConfigError
from correlearn.pipeline import Pipeline, StageResult
from correlearn.registry import stage_registry
from correlearn.summary import lp_metric
from correlearn.tracking import Tracker
from correlearn.workspace import activate
from flows.evaluation import FlowOptions, flow_options


@task(name="stage", task_run_name="{stage}", cache_policy=NO_CACHE, persist_result=False)
def stage_task(
    stage: str,
    config: str,
    overrides: list[str],
    inputs: dict[str, dict[str, Any]],
    parent_run_id: str | None,
    force: bool = False,
    section: str | None = None,
    stage_overrides: dict[str, Any] | None = None,
    config_raw: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one stage through the artifact store; returns its ``StageResult`` as a dict."""
    ws = activate()
    pipe = Pipeline(
        config, stage_registry(), ws, overrides, Tracker(ws), parent_run_id, raw=config_raw
    )
    res = pipe.run_stage(
        stage,
        inputs={k: StageResult.from_dict(v) for k, v in inputs.items()},
        section=section,
        overrides=stage_overrides,
        force=force,
    )
    return res.to_dict()


@dataclass
class FlowSession:
    """Bookkeeping of one flow run: its parent MLflow run, forced stages, results, stop point."""

    flow: str
    config: str
    overrides: list[str]
    force: list[str]
    stop_after: str | None
    parent_run_id: str | None
    raw: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    tracker: Tracker | None = None
    options: FlowOptions = field(default_factory=FlowOptions)
    stopped: bool = False

    def run(
        self,
        stage: str,
        inputs: dict[str, dict[str, Any]] | None = None,
        section: str | None = None,
        overrides: dict[str, Any] | None = None,
        label: str | None = None,
    ) -> dict[str, Any] | None:
        """Run a stage as a Prefect task unless the flow already stopped; returns its result."""
        if self.stopped:
            return None
        res = stage_task.with_options(task_run_name=label or section or stage)(
            stage,
            self.config,
            self.overrides,
            inputs or {},
            self.parent_run_id,
            force=stage in self.force or (section or "") in self.force,
            section=section,
            stage_overrides=overrides,
            config_raw=self.raw,
        )
        res = {**res, "label": label or section or stage}
        self.results.append(res)
        if self.stop_after is not None and self.stop_after in (stage, section, label):
            self.stopped = True
        return res

    def section(self, stage: str):
        """The validated config section of ``stage`` as this flow run sees it (its snapshot)."""
        return Pipeline(self.config, stage_registry(), activate(), raw=self.raw).section(stage)

    def random_init(self, trained_stage: str, seed: int = 0) -> dict[str, Any] | None:
        """Run ``init_random`` (``seed``) with the backbone that ``trained_stage``'s config trains."""
        cfg = self.section(trained_stage).method
        kwargs = dict(cfg.backbone_kwargs)
        if cfg.backbone.startswith("vit") and getattr(cfg, "pos_embed", None):
            # Like for like: a method that starts from MAE's fixed sin-cos table is compared with
            # a random ViT that has the same table, not timm's random learned one.
            kwargs.setdefault("pos_embed", cfg.pos_embed)
        return self.random_backbone(cfg.backbone, kwargs, seed)

    def random_backbone(self, backbone: str, kwargs: dict[str, Any], seed: int) -> dict | None:
        """Run ``init_random`` for a backbone (registry name + kwargs) at ``seed``."""
        return self.run(
            "init_random",
            overrides={"backbone": backbone, "backbone_kwargs": kwargs, "seed": seed},
            label=f"init_random[{backbone}, seed {seed}]",
        )

    def has_batchnorm(self, trained_stage: str) -> bool:
        """Whether the trained backbone has BatchNorm (the ResNets; the ViTs use LayerNorm)."""
        return self.section(trained_stage).method.backbone.startswith("resnet")

    def record_evaluation(self, record: dict[str, Any]) -> None:
        """Keep one method's evaluation record and log its J&F-vs-steps curve to MLflow."""
        self.evaluations.append(record)
        if not (self.tracker and self.parent_run_id):
            return
        for point in record["points"]:
            jf = lp_metric(point["lp"], "JF_mean")
            if jf is not None and point["steps"] is not None:
                self.tracker.log_metrics(
                    self.parent_run_id, {f"JF_curve/{record['name']}": jf}, step=point["steps"]
                )
        for base, res in record["baselines"].items():
            jf = lp_metric(res, "JF_mean")
            if jf is not None:
                self.tracker.log_metrics(self.parent_run_id, {f"JF_{base}/{record['name']}": jf})

    def summary(self) -> dict[str, Any]:
        """The flow's ``--json`` object."""
        return {"flow": self.flow, "stages": self.results, "evaluations": self.evaluations}


@contextmanager
def flow_session(flow: str, config: str, overrides, force, stop_after):
    """Open the flow's MLflow parent run, yield a :class:`FlowSession`, close the run."""
    ws = activate()
    tracker = Tracker(ws)
    raw = Pipeline(config, stage_registry(), ws, overrides).raw  # fail fast on a bad config
    options = flow_options(raw, Path(config).name)
    unknown = [p for p in options.protocols if p not in stage_registry()]
    if unknown:  # before any work, not after the training it would evaluate
        raise ConfigError(f"{Path(config).name}: flow.protocols: unknown stage(s) {unknown}")
    run_id = tracker.start(flow, tags={"flow": flow, "config": str(Path(config).name)})
    tracker.log_artifact(run_id, config, "config")
    tracker.log_params(run_id, {"config": str(config), "overrides": list(overrides)})
    session = FlowSession(
        flow,
        config,
        list(overrides),
        list(force),
        stop_after,
        run_id,
        raw,
        tracker=tracker,
        options=options,
    )
    print(f"== flow {flow} (MLflow run {run_id}) ==", flush=True)
    try:
        yield session
    except BaseException:
        publish_run(session.summary(), tracker, run_id, "failed", config, overrides)
        tracker.end(run_id, ok=False)
        raise
    hits = sum(r["cache_hit"] for r in session.results)
    tracker.log_metrics(run_id, {"stages": len(session.results), "cache_hits": hits})
    publish_run(session.summary(), tracker, run_id, "completed", config, overrides)
    tracker.end(run_id)
    print(f"== flow {flow}: {len(session.results)} stages, {hits} cache hits ==", flush=True)


def publish_run(
    result: dict[str, Any],
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
    import json
    import shutil
    import tempfile
    import warnings

    from correlearn.report import lp_results, publish_report
    from correlearn.tracking import run_url

    ws = activate()
    meta = {"status": status, "config": config, "overrides": overrides, "home": str(ws.home)}
    if tracker and run_id:
        meta.update(mlflow_run_id=run_id, mlflow_url=run_url(tracker, run_id))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if tracker and run_id:
                rec = Path(tmp) / "flow_result.json"
                rec.write_text(json.dumps(result, default=str))
                tracker.log_artifact(run_id, rec)
            path = publish_report(result, ws.home / "reports", meta)
            if tracker and run_id:
                shutil.copyfile(path, Path(tmp) / "report.html")
                tracker.log_artifact(run_id, Path(tmp) / "report.html")
        _prefect_report_artifact(result, path, meta, lp_results(result.get("stages") or []))
    except Exception as exc:  # noqa: BLE001 - the flow's work is done; a report must not undo it
        warnings.warn(f"flow {result.get('flow')}: report not written: {exc}", stacklevel=2)
        return None
    print(f"report: {path}", flush=True)
    return path


def _prefect_report_artifact(result, path: Path, meta: dict, lp: dict) -> None:
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
    for r in result.get("stages") or []:
        lines.append(
            f"| {r.get('label')} | {r.get('stage')} | {r.get('cache_hit')} | `{r.get('key')}` |"
        )
    flow = "".join(c if c.isalnum() else "-" for c in str(result.get("flow", "flow")).lower())
    create_markdown_artifact(
        markdown="\n".join(lines), key=f"report-{flow}", description="correlearn run report"
    )


def with_dask(flow_fn: Any, n_workers: int, address: str | None = None) -> Any:
    """The same flow on Prefect's Dask task runner.

    The runner starts a local cluster of ``n_workers`` processes, or joins an existing cluster at
    ``address`` (``tcp://scheduler:8786``) that spans machines. Mapped tasks (the ORL proposals per shard) then run on the Dask workers; the stages' own
    process pools and the artifact store are unchanged, so the artifacts are identical.
    """
    from prefect_dask import DaskTaskRunner

    if address:
        runner = DaskTaskRunner(address=address)
    else:
        runner = DaskTaskRunner(
            cluster_kwargs={"n_workers": n_workers, "threads_per_worker": 1, "processes": True}
        )
    return flow_fn.with_options(task_runner=runner)
