"""Stage ``eval_pose``: JHMDB keypoint propagation on frozen features, scored with PCK@0.1/0.2.

The CRW / UVC protocol that SiamMAE Table 1 and VFS follow (:mod:`correlearn.eval.pose`); the
shared set-up is :func:`~correlearn.eval.propagation_stage.propagation_stage`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from tqdm import tqdm

from correlearn.config import StrictModel
from correlearn.eval import pose
from correlearn.eval.dense_setup import Preset
from correlearn.eval.eval_datasets import EvalDatasetSpec
from correlearn.eval.label_prop_config import LabelPropOverrides
from correlearn.eval.propagation_stage import PropagationRun, propagation_stage
from correlearn.stage import StageContext
from correlearn.viz.keypoints import keypoint_sheet


class EvalPoseConfig(StrictModel):
    """Config of ``eval_pose``.

    Attributes:
        dataset: a ``layout: jhmdb`` dataset under ``datasets:``.
        split: official JHMDB split (CRW and UVC use split 1).
        subset: ``test`` (split label 2) or ``train`` (label 1).
        preset: label-propagation preset (``auto`` as ``eval_label_propagation``); then the
            preset's reference's JHMDB settings (:mod:`correlearn.eval.protocol_presets`); then
            ``params`` (``{context_frames: 1}``: the SiamMAE paper's single context frame).
        params: overrides of :class:`~correlearn.eval.label_propagation.LabelPropConfig`.
        image_size: frames are resized to this square; None: the preset's reference (320).
        sigma: joint Gaussian width in feature cells (CRW and CropMAE 0.5, VFS 4 px = 0.5 cells).
        readout_topk: cells averaged to read a joint back; None: the preset's reference (CRW 3,
            VFS and CropMAE 5).
        thresholds: the a of PCK@a, relative to 0.6 x the GT joints' box diagonal.
        max_frames: only the first N frames of each video (CPU budgets).
        device: ``auto`` uses CUDA when present.
    """

    dataset: str = "jhmdb"
    split: int = Field(1, ge=1, le=3)
    subset: Literal["test", "train"] = "test"
    preset: Preset = "auto"
    params: LabelPropOverrides = Field(default_factory=dict)
    image_size: int | None = Field(None, ge=8)
    sigma: float = Field(pose.SIGMA, ge=0)
    readout_topk: int | None = Field(None, ge=1)
    thresholds: list[float] = Field(default_factory=lambda: list(pose.THRESHOLDS), min_length=1)
    max_frames: int | None = Field(None, ge=2)
    device: str = "auto"


def _videos(spec: EvalDatasetSpec, root: Path, cfg: EvalPoseConfig) -> list[str]:
    videos = spec.videos or pose.read_split(root, cfg.split, cfg.subset)
    return videos[: spec.max_items]


def _files(root: Path, videos: list[str]) -> list[Path]:
    files = []
    for v in videos:
        files += sorted((root / "Rename_Images" / v).glob("*.png"))
        files.append(root / "joint_positions" / v / "joint_positions.mat")
    # The split lists choose the videos and their train/test labels.
    files += sorted((root / "splits").glob("*.txt"))
    return [f for f in files if f.is_file()]


def _evaluate(ctx: StageContext, prop: PropagationRun) -> dict:
    """Propagate each video's first-frame joints, write predictions, PCK and pictures."""
    cfg: EvalPoseConfig = ctx.config
    dense = prop.dense
    pred_dir, pic_dir = ctx.out_dir / "keypoints", ctx.out_dir / "pictures"
    pred_dir.mkdir(exist_ok=True)
    pic_dir.mkdir(exist_ok=True)
    distances = []
    for video in tqdm(prop.videos, "pose propagation", disable=None):
        frames, joints = pose.load_video(prop.root, video)
        frames, joints = frames[: cfg.max_frames], joints[: cfg.max_frames]
        if len(frames) < 2:
            ctx.skip(video, f"{len(frames)} frame(s): nothing to propagate to")
            continue
        pred = pose.propagate_pose(
            dense.feature_fn, frames, joints[0], dense.lp,
            prop.settings["image_size"], cfg.sigma, prop.settings["readout_topk"], dense.device,
        )  # fmt: skip
        name = video.replace("/", "__")
        np.save(pred_dir / f"{name}.npy", pred)
        distances.append(pose.normalized_distances(pred, joints))
        keypoint_sheet(frames, pred, joints, path=pic_dir / f"{name}.png")
        ctx.picture(pic_dir / f"{name}.png")
    ctx.count("videos", len(distances))
    return pose.pck(distances, cfg.thresholds)


STAGE = propagation_stage(
    "eval_pose",
    2,
    EvalPoseConfig,
    layout="jhmdb",
    protocol="pose",
    videos=_videos,
    files=_files,
    evaluate=_evaluate,
    description="JHMDB pose propagation + PCK@0.1/0.2 on frozen features",
)
