"""Frozen-feature classification probes: weighted k-NN and a linear classifier.

k-NN follows Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination"
(InstDisc, CVPR 2018, Sec. 3.4) as used by DINO (Caron et al. 2021, Sec. 4.1, ``eval_knn.py``):
cosine similarity, the k=20 nearest training samples vote for their class with weight exp(sim/T),
T=0.07. The linear probe is logistic regression (SGD, cross-entropy) on frozen, standardised
features. Accuracies are percentages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from correlearn.eval.features import autocast_for


@dataclass
class ProbeResult:
    """Predictions ``(M,)``, class scores ``(M, num_classes)`` and ``{"top1", "top5"}`` metrics."""

    predictions: torch.Tensor
    scores: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Top-1 (and top-5 when there are more than 5 classes) accuracy in percent.

    Args:
        scores: ``(M, num_classes)`` class scores.
        labels: ``(M,)`` int true classes.
    """
    labels = labels.to(scores.device)
    ranked = scores.argsort(dim=1, descending=True)
    hit = ranked == labels[:, None]
    metrics = {"top1": 100.0 * hit[:, :1].any(1).float().mean().item()}
    if scores.shape[1] > 5:
        metrics["top5"] = 100.0 * hit[:, :5].any(1).float().mean().item()
    return metrics


@torch.no_grad()
def knn_classify(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor | None = None,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> ProbeResult:
    """Weighted cosine k-NN (InstDisc Sec. 3.4; DINO ``knn_classifier``).

    Args:
        train_feats: ``(N, D)`` training features (L2-normalised here).
        train_labels: ``(N,)`` int classes.
        test_feats: ``(M, D)`` test features (L2-normalised here).
        test_labels: ``(M,)`` int classes; when given, ``metrics`` holds top1/top5.
        k: neighbours per test sample (capped at N).
        temperature: vote weight is exp(cos / temperature).
        num_classes: defaults to ``max(train_labels) + 1``.
        chunk_size: test samples per similarity block (memory bound).

    Returns:
        A :class:`ProbeResult`; ``scores`` are the summed vote weights per class.
    """
    train = F.normalize(train_feats.float(), dim=1)
    test = F.normalize(test_feats.float().to(train.device), dim=1)
    train_labels = train_labels.long().to(train.device)
    num_classes = num_classes or int(train_labels.max()) + 1
    k = min(k, train.shape[0])
    scores = []
    for start in range(0, test.shape[0], chunk_size):
        sim, idx = (test[start : start + chunk_size] @ train.T).topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], num_classes, device=train.device)
        votes.scatter_add_(1, train_labels[idx], (sim / temperature).exp())
        scores.append(votes)
    scores_t = torch.cat(scores) if scores else torch.zeros(0, num_classes)
    result = ProbeResult(scores_t.argmax(1), scores_t)
    if test_labels is not None:
        result.metrics = topk_accuracy(scores_t, test_labels)
    return result


def linear_probe(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor | None = None,
    epochs: int = 100,
    lr: float = 0.1,
    batch_size: int = 256,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    num_classes: int | None = None,
    seed: int = 0,
) -> tuple[ProbeResult, nn.Module]:
    """Linear classifier on frozen features: SGD with momentum, cross-entropy, cosine lr decay.

    Features are standardised with the training mean/std (the test-time effect of the affine-free
    BatchNorm that MAE's linear probing puts before the classifier), so one learning rate suits
    any backbone. Deterministic for a given ``seed`` (init and shuffling use it).

    Args:
        train_feats: ``(N, D)`` frozen training features.
        train_labels: ``(N,)`` int classes.
        test_feats: ``(M, D)`` frozen test features.
        test_labels: ``(M,)`` int classes; when given, ``metrics`` holds top1/top5.
        epochs: passes over the training set.
        lr: peak learning rate (cosine decay to 0 over all steps).
        batch_size: samples per SGD step.
        weight_decay: L2 penalty added to the gradient (torch.optim.SGD convention).
        momentum: SGD momentum.
        num_classes: defaults to ``max(train_labels) + 1``.
        seed: seed of the initialisation and the batch order.

    Returns:
        The test :class:`ProbeResult` (``scores`` are logits) and the trained model
        (standardisation + linear layer), in eval mode.
    """
    device = train_feats.device
    train_labels = train_labels.long().to(device)
    num_classes = num_classes or int(train_labels.max()) + 1
    gen = torch.Generator(device="cpu").manual_seed(seed)
    model = _init_model(train_feats, num_classes, gen)
    _sgd(
        model,
        train_feats.float(),
        train_labels,
        gen,
        epochs,
        lr,
        batch_size,
        weight_decay,
        momentum,
    )
    model.eval()
    with torch.no_grad():
        logits = model(test_feats.float().to(device))
    result = ProbeResult(logits.argmax(1), logits)
    if test_labels is not None:
        result.metrics = topk_accuracy(logits, test_labels)
    return result, model


