"""End-to-end fine-tuning recipes (CIM Tables 5-6): hyper-parameters, layer-wise lr decay, losses.

- ``vit_mae``: the MAE / BEiT recipe as the CIM repository runs it (weivision/Correlational-Image-
  Modeling ``tools/main_finetune.py`` defaults + ``scripts/dist_finetune.sh``): AdamW (0.9, 0.999),
  base lr 1.2e-3 x effective batch / 256, 256 images per GPU (the script's ``--batch_size 256``),
  here 8 of them per step (``accum_iter`` 8: one 8-GPU node, effective batch 2048, lr 9.6e-3),
  layer-wise lr decay 0.8, weight decay 0.05, drop path 0.1, 5 warm-up epochs then a half
  cosine to 1e-6, label smoothing 0.1, mixup 0.8 / cutmix 1.0, RandAugment
  ``rand-m9-mstd0.5-inc1``, random erasing 0.25, global average pool + ``fc_norm``, the fixed
  sin-cos position table, not trained (``models/vit.py``), evaluation crop 0.95
  (``util/datasets.py``); epochs by model size as the script's: 200 for ViT-T/S, 100 for ViT-B,
  50 for ViT-L/H (:func:`vit_epochs`; CIM Sec. 4.2: ViT-S 200, ViT-B 100).
- ``resnet_rsb_a3``: the ResNet-50 recipe the CIM paper cites, "ResNet strikes back" (RSB,
  Wightman et al. 2021) procedure A3 (100 epochs, CIM Table 6's first block): LAMB, lr 8e-3 at
  batch 2048, weight decay 0.02, 5 warm-up epochs + cosine, binary cross-entropy, mixup 0.1 /
  cutmix 1.0, RandAugment ``rand-m6-mstd0.5-inc1``, no stochastic depth, train at 160 px and
  test at 224 px. CIM's supplementary (its exact ResNet settings) is not available here; these
  are RSB's A3 values as we read the RSB paper.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import AfterValidator, Field
from torch import nn

from correlearn.config import ConfigError, StrictModel, overrides_of
from correlearn.models import backbone_info


class FinetuneHParams(StrictModel):
    """One fine-tuning recipe (see the module docstring for the sources of each default set).

    Attributes:
        optimizer: ``adamw`` (MAE/BEiT), ``lamb`` (RSB; timm's ``Lamb``) or ``sgd``.
        base_lr: lr per 256 images (actual lr = base_lr x batch / 256).
        betas: Adam/LAMB betas.
        weight_decay: decoupled weight decay (not on biases, norms, position/class tokens).
        layer_decay: layer-wise lr decay (ViTs; 1.0 = none): block i gets decay^(L + 1 - i).
        drop_path: stochastic depth rate (ViTs; torchvision ResNets have no drop path).
        warmup_epochs: linear warm-up; then a half cosine to ``min_lr``.
        min_lr: final learning rate.
        epochs: schedule length in epochs.
        batch_size: images per forward pass (the reference scripts' per-GPU batch).
        accum_iter: forward passes per optimiser step (MAE's ``accum_iter``): the effective batch
            is ``batch_size x accum_iter``, which also scales the lr.
        loss: ``ce`` (soft-target cross-entropy, label smoothing folded in) or ``bce`` (RSB).
        label_smoothing: smoothing of the one-hot targets.
        mixup: mixup alpha (0 disables).
        cutmix: cutmix alpha (0 disables).
        randaug: timm RandAugment policy string, or None.
        reprob: random-erasing probability.
        train_size: training crop side (random-resized crop, scale 0.08-1).
        test_size: evaluation crop side (resize to test_size / test_crop, centre crop).
        test_crop: the evaluation crop fraction (CIM ``util/datasets.py`` and RSB: 0.95).
        pos_embed: ``sincos``: a ViT's position table is the fixed 2-D sin-cos one and is not
            trained (CIM ``models/vit.py``); ``checkpoint``: the loaded table, trained (timm).
        pool: ``avg`` (mean of patch tokens + ``fc_norm``, MAE's ``global_pool``) or ``cls``.
    """

    optimizer: Literal["adamw", "lamb", "sgd"] = "adamw"
    base_lr: float = Field(1.2e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.05, ge=0)
    layer_decay: float = Field(0.8, gt=0, le=1)
    drop_path: float = Field(0.1, ge=0, lt=1)
    warmup_epochs: float = Field(5, ge=0)
    min_lr: float = Field(1e-6, ge=0)
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(256, ge=2)
    accum_iter: int = Field(8, ge=1)
    loss: Literal["ce", "bce"] = "ce"
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    mixup: float = Field(0.8, ge=0)
    cutmix: float = Field(1.0, ge=0)
    randaug: str | None = "rand-m9-mstd0.5-inc1"
    reprob: float = Field(0.25, ge=0, le=1)
    train_size: int = Field(224, ge=16)
    test_size: int = Field(224, ge=16)
    test_crop: float = Field(0.95, gt=0, le=1)
    pos_embed: Literal["sincos", "checkpoint"] = "sincos"
    pool: Literal["avg", "cls"] = "avg"


RECIPES: dict[str, dict] = {
    "vit_mae": {},
    "resnet_rsb_a3": {
        "optimizer": "lamb",
        "base_lr": 8e-3 * 256 / 2048,
        "weight_decay": 0.02,
        "layer_decay": 1.0,
        "drop_path": 0.0,
        "min_lr": 0.0,
        "batch_size": 2048,
        "accum_iter": 1,
        "loss": "bce",
        "label_smoothing": 0.0,
        "mixup": 0.1,
        "randaug": "rand-m6-mstd0.5-inc1",
        "reprob": 0.0,
        "train_size": 160,
    },
}


#: ``hparams`` of ``eval_finetune``: overrides of the recipe's :class:`FinetuneHParams`, each key and
#: value checked when the config is read.
HParamOverrides = Annotated[dict[str, Any], AfterValidator(overrides_of(FinetuneHParams))]


def vit_epochs(embed_dim: int) -> int:
    """Fine-tuning epochs of a ViT of width ``embed_dim`` (CIM ``scripts/dist_finetune.sh``)."""
    if embed_dim <= 384:  # ViT-T (192) and ViT-S (384)
        return 200
    return 100 if embed_dim <= 768 else 50


#: The recipe ``auto`` picks for each backbone family.
AUTO_RECIPES: dict[str, str] = {"vit": "vit_mae", "resnet": "resnet_rsb_a3"}


def recipe(name: str, backbone: str, overrides: dict) -> FinetuneHParams:
    """The hyper-parameters of ``name`` (``auto``: the family's, :data:`AUTO_RECIPES`)."""
    if name == "auto":
        name = AUTO_RECIPES[backbone_info(backbone).family]
    return FinetuneHParams.model_validate({**RECIPES[name], **overrides})


def check_recipe(hp: FinetuneHParams, backbone: str) -> None:
    """Fail before training on settings the backbone or the batch cannot honour.

    Raises:
        ConfigError: stochastic depth on a backbone without it (torchvision ResNet blocks), or
            mixup/cutmix with an odd batch (they pair each sample with its mirror in the batch).
    """
    if hp.drop_path > 0 and "drop_path_rate" not in backbone_info(backbone).options:
        raise ConfigError(
            f"eval_finetune.hparams.drop_path: {hp.drop_path}, but {backbone} "
            "(torchvision blocks) has no stochastic depth; set it to 0"
        )
    if (hp.mixup > 0 or hp.cutmix > 0) and hp.batch_size % 2:
        raise ConfigError(f"eval_finetune.hparams.batch_size: {hp.batch_size}: mixup needs even")


def _layer_id(name: str, num_blocks: int) -> int:
    # MAE util/lr_decay.py get_layer_id_for_vit: embeddings 0, block i -> i + 1, the rest L + 1.
    if name.startswith(("cls_token", "pos_embed", "patch_embed", "reg_token")):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_blocks + 1


def param_groups(
    model: nn.Module, weight_decay: float, layer_decay: float, vit_prefix: str | None
) -> list[dict]:
    """Optimiser groups with a ``lr_scale`` each (MAE ``param_groups_lrd``).

    Args:
        model: the classifier.
        weight_decay: applied to weights of ndim >= 2 except position embeddings / class tokens.
        layer_decay: lr scale decay^(L + 1 - layer id) for a ViT with L blocks.
        vit_prefix: the parameter-name prefix of the timm ViT inside ``model`` (e.g.
            ``"backbone.model."``); None means no layer-wise decay.

    Returns:
        Groups ``{"params", "weight_decay", "lr_scale"}``.
    """
    blocks = 0
    if vit_prefix is not None:
        names = [n for n, _ in model.named_parameters() if n.startswith(vit_prefix + "blocks.")]
        blocks = 1 + max(int(n[len(vit_prefix) :].split(".")[1]) for n in names)
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        inner = name[len(vit_prefix) :] if vit_prefix and name.startswith(vit_prefix) else "head"
        no_wd = p.ndim == 1 or inner in ("pos_embed", "cls_token")
        lid = _layer_id(inner, blocks) if vit_prefix else 0
        scale = layer_decay ** (blocks + 1 - lid) if vit_prefix else 1.0
        g = groups.setdefault(
            (lid, no_wd), {"params": [], "weight_decay": 0.0 if no_wd else weight_decay}
        )
        g["lr_scale"] = scale
        g["params"].append(p)
    return list(groups.values())


def build_optimizer(groups: list[dict], hp: FinetuneHParams, lr: float) -> torch.optim.Optimizer:
    """AdamW, timm's LAMB or SGD (momentum 0.9) over ``groups`` at peak ``lr``."""
    if hp.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=hp.betas)
    if hp.optimizer == "lamb":
        from timm.optim import Lamb

        return Lamb(groups, lr=lr, betas=hp.betas)
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


def build_criterion(hp: FinetuneHParams) -> nn.Module:
    """Loss on soft targets (mixup / cutmix / smoothing already applied to them)."""
    from timm.loss import BinaryCrossEntropy, SoftTargetCrossEntropy

    return BinaryCrossEntropy() if hp.loss == "bce" else SoftTargetCrossEntropy()
