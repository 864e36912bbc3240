"""End-to-end fine-tuning probe: the whole backbone plus a linear head, top-1 / top-5 (CIM Sec. 4.3).

The loop follows MAE's ``engine_finetune.train_one_epoch`` (the code CIM's ``engines/finetune.py``
derives from): per-step lr (warm-up + half cosine, times each group's layer-wise ``lr_scale``),
mixup / cutmix on the batch, soft-target loss. Augmentations are timm's ``create_transform`` with
the recipe's RandAugment policy and random erasing, as in MAE's ``build_transform``; they draw
from Python's and torch's global RNGs, which :func:`train` seeds per step from ``(seed, step)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

from correlearn.eval.features import IMAGENET_MEAN, IMAGENET_STD
from correlearn.eval.finetune_recipe import (
    FinetuneHParams,
    build_criterion,
    build_optimizer,
    param_groups,
)
from correlearn.train.schedules import lr_at


class Classifier(nn.Module):
    """Backbone + linear head.

    ViTs with ``pool: avg`` drop the final norm and classify ``fc_norm(mean of patch tokens)``
    (MAE ``models_vit.VisionTransformer(global_pool=True)``); ``cls`` uses the normed CLS token.
    ResNets classify the average-pooled res5. The head is initialised as MAE does
    (``trunc_normal_(std=2e-5)``, bias 0).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, pool: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.vit = hasattr(backbone, "forward_tokens")
        self.avg = self.vit and pool == "avg"
        if self.avg:
            backbone.model.norm = nn.Identity()
            self.fc_norm = nn.LayerNorm(backbone.out_dim, eps=1e-6)
        self.head = nn.Linear(backbone.out_dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=2e-5)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, H, W)`` normalised -> logits (B, num_classes)."""
        if self.avg:
            return self.head(self.fc_norm(self.backbone.forward_tokens(x)[:, 1:].mean(dim=1)))
        return self.head(self.backbone(x))


def backbone_state(model: Classifier) -> dict[str, torch.Tensor]:
    """The fine-tuned backbone's weights under the backbone's own names (a checkpoint).

    The pooled ViT trained ``fc_norm`` in place of the final norm; it is exported under that name
    so the artifact loads as a checkpoint (dense features then use the fine-tuned norm).
    """
    state = model.backbone.export_state_dict()
    if model.avg:
        state.update(
            {f"norm.{k}": v.detach().clone() for k, v in model.fc_norm.state_dict().items()}
        )
    return state


def transforms(hp: FinetuneHParams) -> tuple[Callable, Callable]:
    """Train and test transforms PIL -> (3, H, W) tensor (MAE ``build_transform``)."""
    from timm.data import create_transform
    from torchvision import transforms as T

    train = create_transform(
        input_size=hp.train_size,
        is_training=True,
        auto_augment=hp.randaug,
        interpolation="bicubic",
        re_prob=hp.reprob,
        re_mode="pixel",
        re_count=1,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
    test = T.Compose(
        [
            T.Resize(int(hp.test_size / hp.test_crop), interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(hp.test_size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    return train, test


def stratified_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per label, the last ``test_fraction`` of its items test (shuffled first when ``rng``)."""
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = rng.permutation(idx) if rng is not None else idx
        n_test = min(len(idx) - 1, max(1, round(len(idx) * test_fraction)))
        train.extend(idx[: len(idx) - n_test])
        test.extend(idx[len(idx) - n_test :])
    return np.sort(train), np.sort(test)


def _soft_targets(hp: FinetuneHParams, num_classes: int):
    from timm.data import Mixup
    from timm.data.mixup import mixup_target

    if hp.mixup > 0 or hp.cutmix > 0:
        mix = Mixup(
            mixup_alpha=hp.mixup,
            cutmix_alpha=hp.cutmix,
            label_smoothing=hp.label_smoothing,
            num_classes=num_classes,
        )
        return mix
    return lambda x, y: (x, mixup_target(y, num_classes, 1.0, hp.label_smoothing))


def train(
    model: Classifier,
    paths: list[str],
    labels: np.ndarray,
    hp: FinetuneHParams,
    total_steps: int,
    steps_per_epoch: int,
    seed: int,
    device: torch.device,
    log: Callable[[int, float, float], None] | None = None,
) -> list[tuple[int, float]]:
    """Fine-tune ``model`` in place for ``total_steps`` steps; returns ``(step, loss)`` pairs.

    Args:
        model: the classifier (every parameter trained).
        paths: training image files.
        labels: (N,) class ids of ``paths``.
        hp: the recipe.
        total_steps: steps to run (the schedule's length: warm-up and cosine fit in it).
        steps_per_epoch: steps per pass over the data (turns ``warmup_epochs`` into steps).
        seed: each step's batch and augmentations are drawn from seeds of ``(seed, step)``.
        device: where to train.
        log: ``log(step, loss, lr)`` after each step.
    """
    train_tf, _ = transforms(hp)
    prefix = "backbone.model." if model.vit else None
    groups = param_groups(model, hp.weight_decay, hp.layer_decay if model.vit else 1.0, prefix)
    lr = hp.base_lr * hp.batch_size * hp.accum_iter / 256  # MAE: blr x effective batch / 256
    opt = build_optimizer(groups, hp, lr)
    criterion = build_criterion(hp)
    soft = _soft_targets(hp, int(labels.max()) + 1)
    warmup = round(hp.warmup_epochs * steps_per_epoch)
    model.train()
    history = []
    for step in range(total_steps):
        step_lr = lr_at(step, total_steps, warmup, lr, hp.min_lr)
        for g in opt.param_groups:
            g["lr"] = step_lr * g["lr_scale"]
        opt.zero_grad()
        total = 0.0
        for micro in range(hp.accum_iter):  # MAE's accum_iter: one step, accum_iter batches
            # Pass 0 draws what a step without accumulation drew: accum_iter 1 is unchanged.
            rng = np.random.default_rng([seed, step] + [micro] * (micro > 0))
            random.seed(int(rng.integers(2**31)))
            torch.manual_seed(int(rng.integers(2**31)))
            idx = rng.choice(len(paths), hp.batch_size, replace=hp.batch_size > len(paths))
            x = torch.stack([train_tf(Image.open(paths[i]).convert("RGB")) for i in idx])
            y = torch.as_tensor(labels[idx], device=device)
            x, target = soft(x.to(device), y)
            loss = criterion(model(x), target) / hp.accum_iter
            loss.backward()
            total += loss.item()
        opt.step()
        history.append((step, total))
        if log:
            log(step, history[-1][1], step_lr)
    return history


@torch.no_grad()
def evaluate(
    model: Classifier, paths: list[str], labels: np.ndarray, hp: FinetuneHParams, device
) -> dict:
    """Top-1 (and top-5 with more than 5 classes) accuracy in percent on the test transform."""
    _, test_tf = transforms(hp)
    model.eval()
    correct1 = correct5 = 0
    n_classes = None
    for i in range(0, len(paths), 64):
        x = torch.stack([test_tf(Image.open(p).convert("RGB")) for p in paths[i : i + 64]])
        logits = model(x.to(device)).float().cpu()
        n_classes = logits.shape[1]
        y = torch.as_tensor(labels[i : i + 64])
        top = logits.topk(min(5, n_classes), dim=1).indices
        correct1 += int((top[:, 0] == y).sum())
        correct5 += int((top == y[:, None]).any(dim=1).sum())
    out = {"top1": 100.0 * correct1 / len(paths)}
    if n_classes and n_classes > 5:
        out["top5"] = 100.0 * correct5 / len(paths)
    return out
