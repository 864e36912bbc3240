"""Stage ``eval_svm``: linear SVMs on frozen pooled features, VOC07 mAP (full and low-shot).

ORL's classification protocol (the OpenSelfSup / FAIR benchmark, :mod:`correlearn.eval.svm`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.eval import svm
from correlearn.eval.eval_datasets import EvalDatasetSpec, resolve_source, source_of
from correlearn.eval.eval_stage import Evaluation, eval_stage
from correlearn.models.io import load_backbone, read_backbone_json
from correlearn.stage import StageContext
from correlearn.train.distributed import resolve_device


class EvalSVMConfig(StrictModel):
    """Config of ``eval_svm``.

    Attributes:
        dataset: a ``layout: voc07`` dataset under ``datasets:`` (``max_items`` keeps the first
            N images of each split).
        modes: ``full`` (3-fold cross-validated cost per class) and/or ``low_shot``.
        costs: the SVM cost sweep (reference: 1, 10, 100 and 0.5^4 .. 0.5^19).
        k_values: low-shot positives per class.
        samples: low-shot independent draws per k.
        seed: seed of the low-shot draws.
        short_side: images resized to this short side, then to ``image_size`` square.
        image_size: network input side (reference 224).
        layer: dense layer pooled into "feat5" (``res5``; ViTs ignore it: patch tokens).
        device: ``auto`` uses CUDA when present.
        precision: feature extraction in ``fp32`` (the reference's ``extract_features``, default)
            or ``bf16`` autocast on CUDA (faster; AP may differ slightly).
    """

    dataset: str = "voc07"
    modes: list[Literal["full", "low_shot"]] = Field(
        default_factory=lambda: ["full", "low_shot"], min_length=1
    )
    costs: list[float] = Field(default_factory=lambda: list(svm.COSTS), min_length=1)
    k_values: list[int] = Field(default_factory=lambda: list(svm.LOW_SHOT_K), min_length=1)
    samples: int = Field(svm.LOW_SHOT_SAMPLES, ge=1)
    seed: int = 0
    short_side: int = Field(256, ge=8)
    image_size: int = Field(224, ge=8)
    layer: str = "res5"
    device: str = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"


def _split(spec: EvalDatasetSpec, root: Path, split: str):
    paths, labels, names = svm.read_voc07(root, split)
    n = spec.max_items or len(paths)
    return paths[:n], labels[:n], names


def _resolve(cfg: EvalSVMConfig, pipe) -> dict:
    def files(spec: EvalDatasetSpec, root: Path) -> list[Path]:
        voc = svm.voc07_root(root)
        found = sorted((voc / "ImageSets" / "Main").glob("*.txt"))
        for split in ("trainval", "test"):
            found += [p for p in _split(spec, root, split)[0] if p.is_file()]
        return found

    return resolve_source(pipe, cfg.dataset, "voc07", files)


def run(ctx: StageContext) -> Evaluation:
    """Extract features of trainval and test, train and test the SVMs, write ``metrics.json``."""
    cfg: EvalSVMConfig = ctx.config
    spec, root = source_of(ctx)
    backbone = load_backbone(ctx.input_path("checkpoint")).to(resolve_device(cfg.device))
    meta = read_backbone_json(ctx.input_path("checkpoint"))
    layer = backbone.info.dense_layer(cfg.layer)  # a ViT has one dense map: its last block
    tr_p, tr_y, names = _split(spec, root, "trainval")
    te_p, te_y, te_names = _split(spec, root, "test")
    if names != te_names:
        raise ValueError(f"{root}: trainval classes {names} differ from test classes {te_names}")
    size, prec = (cfg.short_side, cfg.image_size), cfg.precision
    tr_x = svm.image_features(backbone, tr_p, *size, layer, "trainval", prec)
    te_x = svm.image_features(backbone, te_p, *size, layer, "test", prec)
    np.save(ctx.out_dir / "features_trainval.npy", tr_x.astype(np.float32))
    np.save(ctx.out_dir / "features_test.npy", te_x.astype(np.float32))
    metrics: dict[str, object] = {"classes": names}
    logged: dict[str, float] = {}
    if "full" in cfg.modes:
        ctx.info(f"full: {len(names)} classes x {len(cfg.costs)} costs, 3-fold")
        full = svm.full_svm(tr_x, tr_y, te_x, te_y, cfg.costs)
        metrics.update(mAP=full["mAP"], AP=dict(zip(names, full["AP"], strict=True)))
        metrics["chosen_costs"] = dict(zip(names, full["costs"], strict=True))
        logged["mAP"] = full["mAP"]
    if "low_shot" in cfg.modes:
        ctx.info(f"low-shot: k {cfg.k_values} x {cfg.samples} samples")
        low = svm.low_shot_svm(
            tr_x, tr_y, te_x, te_y, cfg.k_values, cfg.samples, cfg.costs, cfg.seed
        )
        metrics["low_shot"] = low
        logged.update({f"low_shot_mAP/{k}": v["mean"] for k, v in low.items()})
    ctx.count("trainval_images", len(tr_p))
    ctx.count("test_images", len(te_p))
    return Evaluation(metrics, meta={"feature_dim": int(tr_x.shape[1]), **meta}, logged=logged)


STAGE = eval_stage(
    "eval_svm",
    1,
    EvalSVMConfig,
    run,
    _resolve,
    "VOC07 linear SVMs (full + low-shot) on frozen pooled features",
)
