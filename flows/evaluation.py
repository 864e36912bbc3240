"""How a method flow trains and evaluates a checkpoint so that its numbers mean something.

For one training stage, :func:`train_and_evaluate` runs (as cached stages, through the flow's
:class:`~flows.flow_session.FlowSession`):

1. the training stage at a few step budgets of one schedule (``flow.curve_points``), the last being
   the configured ``train.max_steps``; each budget is its own checkpoint artifact, so label
   propagation of each gives a J&F-vs-steps curve (logged to the flow's MLflow run);
2. the baselines, evaluated with exactly the label-propagation protocol of the trained checkpoint
   (the preset it resolved to): a random init of the same backbone at each of
   ``flow.baseline_seeds`` (their spread is the noise floor a gain must exceed), and, for
   backbones with BatchNorm, the method's own initial weights after ``flow.bn_calibration_steps``
   forward passes of the method's training pipeline with a learning rate of zero (BatchNorm
   statistics recomputed on the training data, zero effective optimiser steps), so that a gain
   shown is learning and not BN calibration;
3. the k-NN probe of the final checkpoint and of the seed-0 random init.

The flow reads only manifests' small metadata (the resolved preset, the stopped step); it passes
artifact references, never tensors.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from correlearn.config import StrictModel, validate
from correlearn.records import LP_STAGE, CurvePoint, MethodEvaluation, StageRun

LP = LP_STAGE
KNN = "eval_knn"


class FlowOptions(StrictModel):
    """The ``flow:`` section of a pipeline config: how method flows evaluate.

    Attributes:
        curve_points: checkpoints on the J&F-vs-steps curve, evenly spaced up to
            ``train.max_steps`` (the last is the final checkpoint); 1 evaluates only the final one.
            Needs ``train.max_steps``; without it only the final checkpoint is evaluated.
        baseline_seeds: seeds of the random-init baselines; two or more give the seed spread.
        bn_calibration_steps: forward passes (lr 0) for the BN-calibrated baseline; 0 disables it.
        knn: run the k-NN probe on the final checkpoint and the seed-0 random init.
        protocols: further evaluation stages run on the final checkpoint and on the seed-0
            random init, each with its own config section (e.g. ``[eval_pose, eval_tracking]``).
    """

    curve_points: int = Field(1, ge=1)
    baseline_seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1)
    bn_calibration_steps: int = Field(0, ge=0)
    knn: bool = True
    protocols: list[str] = Field(default_factory=list)


def flow_options(raw: dict[str, Any], config_name: str) -> FlowOptions:
    """Validate the config's ``flow:`` section (missing: the defaults)."""
    return validate(FlowOptions, raw.get("flow") or {}, config_name, prefix="flow")


def curve_budgets(max_steps: int | None, points: int) -> list[int | None]:
    """Step budgets of the curve's checkpoints, ascending; the last is ``max_steps`` itself.

    >>> curve_budgets(120, 3)
    [40, 80, 120]
    >>> curve_budgets(None, 3)
    [None]
    """
    if max_steps is None or points <= 1 or max_steps < points:
        return [max_steps]
    return [round(max_steps * (i + 1) / points) for i in range(points)]


def _metadata(run: StageRun | None) -> dict[str, Any]:
    """The ``metadata`` of a run's manifest (empty for no run)."""
    return (run.manifest().get("metadata") or {}) if run else {}


def _eval_lp(s, subject: str, ckpt: StageRun | None, preset: str | None) -> StageRun | None:
    if ckpt is None:
        return None
    overrides = {"preset": preset} if preset else None
    return s.run(
        LP,
        inputs={"checkpoint": ckpt},
        overrides=overrides,
        label=f"{LP}[{subject}]",
        subject=subject,
    )


def _eval(s, stage: str, subject: str, ckpt: StageRun | None) -> StageRun | None:
    """Any other evaluation stage of a checkpoint (k-NN, a further protocol)."""
    return s.run(stage, inputs={"checkpoint": ckpt}, label=f"{stage}[{subject}]", subject=subject)


def _train_curve(s, stage: str, inputs: dict[str, Any], budgets: list) -> list[StageRun | None]:
    """The training stage at each budget of one schedule (each its own checkpoint artifact)."""
    ckpts = []
    for budget in budgets:
        label = stage if budget == budgets[-1] else f"{stage}@{budget}"
        over = {"train": {"max_steps": budget}} if budget is not None else None
        ckpts.append(s.run(stage, inputs=inputs, overrides=over, label=label))
    return ckpts


