"""Stage ``train_siamfc_head``: the SiamFC head (two 1x1 convs) trained on frozen res5 features.

The object-tracking protocol VFS follows (VINCE / SeCo) learns only this head, on GOT-10k pairs,
before OTB is tracked (:mod:`correlearn.eval.siamfc_head_fit`). Its own data spec:
``datasets.<name>`` with ``layout: got10k`` (or ``otb``). The artifact holds the backbone it was
trained on (``backbone.pt``, ``backbone.json``) next to ``head.pt`` and ``head.json``, so it is
the checkpoint ``eval_tracking`` takes (:mod:`correlearn.eval.tracking_checkpoint`).
"""

from __future__ import annotations

from pathlib import Path

from correlearn.eval import otb
from correlearn.eval.eval_datasets import EvalDatasetSpec, resolve_source, source_of
from correlearn.eval.siamfc_head_fit import (
    TrainSiamFCHeadConfig,
    default_out_scale,
    fit_head,
    total_steps,
    usable_sequences,
)
from correlearn.eval.tracking_checkpoint import (
    link_backbone,
    load_tracking_backbone,
    res5_features,
    write_head,
)
from correlearn.stage import StageContext, StageSpec
from correlearn.train.distributed import resolve_device
from correlearn.viz.curves import plot_loss_curve


def _sequences(spec: EvalDatasetSpec, root: Path) -> list[otb.TrackSequence]:
    if spec.layout == "otb":
        seqs = otb.read_otb(root, spec.videos)
    else:
        seqs = otb.read_got10k(root, spec.subset, spec.videos)
    return seqs[: spec.max_items]


def _resolve(cfg: TrainSiamFCHeadConfig, pipe) -> dict:
    specs = (pipe.raw.get("datasets") or {}).get(cfg.dataset) or {}
    layout = "otb" if specs.get("layout") == "otb" else "got10k"

    def files(spec: EvalDatasetSpec, root: Path) -> list[Path]:
        return [f for s in _sequences(spec, root) for f in s.frames + s.labels]

    return resolve_source(pipe, cfg.dataset, layout, files)


def run(ctx: StageContext) -> dict:
    """Train the head, write ``head.pt``, ``head.json``, the backbone files and a loss curve."""
    cfg: TrainSiamFCHeadConfig = ctx.config
    usable = usable_sequences(_sequences(*source_of(ctx)), ctx.skip)
    device = resolve_device(cfg.device)
    backbone, meta = load_tracking_backbone(ctx.input_path("checkpoint"), device)
    total, _ = total_steps(cfg, len(usable))
    ctx.info(f"{len(usable)} sequences, {total} steps of {cfg.batch_size} pairs ({device})")

    def log(step: int, loss: float) -> None:
        ctx.log_metrics({"loss": loss}, step=step)

    in_ch = meta["channels"]
    head, history = fit_head(
        res5_features(backbone), in_ch, meta["total_stride"], usable, cfg, device, log
    )
    info = {"in_channels": in_ch, "channels": cfg.channels or in_ch, "convs": True}
    scale = cfg.out_scale or default_out_scale(in_ch)
    info.update(out_scale=scale, exemplar_size=cfg.exemplar_size, steps=total)
    write_head(head, info, ctx.out_dir)
    link_backbone(ctx.input_path("checkpoint"), ctx.out_dir)
    plot_loss_curve(history, ctx.out_dir / "loss.png", "SiamFC head")
    ctx.picture(ctx.out_dir / "loss.png")
    ctx.count("sequences", len(usable))
    ctx.count("steps", total)
    return {**meta, "head": info, "final_loss": history[-1][1]}


STAGE = StageSpec(
    name="train_siamfc_head",
    version=1,
    config_model=TrainSiamFCHeadConfig,
    run=run,
    inputs={"checkpoint": "pretrain_byol"},
    resolve=_resolve,
    description="SiamFC head (1x1 convs) on frozen res5, GOT-10k pairs",
)
