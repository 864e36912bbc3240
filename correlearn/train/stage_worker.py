"""Entry point of one torchrun process of a training stage: ``-m correlearn.train.stage_worker JOB``.

The parent stage wrote ``JOB`` (config file, overrides, stage, section, inputs, partial folder, MLflow
run id). Each process rebuilds the same :class:`~correlearn.stage.StageContext` and runs the stage;
:func:`~correlearn.train.stage_run.train_in_stage` sees ``RANK`` set, trains under DDP, and ends the
worker with :class:`~correlearn.train.stage_run.WorkerDone`. Only rank 0 logs to MLflow.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from correlearn.artifacts import ArtifactRef
from correlearn.pipeline import Pipeline
from correlearn.registry import stage_registry
from correlearn.stage import StageContext
from correlearn.train.stage_run import WorkerDone
from correlearn.workspace import activate


def main(job_path: str) -> int:
    """Run the stage described by ``job_path`` in this torchrun process."""
    job = json.loads(Path(job_path).read_text())
    ws = activate()
    rank0 = int(os.environ.get("RANK", "0")) == 0
    tracker = None
    if rank0 and job.get("run_id"):
        from correlearn.tracking import Tracker

        tracker = Tracker(ws)
    pipe = Pipeline(job["config"], stage_registry(), ws, job["overrides"], tracker)
    spec = pipe.registry[job["stage"]]
    config = pipe.section(job["stage"], job.get("section"), job.get("stage_overrides"))
    refs = {k: ArtifactRef.from_dict(v) for k, v in job["inputs"].items()}
    _, resolved = pipe.key_of(job["stage"], config, refs)
    ctx = StageContext(
        spec,
        config,
        resolved,
        refs,
        Path(job["out_dir"]),
        tracker,
        job.get("run_id") if rank0 else None,
        pipe.base_dir,
        resumed=True,
    )
    ctx.job = job
    try:
        spec.run(ctx)
    except WorkerDone:
        return 0
    raise RuntimeError(f"stage {spec.name} does not train through train_in_stage")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
