"""Stage ``eval_parts``: VIP semantic part propagation on frozen features, scored with mIoU.

The UVC protocol that SiamMAE Table 1 follows (``correlearn/eval/parts.py``).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field
from tqdm import tqdm

from correlearn.config import StrictModel
from correlearn.eval import parts
from correlearn.eval.label_propagation import write_davis_masks
from correlearn.stage import StageContext, StageSpec
from correlearn.viz.overlay import contact_sheet
from stages.eval_datasets import EvalDatasetSpec, eval_root, fingerprint_files, get_eval_dataset
from stages.eval_dense import Preset, propagation_setup

# SiamMAE Sec. 4.2 "a single context frame" (UVC --pre_num 1) and Table 4b's VIP column
# (top-k 10, neighbourhood 8; its queue length 20 is ``params: {context_frames: 20}``).
PROTOCOL = {"context_frames": 1, "topk": 10, "radius": 8, "short_side": None}


class EvalPartsConfig(StrictModel):
    """Config of ``eval_parts``.

    Attributes:
        dataset: a ``layout: vip`` dataset under ``datasets:``.
        split: the video list ``lists/<split>_videos.txt`` (unless the dataset names ``videos``).
        preset: label-propagation preset (``auto`` as ``eval_label_propagation``), then the
            protocol's ``context_frames 1, topk 10, radius 8``, then ``params``.
        params: overrides of :class:`~correlearn.eval.label_propagation.LabelPropConfig`.
        image_size: frames are resized to this square (UVC ``--scale_size 560 560``).
        score_first: score the given first frame too, as the reference evaluation does.
        max_frames: only the first N frames of each video (CPU budgets).
        device: ``auto`` uses CUDA when present.
    """

    dataset: str = "vip"
    split: str = "val"
    preset: Preset = "auto"
    params: dict[str, Any] = Field(default_factory=dict)
    image_size: int = Field(parts.IMAGE_SIZE, ge=8)
    score_first: bool = True
    max_frames: int | None = Field(None, ge=2)
    device: str = "auto"


def _videos(spec: EvalDatasetSpec, root, cfg: EvalPartsConfig) -> list[str]:
    return (spec.videos or parts.read_video_list(root, cfg.split))[: spec.max_items]


def _resolve(cfg: EvalPartsConfig, pipe) -> dict:
    spec = get_eval_dataset(pipe, cfg.dataset, "vip")
    root = eval_root(spec, pipe.base_dir)
    ann = parts.annotation_dir(root)
    files = []
    for v in _videos(spec, root, cfg):
        files += sorted((root / "Images" / v).glob("*.jpg")) + sorted((ann / v).glob("*.png"))
    return {"source": fingerprint_files(spec, root, files)}


def run(ctx: StageContext) -> dict:
    """Propagate each video's first part map, write PNGs and contact sheets, score mIoU."""
    cfg: EvalPartsConfig = ctx.config
    spec = EvalDatasetSpec.model_validate(ctx.resolved["source"]["dataset"])
    root = eval_root(spec, ctx.base_dir)
    feature_fn, lp, meta, device = propagation_setup(
        ctx, cfg.preset, PROTOCOL, cfg.params, cfg.device
    )
    videos = _videos(spec, root, cfg)
    ctx.info(f"{len(videos)} videos, preset {meta['preset']}, {cfg.image_size}px ({device})")
    n = len(parts.CLASSES)
    hist = None
    for video in tqdm(videos, "part propagation", disable=None):
        frames, gts, names = parts.load_video(root, video)
        frames, gts, names = (
            frames[: cfg.max_frames],
            gts[: cfg.max_frames],
            names[: cfg.max_frames],
        )
        if len(frames) < 2:
            ctx.skip(video, f"{len(frames)} frame(s): nothing to propagate to")
            continue
        preds = parts.propagate_parts(feature_fn, frames, gts[0], lp, cfg.image_size, n, device)
        write_davis_masks(ctx.out_dir / "masks", video, preds, names)
        h = parts.score_video(preds, gts, n, cfg.score_first)
        hist = h if hist is None else hist + h
        sheet = ctx.out_dir / "pictures" / f"{video}.png"
        sheet.parent.mkdir(exist_ok=True)
        shown = [g if g is not None else p * 0 for g, p in zip(gts, preds, strict=True)]
        contact_sheet(frames, preds, shown, n=6, path=sheet)
        ctx.picture(sheet)
    if hist is None:
        raise ValueError(f"{root}: no video with at least 2 frames to evaluate")
    metrics = parts.miou(hist)
    (ctx.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    ctx.log_metrics({k: v for k, v in metrics.items() if isinstance(v, float)})
    ctx.count("videos", len(list((ctx.out_dir / "masks").iterdir())))
    return meta


STAGE = StageSpec(
    name="eval_parts",
    version=1,
    config_model=EvalPartsConfig,
    run=run,
    inputs={"checkpoint": "pretrain_image"},
    resolve=_resolve,
    description="VIP part propagation + mIoU on frozen features",
)
