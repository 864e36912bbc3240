"""Flow runs over real artifact folders, as typed records and as the dicts flows wrote before them.

:func:`byol_run` and :func:`vfs_run` lay out the artifacts of a method flow (shards, checkpoints
at two budgets, random inits, label propagation with per-sequence J&F, k-NN) under a store root
and return the flow's :class:`~correlearn.records.FlowRun` and the old-style result dict of the same
calls (labels with the checkpoint's name in brackets, no ``subject``). Import with
``from tests.flow_run_fixtures import ...``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from correlearn.artifacts import MANIFEST
from correlearn.records import METRICS, CurvePoint, FlowRun, MethodEvaluation, StageRun

LP = "eval_label_propagation"


def png(path: Path, w: int, h: int, seed: int) -> None:
    """A noise PNG of ``w`` x ``h`` (noise: it does not compress, so size limits apply)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def artifact(root: Path, stage: str, key: str, seconds: float, pictures=(), metrics=None, **extra):
    """A finished artifact folder; pictures named ``*sheet*`` are 1600 px wide, others 120."""
    path = root / stage / key
    path.mkdir(parents=True)
    for i, p in enumerate(pictures):
        png(path / p, 1600 if "sheet" in p else 120, 90, seed=i)
    if metrics is not None:
        (path / METRICS).write_text(json.dumps(metrics))
    manifest = {"stage": stage, "key": key, "seconds": seconds, "pictures": list(pictures)}
    manifest.update(extra)
    (path / MANIFEST).write_text(json.dumps(manifest))
    return {"stage": stage, "key": key, "path": str(path)}


def evaluation(root: Path, stage: str, key: str, checkpoint: dict, metrics=None, pictures=()):
    """An evaluation artifact of ``checkpoint`` (an :func:`artifact`): its manifest names it."""
    inputs = {"checkpoint": {"stage": checkpoint["stage"], "key": checkpoint["key"]}}
    return artifact(root, stage, key, 28.0, pictures, metrics, inputs=inputs)


def lp_metrics(jf: dict[str, float]) -> dict[str, Any]:
    """``metrics.json`` of label propagation with the given J&F per sequence."""
    per = {s: {"J_mean": v - 0.05, "F_mean": v + 0.05, "JF_mean": v} for s, v in jf.items()}
    mean = sum(jf.values()) / len(jf)
    return {"JF_mean": mean, "J_mean": mean - 0.05, "F_mean": mean + 0.05, "per_sequence": per}


class _Calls:
    """Stage calls recorded both ways: typed and as the old result dicts."""

    def __init__(self):
        self.runs: list[StageRun] = []
        self.old: list[dict[str, Any]] = []

    def __call__(self, art: dict, label: str, hit: bool = False, subject: str | None = None):
        run = StageRun(**art, cache_hit=hit, label=label, subject=subject)
        old = {**art, "cache_hit": hit, "forced": False, "label": label}
        self.runs.append(run)
        self.old.append(old)
        return run, old


def _record(name, stage, preset, points, baselines, knn=None, knn_random=None):
    """A method evaluation, typed and old-style; arguments hold (typed, old) pairs."""
    new = MethodEvaluation(
        name,
        stage,
        preset,
        [CurvePoint(s, lp[0]) for s, lp in points],
        {k: v[0] for k, v in baselines.items()},
        knn[0] if knn else None,
        knn_random[0] if knn_random else None,
    )
    old = {
        "name": name,
        "stage": stage,
        "preset": preset,
        "points": [{"steps": s, "lp": lp[1]} for s, lp in points],
        "baselines": {k: v[1] for k, v in baselines.items()},
    }
    if knn:
        old.update(knn=knn[1], knn_random=knn_random[1])
    return new, old


