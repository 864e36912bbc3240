"""Stage ``eval_finetune``: end-to-end fine-tuning on a class-folder set, top-1 / top-5 (CIM Tables 5-6).

Recipes in :mod:`correlearn.eval.finetune_recipe` (``vit_mae`` for ViTs, ``resnet_rsb_a3`` for
ResNets); the library loop is :mod:`correlearn.eval.finetune`, the labels those of the probes
(:func:`correlearn.eval.probe_data.labelled_images`). The fine-tuned backbone is written
as ``backbone.pt`` + ``backbone.json``, so the artifact is itself a checkpoint.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from correlearn.config import ConfigError, StrictModel
from correlearn.data.fingerprint import fingerprint, get_dataset
from correlearn.data.sources import DatasetSpec
from correlearn.eval import finetune
from correlearn.eval.eval_stage import Evaluation, eval_stage
from correlearn.eval.finetune_recipe import HParamOverrides, check_recipe, recipe, vit_epochs
from correlearn.eval.probe_data import labelled_images
from correlearn.models import ViT, backbone_info
from correlearn.models.io import (
    BACKBONE_FILE,
    load_backbone,
    read_backbone_json,
    write_backbone_json,
)
from correlearn.stage import StageContext
from correlearn.train.checkpoint import atomic_torch_save
from correlearn.train.distributed import resolve_device
from correlearn.viz.curves import plot_loss_curve


class EvalFinetuneConfig(StrictModel):
    """Config of ``eval_finetune``.

    Attributes:
        dataset: a labelled dataset under ``datasets:`` (``class_folders``; frame-folder layouts
            use the sequence as the label, a sanity check only).
        val_dataset: a second dataset to test on (ImageNet ``val``); None splits ``dataset``.
        split: ``random`` (stratified, seeded) or ``temporal`` (each class's last items test).
        test_fraction: share of each class held out when ``val_dataset`` is None.
        recipe: ``auto`` (ViT -> ``vit_mae``, ResNet -> ``resnet_rsb_a3``) or a recipe name.
        hparams: overrides of :class:`~correlearn.eval.finetune_recipe.FinetuneHParams`.
        max_steps: stop after this many steps (CPU budgets; the schedule is fitted into them);
            None runs ``epochs`` epochs.
        seed: seed of the split, the batches and the augmentations.
        device: ``auto`` uses CUDA when present.
    """

    dataset: str = "default"
    val_dataset: str | None = None
    split: Literal["random", "temporal"] = "random"
    test_fraction: float = Field(0.2, gt=0, lt=1)
    recipe: Literal["auto", "vit_mae", "resnet_rsb_a3"] = "auto"
    hparams: HParamOverrides = Field(default_factory=dict)
    max_steps: int | None = Field(None, ge=1)
    seed: int = 0
    device: str = "auto"


def _resolve(cfg: EvalFinetuneConfig, pipe) -> dict:
    out = {"source": fingerprint(get_dataset(pipe, cfg.dataset), pipe.base_dir, videos=False)}
    if cfg.val_dataset:
        spec = get_dataset(pipe, cfg.val_dataset)
        out["val"] = fingerprint(spec, pipe.base_dir, videos=False)
    return out


def _items(resolved: dict, base) -> tuple[list[str], np.ndarray]:
    spec = DatasetSpec.model_validate(resolved["dataset"])
    items, labels = labelled_images(spec, base, purpose="to fine-tune on")
    return [it.path for it in items], labels


def _data(ctx: StageContext, cfg: EvalFinetuneConfig):
    paths, labels = _items(ctx.resolved["source"], ctx.base_dir)
    if cfg.val_dataset:
        vp, vl = _items(ctx.resolved["val"], ctx.base_dir)
        return (paths, labels), (vp, vl)
    rng = np.random.default_rng(cfg.seed) if cfg.split == "random" else None
    tr, te = finetune.stratified_split(labels, cfg.test_fraction, rng)
    return ([paths[i] for i in tr], labels[tr]), ([paths[i] for i in te], labels[te])


def run(ctx: StageContext) -> Evaluation:
    """Fine-tune, test, write ``metrics.json``, the loss curve and the fine-tuned backbone."""
    cfg: EvalFinetuneConfig = ctx.config
    ckpt = ctx.input_path("checkpoint")
    spec = read_backbone_json(ckpt)
    hp = recipe(cfg.recipe, spec["backbone"], cfg.hparams)
    drop_path = "drop_path_rate" in backbone_info(spec["backbone"]).options
    check_recipe(hp, spec["backbone"])
    (tr_p, tr_y), (te_p, te_y) = _data(ctx, cfg)
    if hp.batch_size > len(tr_p):
        # The recipes' batches (1024-2048) would otherwise try to allocate one huge batch.
        raise ConfigError(
            f"eval_finetune.hparams.batch_size: {hp.batch_size} is larger than the "
            f"{len(tr_p)} training images; set hparams.batch_size to at most {len(tr_p)}"
        )
    device = resolve_device(cfg.device)
    backbone = load_backbone(ckpt, **({"drop_path_rate": hp.drop_path} if drop_path else {}))
    if isinstance(backbone, ViT):
        if "epochs" not in cfg.hparams:  # the recipe's epochs follow the model's size
            hp = hp.model_copy(update={"epochs": vit_epochs(backbone.embed_dim)})
        if hp.pos_embed == "sincos":
            backbone.set_pos_embed("sincos")
    model = finetune.Classifier(backbone, int(tr_y.max()) + 1, hp.pool).to(device)
    spe = max(1, len(tr_p) // hp.batch_size)
    total = min(hp.epochs * spe, cfg.max_steps or hp.epochs * spe)
    ctx.info(f"{len(tr_p)} train / {len(te_p)} test images, {total} steps ({device})")

    def log(step: int, loss: float, lr: float) -> None:
        ctx.log_metrics({"loss": loss, "lr": lr}, step=step)

    history = finetune.train(model, tr_p, tr_y, hp, total, spe, cfg.seed, device, log)
    metrics = {**finetune.evaluate(model, te_p, te_y, hp, device), "steps": total}
    metrics["final_loss"] = history[-1][1]
    plot_loss_curve(history, ctx.out_dir / "loss.png", "fine-tuning")
    ctx.picture(ctx.out_dir / "loss.png")
    atomic_torch_save(finetune.backbone_state(model), ctx.out_dir / BACKBONE_FILE)
    write_backbone_json(ctx.out_dir, spec["backbone"], spec.get("backbone_kwargs", {}), "finetune")
    ctx.count("train_images", len(tr_p))
    ctx.count("test_images", len(te_p))
    meta = {"backbone": spec["backbone"], "hparams": hp.model_dump(mode="json")}
    return Evaluation(
        metrics, meta, logged={k: v for k, v in metrics.items() if k.startswith("top")}
    )


STAGE = eval_stage(
    "eval_finetune",
    1,
    EvalFinetuneConfig,
    run,
    _resolve,
    "end-to-end fine-tuning (MAE/BEiT recipe for ViTs, RSB A3 for ResNets), top-1/5",
)
