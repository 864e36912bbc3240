"""Stage ``eval_tracking``: SiamFC on frozen res5 over an OTB-layout set; precision and success.

The VINCE / SeCo protocol VFS reports (Tables 1-8; :mod:`correlearn.eval.object_tracking`). Its
checkpoint is, by default, a ``train_siamfc_head`` artifact (backbone + trained 1x1-conv head,
:mod:`correlearn.eval.tracking_checkpoint`); ``head: none`` tracks with the plain xcorr of the
checkpoint's own features instead. Next to the tracker it scores the "copy the first box" baseline
on the same boxes (:func:`correlearn.eval.otb.otb_report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import Field
from tqdm import tqdm

from correlearn.config import StrictModel
from correlearn.eval import otb
from correlearn.eval.eval_datasets import EvalDatasetSpec, resolve_source, source_of
from correlearn.eval.eval_stage import Evaluation, eval_stage
from correlearn.eval.object_tracking import SIAMFC, SiamFCTracker
from correlearn.eval.tracking_checkpoint import load_tracking_backbone, res5_features, tracking_head
from correlearn.stage import StageContext
from correlearn.train.distributed import resolve_device
from correlearn.viz.tracking_plots import box_sheet, plot_otb_curves


class SiamFCParams(StrictModel):
    """SiamFC inference hyper-parameters (VFS ``default_config_base.py`` = VINCE's solver).

    Attributes:
        exemplar_size: exemplar side (120 in both references; the SiamFC paper's 127 is a
            setting); a trained head's own value wins.
        instance_size: search side (255).
        context: context margin, a fraction of (w + h) (0.5).
        scale_num: scales in the pyramid (3).
        scale_step: ratio between neighbouring scales (1.0375).
        scale_lr: damping of the size update (0.59).
        scale_penalty: factor on the non-central scales' responses (0.9745).
        window_influence: weight of the cosine (Hann) window (0.176).
        response_size: response side the upsampling assumes (17).
        response_up: response upsampling factor (16, bicubic).
        out_scale: response scale of ``head: none`` (0.001).
    """

    exemplar_size: int = Field(SIAMFC["exemplar_size"], ge=16)
    instance_size: int = Field(SIAMFC["instance_size"], ge=32)
    context: float = Field(SIAMFC["context"], ge=0)
    scale_num: int = Field(SIAMFC["scale_num"], ge=1)
    scale_step: float = Field(SIAMFC["scale_step"], gt=0)
    scale_lr: float = Field(SIAMFC["scale_lr"], ge=0, le=1)
    scale_penalty: float = Field(SIAMFC["scale_penalty"], gt=0)
    window_influence: float = Field(SIAMFC["window_influence"], ge=0, le=1)
    response_size: int = Field(SIAMFC["response_size"], ge=1)
    response_up: int = Field(SIAMFC["response_up"], ge=1)
    out_scale: float = Field(SIAMFC["out_scale"], gt=0)


class EvalTrackingConfig(StrictModel):
    """Config of ``eval_tracking``.

    Attributes:
        dataset: a ``layout: otb`` dataset under ``datasets:`` (``videos`` picks sequences).
        head: ``trained`` (the protocol: the checkpoint must be a ``train_siamfc_head``
            artifact) or ``none`` (parameter-free xcorr of the checkpoint's res5).
        params: SiamFC hyper-parameters.
        max_frames: only the first N frames of each sequence (CPU budgets).
        device: ``auto`` uses CUDA when present.
    """

    dataset: str = "otb"
    head: Literal["trained", "none"] = "trained"
    params: SiamFCParams = Field(default_factory=SiamFCParams)
    max_frames: int | None = Field(None, ge=2)
    device: str = "auto"


def _sequences(
    spec: EvalDatasetSpec, root: Path, cfg: EvalTrackingConfig
) -> list[otb.TrackSequence]:
    seqs = otb.read_otb(root, spec.videos)[: spec.max_items]
    for s in seqs:
        s.frames, s.boxes = s.frames[: cfg.max_frames], s.boxes[: cfg.max_frames]
    return seqs


def _resolve(cfg: EvalTrackingConfig, pipe) -> dict:
    def files(spec: EvalDatasetSpec, root: Path) -> list[Path]:
        return [f for s in _sequences(spec, root, cfg) for f in s.frames + s.labels]

    return resolve_source(pipe, cfg.dataset, "otb", files)


def run(ctx: StageContext) -> Evaluation:
    """Track every sequence, write boxes, ``metrics.json``, the OTB plots and box sheets."""
    cfg: EvalTrackingConfig = ctx.config
    seqs = _sequences(*source_of(ctx), cfg)
    device = resolve_device(cfg.device)
    ckpt = ctx.input_path("checkpoint")
    backbone, meta = load_tracking_backbone(ckpt, device)
    params = cfg.params.model_dump()
    head, params = tracking_head(ckpt, cfg.head, params, meta["channels"], device)
    tracker = SiamFCTracker(res5_features(backbone), head, meta["total_stride"], params, device)
    ctx.info(f"{len(seqs)} sequences, head {cfg.head}, stride {meta['total_stride']} ({device})")
    box_dir, pic_dir = ctx.out_dir / "boxes", ctx.out_dir / "pictures"
    box_dir.mkdir(exist_ok=True)
    pic_dir.mkdir(exist_ok=True)
    results, copy_first = {}, {}
    for s in tqdm(seqs, "tracking", disable=None):
        if len(s.frames) < 2:
            ctx.skip(s.name, f"{len(s.frames)} frame(s): nothing to track")
            continue
        frames = [otb.read_rgb(f) for f in s.frames]
        pred = tracker.track(list(range(len(frames))), s.boxes[0], frames.__getitem__)
        np.savetxt(box_dir / f"{s.name}.txt", pred, fmt="%.3f", delimiter=",")
        results[s.name] = (pred, s.boxes)
        copy_first[s.name] = (np.repeat(s.boxes[:1], len(s.boxes), axis=0), s.boxes)
        Image.fromarray(box_sheet(frames, pred, s.boxes)).save(pic_dir / f"{s.name}.jpg")
        ctx.picture(pic_dir / f"{s.name}.jpg")
    metrics = otb.otb_report(results)
    metrics["copy_first_box"] = otb.otb_report(copy_first)
    curves = {"SiamFC": metrics, "copy first box": metrics["copy_first_box"]}
    for path in plot_otb_curves(curves, ctx.out_dir):
        ctx.picture(path)
    ctx.count("sequences", len(results))
    logged = {"precision": metrics["precision"], "success": metrics["success"]}
    return Evaluation(metrics, meta={**meta, "head": cfg.head, "params": params}, logged=logged)


STAGE = eval_stage(
    "eval_tracking",
    1,
    EvalTrackingConfig,
    run,
    _resolve,
    "OTB tracking: SiamFC on frozen res5, precision@20px + success AUC",
    checkpoint_from="train_siamfc_head",
)