def byol_run(root: Path) -> tuple[FlowRun, dict[str, Any]]:
    """A ResNet method flow: curve of two points, two random seeds, BN-calibrated init, k-NN."""
    call = _Calls()
    call(artifact(root, "image_shards", "a" * 16, 1.5), "image_shards", hit=True)
    pics = ["pictures/loss_curve.png", "pictures/views.png"]
    mid = artifact(root, "pretrain_byol", "7" * 16, 60.0, pics, metadata={"steps": 30})
    call(mid, "pretrain_byol@30")
    ckpt = artifact(root, "pretrain_byol", "b" * 16, 120.0, pics, metadata={"steps": 60})
    call(ckpt, "pretrain_byol")
    sheet = ["pictures/bear_sheet.png"]
    lp_b = call(
        evaluation(root, LP, "d" * 16, ckpt, lp_metrics({"bear": 0.61, "surf": 0.52}), sheet),
        f"{LP}[byol]",
        subject="byol",
    )
    lp_mid = call(
        evaluation(root, LP, "9" * 16, mid, lp_metrics({"bear": 0.41, "surf": 0.32})),
        f"{LP}[byol@30]",
        subject="byol@30",
    )
    seed0 = artifact(root, "init_random", "c" * 16, 0.4)
    call(seed0, "init_random[resnet18, seed 0]")
    lp_r0 = call(
        evaluation(root, LP, "e" * 16, seed0, lp_metrics({"bear": 0.31, "surf": 0.22})),
        f"{LP}[random-s0]",
        hit=True,
        subject="random-s0",
    )
    seed1 = artifact(root, "init_random", "6" * 16, 0.4)
    call(seed1, "init_random[resnet18, seed 1]")
    lp_r1 = call(
        evaluation(root, LP, "8" * 16, seed1, lp_metrics({"bear": 0.35, "surf": 0.24})),
        f"{LP}[random-s1]",
        subject="random-s1",
    )
    calib = artifact(root, "pretrain_byol", "5" * 16, 3.0)
    call(calib, "pretrain_byol[bn-init]")
    lp_bn = call(
        evaluation(root, LP, "4" * 16, calib, lp_metrics({"bear": 0.45, "surf": 0.30})),
        f"{LP}[byol-bn-init]",
        subject="byol-bn-init",
    )
    knn = call(evaluation(root, "eval_knn", "3" * 16, ckpt, {"top1": 41.25}), "eval_knn[byol]")
    knn_r = call(evaluation(root, "eval_knn", "2" * 16, seed0, {"top1": 12.5}), "eval_knn[random]")
    new, old = _record(
        "byol",
        "pretrain_byol",
        "vfs_resnet",
        [(30, lp_mid), (60, lp_b)],
        {"random-s0": lp_r0, "random-s1": lp_r1, "bn-init": lp_bn},
        knn,
        knn_r,
    )
    run = FlowRun("byol", call.runs, [new])
    return run, {"flow": "byol", "stages": call.old, "evaluations": [old]}


def vfs_run(root: Path) -> tuple[FlowRun, dict[str, Any]]:
    """A ViT method flow: one point, one random seed with no metrics, no BN init and no k-NN."""
    call = _Calls()
    ckpt = artifact(root, "pretrain_vfs", "1" * 16, 90.0, metadata={"steps": 40})
    call(ckpt, "pretrain_vfs")
    lp = call(
        evaluation(root, LP, "0" * 16, ckpt, lp_metrics({"bear": 0.5})),
        f"{LP}[vfs]",
        subject="vfs",
    )
    seed0 = artifact(root, "init_random", "f" * 16, 0.4)
    call(seed0, "init_random[vit_tiny, seed 0]")
    lp_r0 = call(evaluation(root, LP, "f0" * 8, seed0), f"{LP}[random-s0]", subject="random-s0")
    new, old = _record("vfs", "pretrain_vfs", None, [(40, lp)], {"random-s0": lp_r0})
    run = FlowRun("vfs", call.runs, [new])
    return run, {"flow": "vfs", "stages": call.old, "evaluations": [old]}


def demo_run(root: Path) -> tuple[FlowRun, dict[str, Any]]:
    """The demo's run of the two method flows above (``table`` left out: the report rebuilds it)."""
    byol, byol_old = byol_run(root)
    vfs, vfs_old = vfs_run(root)
    run = FlowRun("demo", byol.stages + vfs.stages, flows=[byol, vfs])
    old = {"flow": "demo", "stages": byol_old["stages"] + vfs_old["stages"]}
    return run, {**old, "flows": [byol_old, vfs_old]}
