"""A training job, typed, and the one function that trains it (in this process or a torchrun rank).

A pre-training stage turns its call into a :class:`TrainingJob`: the method's name, the validated
stage config (dumped), the input artifact references, the partial folder, the MLflow run id and the
pipeline config mapping the call was resolved from (for the record). Single
process, the stage calls :func:`train` directly; with ``devices * nodes > 1`` it writes the job to
``torchrun_job.json`` and launches :mod:`correlearn.pretrain.worker`, whose every rank reads the job
and calls the same :func:`train`. No rank re-reads the YAML file, so editing it after a flow started
cannot change what a worker trains.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from torch import nn

from correlearn.artifacts import write_json_atomic
from correlearn.data.step_loader import make_step_loader
from correlearn.models.io import BACKBONE_FILE
from correlearn.pretrain.spec import MethodSpec, TrainingData
from correlearn.train import distributed as D
from correlearn.train.loop import EvalFn, export_backbone, fit
from correlearn.train.rng import seed_everything

JOB_FILE = "torchrun_job.json"
RESULT_FILE = "last.json"  # in the ``train/`` folder: rank 0's training result for the parent
TRAIN_DIR = "train"


class TrainingJob(BaseModel):
    """What every process of one training call trains; plain JSON on disk.

    Attributes:
        method: registry name of the method (:data:`correlearn.pretrain.METHODS`).
        stage: the stage name (for messages).
        config: the validated stage config, ``model_dump(mode="json")``.
        inputs: input name -> artifact reference (``{"stage", "key", "path"}``).
        out_dir: the stage's partial folder (training state under ``train/``).
        run_id: the MLflow run rank 0 logs to (None without tracking).
        resumed: the partial folder was left by a stopped run of the same call.
        pipeline_config: the pipeline config mapping (after ``--set``) the call was resolved from.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str
    stage: str
    config: dict[str, Any]
    inputs: dict[str, dict[str, str]]
    out_dir: str
    run_id: str | None = None
    resumed: bool = False
    pipeline_config: dict[str, Any] = {}

    def stage_config(self, spec: MethodSpec) -> Any:
        """The config, validated again with the method's model."""
        return spec.config.model_validate(self.config)

    def input_paths(self) -> dict[str, Path]:
        """Input name -> artifact folder."""
        return {k: Path(v["path"]) for k, v in self.inputs.items()}

    @property
    def workdir(self) -> Path:
        """Where checkpoints and the training result go."""
        return Path(self.out_dir) / TRAIN_DIR

    def write(self, path: Path) -> Path:
        """Write the job atomically (a torchrun rank must never read half a file)."""
        write_json_atomic(path, self.model_dump(mode="json"))
        return path

    @classmethod
    def read(cls, path: str | Path) -> TrainingJob:
        """The job written by :meth:`write`."""
        return cls.model_validate_json(Path(path).read_text())


LogFn = Callable[[dict[str, float], int], None]


def train(
    job: TrainingJob,
    spec: MethodSpec,
    data: TrainingData,
    log_fn: LogFn | None,
    evaluate: tuple[EvalFn, int | None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the job's method on ``data`` in this process (one rank under torchrun).

    Resumes from the newest checkpoint under ``job.workdir``; rank 0 exports ``backbone.pt``.
    ``evaluate`` is :func:`~correlearn.train.loop.fit`'s (the held-out metric, single process).

    Returns:
        The trained method and the result for the manifest: steps, total_steps, minutes,
        stopped_on_budget, last_losses, loss_history.

    Raises:
        KeyboardInterrupt: the run was stopped from outside (SIGINT/SIGTERM) after checkpointing;
            the partial folder is kept and a re-run resumes.
    """
    cfg = job.stage_config(spec)
    world = cfg.train.world_size
    total = cfg.train.resolve_total_steps(data.num_samples, world)
    seed_everything(cfg.train.seed)  # the initial weights are a function of the config
    method = spec.build(cfg.method)
    if world > 1:
        D.init_distributed(cfg.train.device)
    seed = D.rank_seed(cfg.train.seed)

    def build_batch(step, rng, gen):
        return spec.batch(data, cfg, step, rng, gen)

    def data_fn(start: int):
        workers = 0 if data.in_process else cfg.train.num_workers
        return make_step_loader(build_batch, seed, start, None, workers)

    res = fit(
        method, data_fn, cfg.train, cfg.optim, job.workdir, log_fn, job.run_id, total,
        evaluate=evaluate,
    )  # fmt: skip
    if res.stop_reason == "signal":
        raise KeyboardInterrupt(f"{job.stage} stopped at step {res.step}; re-run to resume")
    if D.is_main():
        export_backbone(method, Path(job.out_dir) / BACKBONE_FILE)
    result = {
        "steps": res.step,
        "total_steps": total,
        "minutes": round(res.minutes, 3),
        "stopped_on_budget": res.stopped_on_budget,
        "last_losses": res.last_losses,
        "loss_history": res.loss_history,
    }
    return method, result


def write_result(job: TrainingJob, result: dict[str, Any]) -> None:
    """Rank 0's training result, for the parent process that launched torchrun."""
    write_json_atomic(job.workdir / RESULT_FILE, result)


def metric_logger(log: LogFn, tracker: Any, run_id: str | None, resumed: bool) -> LogFn:
    """``log``, minus the steps a killed session already logged to the same MLflow run.

    A run resumed from its last checkpoint repeats the steps between that checkpoint and the kill;
    their values are the same (seeded), so logging them again would only duplicate MLflow points.

    Args:
        log: ``log(metrics, step)``, e.g. ``StageContext.log_metrics``.
        tracker: the :class:`~correlearn.tracking.Tracker` holding the run (None: no history).
        run_id: the MLflow run.
        resumed: whether an earlier session may have logged steps already.
    """
    done = -1
    if resumed and tracker is not None and run_id:
        try:
            history = tracker.client.get_metric_history(run_id, "loss")
            done = max((m.step for m in history), default=-1)
        except Exception:  # noqa: BLE001 - no history to read: log everything
            done = -1

    def log_new(metrics: dict[str, float], step: int) -> None:
        if step > done:
            log(metrics, step)

    return log_new