def _init_model(train_feats: torch.Tensor, num_classes: int, gen: torch.Generator) -> _Standardized:
    """Standardisation + linear layer: N(0, 0.01^2) weights drawn from ``gen``, zero biases.

    The standardisation uses the mean and std of the ``(N, D)`` training features.
    """
    mean = train_feats.float().mean(0)
    std = train_feats.float().std(0, unbiased=False).clamp_min(1e-6)
    linear = nn.Linear(train_feats.shape[1], num_classes).to(train_feats.device)
    with torch.no_grad():
        w = torch.randn(linear.weight.shape, generator=gen) * 0.01
        linear.weight.copy_(w.to(train_feats.device))
        linear.bias.zero_()
    return _Standardized(mean, std, linear)


def _sgd(
    model: _Standardized,
    x_all: torch.Tensor,
    labels: torch.Tensor,
    gen: torch.Generator,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    momentum: float,
) -> None:
    """Train ``model.linear`` in place: SGD with momentum, cosine lr decay, batches from ``gen``.

    ``x_all`` is ``(N, D)`` float features and ``labels`` ``(N,)`` long classes on the model's
    device.
    """
    params = [model.linear.weight, model.linear.bias]
    velocity = [torch.zeros_like(p) for p in params]
    n = x_all.shape[0]
    steps = epochs * max(1, -(-n // batch_size))
    model.train()
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(x_all.device)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            loss = F.cross_entropy(model(x_all[batch]), labels[batch])
            grads = torch.autograd.grad(loss, params)
            # torch.optim.SGD semantics, written out: constructing a torch.optim optimizer
            # imports torch._dynamo, which costs seconds on a small CPU box.
            step_lr = 0.5 * lr * (1 + math.cos(math.pi * step / steps))
            with torch.no_grad():
                for p, g, v in zip(params, grads, velocity, strict=True):
                    v.mul_(momentum).add_(g + weight_decay * p)
                    p.sub_(step_lr * v)
            step += 1


class _Standardized(nn.Module):
    """(x - mean) / std followed by a linear layer."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, linear: nn.Linear):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` features -> ``(B, num_classes)`` logits."""
        return self.linear((x - self.mean) / self.std)


def extract_features(
    backbone: nn.Module,
    images: Iterable[torch.Tensor],
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    normalize: bool = True,
) -> torch.Tensor:
    """Pooled features ``backbone(x) -> (B, D)`` of every image, in order, on the CPU.

    Args:
        backbone: a backbone per docs/contracts.md (evaluated in eval mode; its mode is restored).
        images: iterable of preprocessed ``(3, H, W)`` tensors of one size.
        batch_size: images per forward pass.
        device: where the backbone runs (bf16 autocast on CUDA).
        normalize: L2-normalise each feature (what k-NN needs).

    Returns:
        ``(N, D)`` float32 features.
    """
    device = torch.device(device)
    was_training = backbone.training
    backbone.eval().to(device)
    out: list[torch.Tensor] = []

    def flush(batch: list[torch.Tensor]) -> None:
        x = torch.stack(batch).to(device, non_blocking=True)
        with torch.inference_mode(), autocast_for(device):
            feats = backbone(x).float()
        out.append((F.normalize(feats, dim=1) if normalize else feats).cpu())

    batch: list[torch.Tensor] = []
    for img in images:
        batch.append(img)
        if len(batch) == batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    backbone.train(was_training)
    if not out:
        raise ValueError("extract_features: no images")
    return torch.cat(out)
