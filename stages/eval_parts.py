"""Stage ``eval_parts``: VIP semantic part propagation on frozen features, scored with mIoU.

The UVC protocol that SiamMAE Table 1 follows (:mod:`correlearn.eval.parts`); the shared set-up
is :func:`~correlearn.eval.propagation_stage.propagation_stage`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from tqdm import tqdm

from correlearn.config import StrictModel
from correlearn.eval import parts
from correlearn.eval.dense_setup import Preset
from correlearn.eval.eval_datasets import EvalDatasetSpec
from correlearn.eval.label_prop_config import LabelPropOverrides
from correlearn.eval.label_propagation import write_davis_masks
from correlearn.eval.propagation_stage import PropagationRun, propagation_stage
from correlearn.stage import StageContext
from correlearn.viz.overlay import contact_sheet


class EvalPartsConfig(StrictModel):
    """Config of ``eval_parts``.

    Attributes:
        dataset: a ``layout: vip`` dataset under ``datasets:``.
        split: the video list ``lists/<split>_videos.txt`` (unless the dataset names ``videos``).
        preset: label-propagation preset (``auto`` as ``eval_label_propagation``), then the
            preset's reference's VIP settings (:mod:`correlearn.eval.protocol_presets`), then
            ``params`` (``{context_frames: 1}``: the SiamMAE paper's single context frame).
        params: overrides of :class:`~correlearn.eval.label_propagation.LabelPropConfig`.
        image_size: frames are resized to this square (UVC ``--scale_size 560 560``); None: the
            preset's reference.
        long_side: instead, frames are resized to this long side with the short side floored to
            a multiple of 64 (CropMAE, 880); None: the preset's reference.
        score_first: score the given first frame too, as the reference evaluation does.
        max_frames: only the first N frames of each video (CPU budgets).
        device: ``auto`` uses CUDA when present.
    """

    dataset: str = "vip"
    split: str = "val"
    preset: Preset = "auto"
    params: LabelPropOverrides = Field(default_factory=dict)
    image_size: int | None = Field(None, ge=8)
    long_side: int | None = Field(None, ge=64)
    score_first: bool = True
    max_frames: int | None = Field(None, ge=2)
    device: str = "auto"


def _videos(spec: EvalDatasetSpec, root: Path, cfg: EvalPartsConfig) -> list[str]:
    return (spec.videos or parts.read_video_list(root, cfg.split))[: spec.max_items]


def _files(root: Path, videos: list[str]) -> list[Path]:
    ann = parts.annotation_dir(root)
    files = []
    for v in videos:
        files += sorted((root / "Images" / v).glob("*.jpg")) + sorted((ann / v).glob("*.png"))
    return files + sorted((root / "lists").glob("*.txt"))  # the video lists choose the videos


def _evaluate(ctx: StageContext, prop: PropagationRun) -> dict:
    """Propagate each video's first part map, write PNGs and contact sheets, score mIoU."""
    cfg: EvalPartsConfig = ctx.config
    dense, n = prop.dense, len(parts.CLASSES)
    hist = None
    for video in tqdm(prop.videos, "part propagation", disable=None):
        frames, gts, names = parts.load_video(prop.root, video)
        frames, gts, names = (
            frames[: cfg.max_frames],
            gts[: cfg.max_frames],
            names[: cfg.max_frames],
        )
        if len(frames) < 2:
            ctx.skip(video, f"{len(frames)} frame(s): nothing to propagate to")
            continue
        size = parts.frame_size(frames[0].shape[:2], **prop.settings)
        preds = parts.propagate_parts(
            dense.feature_fn, frames, gts[0], dense.lp, size, n, dense.device
        )
        write_davis_masks(ctx.out_dir / "masks", video, preds, names)
        h = parts.score_video(preds, gts, n, cfg.score_first)
        hist = h if hist is None else hist + h
        sheet = ctx.out_dir / "pictures" / f"{video}.png"
        sheet.parent.mkdir(exist_ok=True)
        shown = [g if g is not None else p * 0 for g, p in zip(gts, preds, strict=True)]
        contact_sheet(frames, preds, shown, n=6, path=sheet)
        ctx.picture(sheet)
    if hist is None:
        raise ValueError(f"{prop.root}: no video with at least 2 frames to evaluate")
    ctx.count("videos", len(list((ctx.out_dir / "masks").iterdir())))
    return parts.miou(hist)


STAGE = propagation_stage(
    "eval_parts",
    2,
    EvalPartsConfig,
    layout="vip",
    protocol="parts",
    videos=_videos,
    files=_files,
    evaluate=_evaluate,
    description="VIP part propagation + mIoU on frozen features",
)
