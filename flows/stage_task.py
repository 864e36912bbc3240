"""The Prefect tasks of every flow: one stage call, and one unit of a stage's divisible work.

Tasks take and return small JSON (artifact references, config dumps), never tensors. Each task
builds its :class:`~correlearn.pipeline.Pipeline` from the flow's config snapshot (``config_raw``),
not from the YAML file, so editing the file mid-flow cannot give two stages of one run different
configs.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from correlearn.pipeline import Pipeline
from correlearn.records import StageRun
from correlearn.stage import UnitCall
from correlearn.tracking import Tracker
from correlearn.workspace import activate
from stages import STAGES


@task(name="stage", task_run_name="{stage}", cache_policy=NO_CACHE, persist_result=False)
def stage_task(
    stage: str,
    config: str,
    overrides: list[str],
    inputs: dict[str, dict[str, Any]],
    parent_run_id: str | None,
    config_raw: dict[str, Any],
    force: bool = False,
    section: str | None = None,
    stage_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one stage through the artifact store; returns its :class:`StageRun` as a dict."""
    ws = activate()
    pipe = Pipeline(config, STAGES, ws, overrides, Tracker(ws), parent_run_id, raw=config_raw)
    run = pipe.run_stage(
        stage,
        inputs={k: StageRun.from_dict(v) for k, v in inputs.items()},
        section=section,
        overrides=stage_overrides,
        force=force,
    )
    return run.to_dict()


@task(name="unit", task_run_name="{stage}[{unit}]", cache_policy=NO_CACHE, persist_result=False)
def unit_task(stage: str, unit: str, call: dict[str, Any]) -> str:
    """Compute one unit (an input shard, say) of a stage call into its partial folder."""
    spec = STAGES[stage]
    return str(spec.units.run_unit(UnitCall.from_dict(call, spec), unit))
