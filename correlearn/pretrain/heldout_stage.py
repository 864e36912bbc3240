"""A training stage's held-out set: its key material, its opening, and the manifest's report.

The held-out dataset enters the artifact key (a hash of its frames and masks, as evaluation
stages hash what they read); it is opened before training starts, checked to share no sequence
with the training data, and drawn into fixed batches (:class:`HeldoutEval`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from correlearn.config import ConfigError
from correlearn.data.fingerprint import fingerprint, get_dataset
from correlearn.data.sources import DatasetSpec
from correlearn.pretrain.heldout import HeldoutEval, check_disjoint, open_heldout
from correlearn.pretrain.spec import MethodSpec, TrainingData
from correlearn.stage import StageContext
from correlearn.train.checkpoint import SIDECAR

CURVE_FILE = "pretext_curve.json"  # in the training folder: the held-out curve across calls
_LAYOUTS = ("davis", "frame_folders")


def heldout_key(config: Any, pipe: Any) -> dict[str, Any]:
    """The stage's ``resolve``: ``{"heldout": fingerprint}`` when ``val.dataset`` is set."""
    if config.val.dataset is None:
        return {}
    spec = get_dataset(pipe, config.val.dataset)
    if spec.layout not in _LAYOUTS:
        raise ConfigError(
            f"{pipe.config_path.name}: val.dataset: {spec.name!r} has layout {spec.layout}; the "
            f"held-out set is read as videos ({' or '.join(_LAYOUTS)})"
        )
    # A DAVIS folder's fingerprint covers its masks too: the RoI metric reads them.
    return {"heldout": fingerprint(spec, pipe.base_dir, videos=True)}


def _checkpoint_step(workdir: Path) -> int:
    sidecar = workdir / SIDECAR
    try:
        return int(json.loads(sidecar.read_text()).get("step", 0))
    except (OSError, ValueError):
        return 0


def _training_keys(data: TrainingData) -> list[str]:
    keys: list[str] = []
    for name in ("images", "videos"):
        if name in data.sources:
            keys += list(data[name].keys)
    return keys


def open_heldout_eval(
    spec: MethodSpec, ctx: StageContext, data: TrainingData, workdir: Path
) -> HeldoutEval | None:
    """The fixed held-out batches of a stage call, or None without ``val.dataset``.

    Raises:
        ConfigError: the held-out set shares a sequence with the training data.
    """
    cfg = ctx.config
    if spec.heldout is None or cfg.val.dataset is None:
        return None
    dataset = DatasetSpec.model_validate(ctx.resolved["heldout"]["dataset"])
    held = open_heldout(dataset, ctx.base_dir, cfg.val)
    check_disjoint(held, _training_keys(data), f"{ctx.spec.name}.val.dataset")
    ev = HeldoutEval.draw(spec.heldout, held, cfg)
    ctx.info(
        f"pretext metric on {dataset.name}: {len(held['videos'])} held-out videos, "
        f"{len(held['images'])} images, {len(ev.batches)} fixed batches"
    )
    return ev.resume(workdir / CURVE_FILE, _checkpoint_step(workdir))


def heldout_evaluate(
    ctx: StageContext, spec: MethodSpec, heldout: HeldoutEval, log_fn: Any
) -> Callable[[nn.Module, int], None]:
    """The training loop's ``evaluate``: score and log the method at a step.

    At step 0, when the model is the init at the training seed, that score is kept as the seed's
    init score too (:meth:`HeldoutEval.adopt_step0_as_init`).
    """
    cfg = ctx.config

    def evaluate(method: nn.Module, step: int) -> None:
        heldout.log_step(method, step, log_fn)
        if step == 0 and cfg.train.seed in cfg.val.init_seeds:
            heldout.adopt_step0_as_init(method, lambda: spec.build(cfg.method), cfg.train.seed)

    return evaluate


def pretext_report(
    ctx: StageContext, spec: MethodSpec, heldout: HeldoutEval, method: nn.Module, steps: int
) -> dict[str, Any]:
    """Score the trained method, its inits and the trivial predictors; log and return the report."""
    report = heldout.report(method, lambda: spec.build(ctx.config.method), ctx.config, steps)
    name = report["metric"]
    inits = " / ".join(f"{s[name]:.3f}" for s in report["init"].values())
    trivial = ", ".join(f"{k} {s[name]:.3f}" for k, s in report["trivial"].items())
    ctx.info(
        f"held-out {name} at step {steps}: {report['learned'][name]:.3f} (init {inits}; {trivial})"
    )
    ctx.log_metrics({f"pretext_final/{k}": v for k, v in report["learned"].items()})
    return report
