"""One flow run's bookkeeping: its MLflow parent run, its stage calls, its evaluations, its stop.

A flow opens a :func:`flow_session`, calls stages through :meth:`FlowSession.run` (one Prefect task
each) or has a stage's declared inputs produced by their default stages
(:meth:`FlowSession.inputs_of`), and returns :meth:`FlowSession.summary`, a
:class:`~correlearn.records.FlowRun`. A flow never computes: it names stages and wires their
artifacts to inputs.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prefect.futures import wait
from prefect.utilities.annotations import unmapped

from correlearn.config import ConfigError
from correlearn.models import backbone_info
from correlearn.pipeline import Pipeline
from correlearn.records import FlowRun, MethodEvaluation, StageRun
from correlearn.tracking import Tracker
from correlearn.workspace import activate
from flows.evaluation import FlowOptions, flow_options
from flows.publish import publish_run
from flows.stage_task import stage_task, unit_task
from stages import STAGES


@dataclass
class FlowSession:
    """Bookkeeping of one flow run: its parent MLflow run, forced stages, results, stop point.

    ``raw`` is the config mapping read once at the flow's start (its snapshot): every stage of the
    run is resolved from it. With ``map_units``, a stage that declares units (the ORL mining
    stages) first has its pending units mapped as Prefect tasks, which a Dask task runner spreads
    over workers; run one flow per artifact key at a time then, as the mapped tasks do not hold
    the stage's writer lock.
    """

    flow: str
    config: str
    overrides: list[str]
    force: list[str]
    stop_after: str | None
    parent_run_id: str | None
    raw: dict[str, Any] = field(default_factory=dict)
    tracker: Tracker | None = None
    options: FlowOptions = field(default_factory=FlowOptions)
    map_units: bool = False
    results: list[StageRun] = field(default_factory=list)
    evaluations: list[MethodEvaluation] = field(default_factory=list)
    stopped: bool = False
    _produced: dict[str, StageRun | None] = field(default_factory=dict)

    def run(
        self,
        stage: str,
        inputs: dict[str, StageRun | None] | None = None,
        section: str | None = None,
        overrides: dict[str, Any] | None = None,
        label: str | None = None,
        subject: str | None = None,
    ) -> StageRun | None:
        """Run a stage as a Prefect task unless the flow already stopped.

        Args:
            stage: the stage name.
            inputs: input name -> the run whose artifact it takes.
            section: config section (default: the stage's name).
            overrides: field overrides on top of the section.
            label: the call's name in reports (default: section or stage).
            subject: for an evaluation, the name of the checkpoint it evaluates.
        """
        if self.stopped:
            return None
        name = label or section or stage
        if self.map_units and STAGES[stage].units is not None:
            self._map_units(stage, inputs or {})
        out = stage_task.with_options(task_run_name=name)(
            stage,
            self.config,
            self.overrides,
            {k: v.to_dict() for k, v in (inputs or {}).items()},
            self.parent_run_id,
            self.raw,
            force=stage in self.force or (section or "") in self.force,
            section=section,
            stage_overrides=overrides,
        )
        run = replace(StageRun.from_dict(out), label=name, subject=subject)
        self.results.append(run)
        if self.stop_after is not None and self.stop_after in (stage, section, label):
            self.stopped = True
        return run

    def inputs_of(self, stage: str) -> dict[str, StageRun | None]:
        """The declared inputs of ``stage``, each produced by its default stage once per run."""
        inputs = {}
        for name, producer in STAGES[stage].inputs.items():
            if producer not in self._produced:
                self._produced[producer] = self.run(producer, inputs=self.inputs_of(producer))
            inputs[name] = self._produced[producer]
        return inputs

    def _map_units(self, stage: str, inputs: dict[str, StageRun | None]) -> None:
        """Compute the pending units of ``stage`` as mapped tasks; re-raise the first failure."""
        if any(v is None for v in inputs.values()):
            return
        found = self.pipeline().pending_units(stage, inputs, force=stage in self.force)
        if found is None:
            return
        call, todo = found
        futures = unit_task.map(stage, todo, unmapped(call.to_dict()))
        wait(futures)
        for f in futures:
            f.result()

    def pipeline(self) -> Pipeline:
        """A pipeline over this run's config snapshot (no tracking)."""
        return Pipeline(self.config, STAGES, activate(), raw=self.raw)

    def section(self, stage: str):
        """The validated config section of ``stage`` as this flow run sees it (its snapshot)."""
        return self.pipeline().section(stage)

    def random_init(self, trained_stage: str, seed: int = 0) -> StageRun | None:
        """Run ``init_random`` (``seed``) with the backbone that ``trained_stage``'s config trains."""
        cfg = self.section(trained_stage).method
        kwargs = dict(cfg.backbone_kwargs)
        takes_pos_embed = "pos_embed" in backbone_info(cfg.backbone).options
        if takes_pos_embed and getattr(cfg, "pos_embed", None):
            # Like for like: a method that starts from MAE's fixed sin-cos table is compared with
            # a random ViT that has the same table, not timm's random learned one.
            kwargs.setdefault("pos_embed", cfg.pos_embed)
        return self.random_backbone(cfg.backbone, kwargs, seed)

    def random_backbone(self, backbone: str, kwargs: dict[str, Any], seed: int) -> StageRun | None:
        """Run ``init_random`` for a backbone (registry name + kwargs) at ``seed``."""
        return self.run(
            "init_random",
            overrides={"backbone": backbone, "backbone_kwargs": kwargs, "seed": seed},
            label=f"init_random[{backbone}, seed {seed}]",
        )

    def has_batchnorm(self, trained_stage: str) -> bool:
        """Whether the trained backbone has BatchNorm (:func:`backbone_info`; ViT: LayerNorm)."""
        return backbone_info(self.section(trained_stage).method.backbone).has_batchnorm

    def record_evaluation(self, record: MethodEvaluation) -> None:
        """Keep one method's evaluation record and log its J&F-vs-steps curve to MLflow."""
        self.evaluations.append(record)
        if not (self.tracker and self.parent_run_id):
            return
        for point in record.points:
            jf = point.lp.metric("JF_mean") if point.lp else None
            if jf is not None and point.steps is not None:
                self.tracker.log_metrics(
                    self.parent_run_id, {f"JF_curve/{record.name}": jf}, step=point.steps
                )
        for base, run in record.baselines.items():
            jf = run.metric("JF_mean") if run else None
            if jf is not None:
                self.tracker.log_metrics(self.parent_run_id, {f"JF_{base}/{record.name}": jf})

    def summary(self) -> FlowRun:
        """This run's record (its ``--json`` object and ``flow_result.json``)."""
        return FlowRun(
            self.flow, list(self.results), list(self.evaluations), [], self.parent_run_id
        )


@contextmanager
def flow_session(flow: str, config: str, overrides, force, stop_after, map_units: bool = False):
    """Open the flow's MLflow parent run, yield a :class:`FlowSession`, close the run."""
    ws = activate()
    tracker = Tracker(ws)
    raw = Pipeline(config, STAGES, ws, overrides).raw  # fail fast on a bad config
    options = flow_options(raw, Path(config).name)
    unknown = [p for p in options.protocols if p not in STAGES]
    if unknown:  # before any work, not after the training it would evaluate
        raise ConfigError(f"{Path(config).name}: flow.protocols: unknown stage(s) {unknown}")
    run_id = tracker.start(flow, tags={"flow": flow, "config": str(Path(config).name)})
    tracker.log_artifact(run_id, config, "config")
    tracker.log_params(run_id, {"config": str(config), "overrides": list(overrides)})
    s = FlowSession(
        flow, config, list(overrides), list(force), stop_after, run_id, raw, tracker, options,
        map_units,
    )  # fmt: skip
    print(f"== flow {flow} (MLflow run {run_id}) ==", flush=True)
    try:
        yield s
    except BaseException:
        publish_run(s.summary(), tracker, run_id, "failed", config, overrides)
        tracker.end(run_id, ok=False)
        raise
    hits = sum(r.cache_hit for r in s.results)
    tracker.log_metrics(run_id, {"stages": len(s.results), "cache_hits": hits})
    publish_run(s.summary(), tracker, run_id, "completed", config, overrides)
    tracker.end(run_id)
    print(f"== flow {flow}: {len(s.results)} stages, {hits} cache hits ==", flush=True)
