"""Stage ``eval_label_propagation``: DAVIS video object segmentation by label propagation.

Frozen features, the first frame's mask propagated through the video (VFS Sec. 4.1; the protocol
and its presets: :mod:`correlearn.eval.label_propagation`), scored with the DAVIS J&F
(:mod:`correlearn.eval.davis_metrics`).
"""

from __future__ import annotations

import shutil
from typing import Literal

import torch
from pydantic import Field
from tqdm import tqdm

from correlearn.config import StrictModel
from correlearn.data.fingerprint import fingerprint, get_dataset
from correlearn.data.sources import DatasetSpec, resolve_root
from correlearn.eval.davis_folder import check_davis, sequence_list
from correlearn.eval.davis_metrics import evaluate_dataset
from correlearn.eval.dense_setup import Preset, dense_setup
from correlearn.eval.eval_stage import Evaluation, eval_stage
from correlearn.eval.label_prop_config import LabelPropOverrides
from correlearn.eval.label_propagation import (
    load_davis_sequence,
    masks_read_back,
    propagate_sequence,
    write_davis_masks,
)
from correlearn.stage import StageContext
from correlearn.viz.overlay import contact_sheet


class EvalLabelPropConfig(StrictModel):
    """Config of ``eval_label_propagation``.

    Attributes:
        dataset: a DAVIS-layout dataset under ``datasets:`` (``JPEGImages/480p``,
            ``Annotations/480p``); point it at DAVIS 2016/2017 val for published protocols.
        preset: ``auto`` picks ``crw_resnet`` for an imported CRW release, ``vfs_resnet`` for
            other ResNets, ``siammae_vit`` for SiamMAE and CropMAE checkpoints and ``dino_vit``
            for other ViTs.
        params: overrides of the preset's :class:`LabelPropConfig` fields (e.g. ``short_side``).
        max_frames: evaluate only the first N frames of each sequence (CPU budgets).
        device: ``auto`` uses CUDA when present.
        precision: feature extraction in ``fp32`` (default, as the reference codes evaluate) or
            ``bf16`` autocast (CUDA only; faster, results may differ slightly).
    """

    dataset: str = "davis"
    preset: Preset = "auto"
    params: LabelPropOverrides = Field(default_factory=dict)
    max_frames: int | None = Field(None, ge=3)
    device: str = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"


def _resolve(cfg: EvalLabelPropConfig, pipe) -> dict:
    spec = get_dataset(pipe, cfg.dataset)
    root = resolve_root(spec, pipe.base_dir)
    listed = sequence_list(root) if spec.sequences is None else None
    if listed is not None:  # the official val list; an explicit `sequences` wins
        spec = spec.model_copy(update={"sequences": listed[0]})
    # Checked here, before the stage's folder and run exist: a bad folder is one error line.
    check_davis(root, spec.sequences, cfg.max_frames)
    source = fingerprint(spec, pipe.base_dir, videos=True)
    if listed is not None:
        source["sequence_list"] = str(listed[1].relative_to(root))
    return {"source": source}


def run(ctx: StageContext) -> Evaluation:
    """Propagate every sequence's first mask, write DAVIS PNGs and contact sheets; score J&F."""
    cfg: EvalLabelPropConfig = ctx.config
    dense = dense_setup(
        ctx.input_path("checkpoint"), cfg.preset, None, cfg.params, cfg.device, cfg.precision
    )
    lp, device = dense.lp, dense.device
    data = DatasetSpec.model_validate(ctx.resolved["source"]["dataset"])
    root = resolve_root(data, ctx.base_dir)
    checked = check_davis(root, data.sequences, cfg.max_frames)
    listed = ctx.resolved["source"].get("sequence_list")
    ctx.info(f"scoring {len(checked)} sequences ({listed or 'the given list or every folder'})")
    for stray in (p for s in checked for p in s.stray):
        ctx.skip(str(stray), "not a frame (.jpg, .jpeg, .png)")
    seqs = [s.name for s in checked]
    n_frames = {s.name: len(s.frames) for s in checked}
    masks_dir = ctx.out_dir / "masks"
    ctx.info(
        f"{len(seqs)} sequences, preset {dense.meta['preset']}, context {lp.context} "
        f"({dense.meta['backbone']}, {device}, {cfg.precision})"
    )
    for seq in tqdm(seqs, "label propagation", disable=None):
        if masks_read_back(masks_dir / seq, n_frames[seq]):
            continue  # finished before an interruption (the stage is resumable)
        shutil.rmtree(masks_dir / seq, ignore_errors=True)  # a part, or a file that does not read
        frames, gts, names = load_davis_sequence(root, seq, cfg.max_frames)
        if len(frames) < 3:
            ctx.skip(seq, f"{len(frames)} frames: J&F needs at least 3")
            continue
        with torch.inference_mode():
            preds = propagate_sequence(dense.feature_fn, frames, gts[0], lp, device)
        write_davis_masks(masks_dir, seq, preds, names)
        sheet = ctx.out_dir / "pictures" / f"{seq}.png"
        sheet.parent.mkdir(exist_ok=True)
        contact_sheet(frames, preds, gts, n=6, path=sheet)
        ctx.picture(sheet)
    done = [s for s in seqs if (masks_dir / s).is_dir()]
    metrics = evaluate_dataset(masks_dir, root / "Annotations" / "480p", done, cfg.max_frames)
    ctx.count("sequences", len(done))
    logged = {k: v for k, v in metrics.items() if isinstance(v, float)}
    logged.update({f"JF/{seq}": m["JF_mean"] for seq, m in metrics["per_sequence"].items()})
    return Evaluation(metrics, meta=dense.meta, logged=logged)


STAGE = eval_stage(
    "eval_label_propagation",
    # 2: per-preset context modes (VFS/CRW/DINO reference), fp32 features on CUDA by default.
    2,
    EvalLabelPropConfig,
    run,
    _resolve,
    "DAVIS label propagation + J&F on frozen features",
    resumable=True,
)