def _bn_init(s, name, stage, inputs, options, preset) -> StageRun | None:
    """The method's initial weights after lr-0 passes of its pipeline, evaluated (module doc)."""
    over = {
        "train": {"max_steps": options.bn_calibration_steps},
        "optim": {"base_lr": 0.0, "min_lr": 0.0},
        # Its J&F is the baseline; its own pretext score is read by no one (and would score the
        # untrained init again under a schedule key of its own).
        "val": {"dataset": None},
    }
    calib = s.run(stage, inputs=inputs, overrides=over, label=f"{stage}[bn-init]")
    return _eval_lp(s, f"{name}-bn-init", calib, preset)


def train_and_evaluate(
    s, name: str, stage: str, inputs: dict[str, Any], options: FlowOptions
) -> StageRun | None:
    """Train ``stage`` (at the curve's budgets), evaluate it and its baselines; see module doc.

    Args:
        s: the flow's :class:`~flows.flow_session.FlowSession`.
        name: the checkpoint's name in tables (``"vfs"``).
        stage: the training stage (``"pretrain_vfs"``).
        inputs: the training stage's inputs.
        options: the ``flow:`` section.

    Returns:
        The final checkpoint's stage run (None when the flow stopped before it).
    """
    budgets = curve_budgets(s.section(stage).train.max_steps, options.curve_points)
    ckpts = _train_curve(s, stage, inputs, budgets)
    final = ckpts[-1]
    ev = _eval_lp(s, name, final, None)
    preset = _metadata(ev).get("preset")
    record = MethodEvaluation(name, stage, preset)
    for budget, ckpt in zip(budgets[:-1], ckpts[:-1], strict=True):
        res = _eval_lp(s, f"{name}@{budget}", ckpt, preset)
        record.points.append(CurvePoint(_metadata(ckpt).get("steps", budget), res, ckpt))
    record.points.append(CurvePoint(_metadata(final).get("steps"), ev, final))
    for seed in options.baseline_seeds:
        init = s.random_init(stage, seed)
        record.baselines[f"random-s{seed}"] = _eval_lp(s, f"random-s{seed}", init, preset)
    if options.bn_calibration_steps and s.has_batchnorm(stage):
        record.baselines["bn-init"] = _bn_init(s, name, stage, inputs, options, preset)
    if options.knn and final is not None:
        record.knn = _eval(s, KNN, name, final)
        seed0 = s.random_init(stage, options.baseline_seeds[0])
        record.knn_random = _eval(s, KNN, "random", seed0)
    if options.protocols and final is not None:
        seed0 = s.random_init(stage, options.baseline_seeds[0])
        for proto in options.protocols:
            record.protocols[proto] = {
                "checkpoint": _eval(s, proto, name, final),
                "random": _eval(s, proto, "random", seed0),
            }
    s.record_evaluation(record)
    return final


def evaluate_checkpoint(s, key: str, options: FlowOptions) -> None:
    """Evaluate a given checkpoint artifact (``--checkpoint KEY``) like a trained method.

    Label propagation with the preset its backbone resolves to, the random inits of its backbone
    at ``options.baseline_seeds`` with that same preset, and the k-NN probe; no curve and no
    BN-calibrated init (the flow does not know how it was trained).
    """
    from correlearn.artifacts import ArtifactStore
    from correlearn.models.io import read_backbone_json
    from correlearn.workspace import activate

    store = ArtifactStore(activate().artifacts)
    stage, full = store.find(key)
    ref = store.ref(stage, full)
    ckpt = StageRun(stage, full, ref.path, cache_hit=True, label=stage)
    spec = read_backbone_json(ckpt.path)
    name = f"{stage}:{full[:8]}"
    ev = _eval_lp(s, name, ckpt, None)
    preset = _metadata(ev).get("preset")
    point = CurvePoint(_metadata(ckpt).get("steps"), ev, ckpt)
    record = MethodEvaluation(name, stage, preset, [point])
    for seed in options.baseline_seeds:
        init = s.random_backbone(spec["backbone"], spec.get("backbone_kwargs") or {}, seed)
        record.baselines[f"random-s{seed}"] = _eval_lp(s, f"random-s{seed}", init, preset)
    if options.knn:
        record.knn = _eval(s, KNN, name, ckpt)
    s.record_evaluation(record)
