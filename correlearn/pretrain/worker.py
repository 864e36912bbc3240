"""One torchrun process of a training stage: ``python -m correlearn.pretrain.worker JOB``.

``JOB`` is the :class:`~correlearn.pretrain.job.TrainingJob` the stage wrote (its validated config,
input references, partial folder, MLflow run id). Every rank opens the same inputs, trains under DDP
through :func:`correlearn.pretrain.job.train`, and returns; rank 0 logs to MLflow and writes the
training result for the stage, which then writes the artifact's other outputs in its own process.
"""

from __future__ import annotations

import sys

from correlearn.pretrain import method_spec
from correlearn.pretrain.job import TrainingJob, metric_logger, train, write_result
from correlearn.train import distributed as D
from correlearn.workspace import activate


def main(job_path: str) -> int:
    """Train the job at ``job_path`` as this torchrun rank; returns the exit code."""
    job = TrainingJob.read(job_path)
    spec = method_spec(job.method)
    data = spec.data.open(job.input_paths(), job.stage_config(spec))
    log_fn = None
    if D.is_main() and job.run_id:
        from correlearn.tracking import Tracker

        tracker = Tracker(activate())

        def log(metrics, step):
            tracker.log_metrics(job.run_id, metrics, step)

        log_fn = metric_logger(log, tracker, job.run_id, resumed=True)
    _, result = train(job, spec, data, log_fn)
    D.barrier()
    if D.is_main():
        write_result(job, result)
    D.destroy_distributed()  # a gloo group left to interpreter shutdown can abort the process
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
