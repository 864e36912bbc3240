"""The training workloads the speed benches share: one per (method, backbone), with synthetic batches.

Each workload builds a registered method from its config (paper defaults, plus the overrides named
here) and a batch of the shapes its ``training_step`` takes, drawn from an explicit
``torch.Generator``. The pixel values do not matter for speed; the shapes do.

``paper_batch`` is the per-GPU batch of the paper's recipe:

- CIM: the paper does not state it; its reference code is MAE's ``main_pretrain.py``, whose
  per-GPU default is ``--batch_size 64`` (an assumption, noted in the table).
- SiamMAE: 2048 on 4 GPUs for ViT-S/16 (Sec. 4.1 and App. A) -> 512 frame pairs per GPU.
- BYOL / ORL: 512 on 8 GPUs (ORL Sec. 4.1, "friendly to typical 8-GPU implementations") -> 64.
- VFS: 256 (Sec. 4.1) on 8 GPUs (the reference configs' ``videos_per_gpu``; an assumption) -> 32
  videos of n = 8 frames.

Imported by ``bench/overhead.py`` and ``bench/gpu.py`` (run as scripts, so ``bench/`` is on
``sys.path``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from correlearn.data.cim_pairs import CIMPairConfig, build_cim_batch
from correlearn.pretrain import METHODS
from correlearn.train.config import OptimConfig


@dataclass(frozen=True)
class Workload:
    """One training workload.

    Attributes:
        name: table label, e.g. ``"CIM ViT-B/16"``.
        method: registry name of the method.
        cfg: method-config overrides (the rest are the paper's defaults).
        paper_batch: per-GPU batch of the paper's recipe (images, pairs or videos).
        batch_note: where ``paper_batch`` comes from.
        optim: optimiser-config overrides (the method's recipe).
        images_per_sample: images one sample contributes to img/s (views, frames, context +
            exemplars).
    """

    name: str
    method: str
    cfg: dict[str, Any]
    paper_batch: int
    batch_note: str
    optim: dict[str, Any] = field(default_factory=dict)
    images_per_sample: int = 1


SGD = {"name": "sgd", "base_lr": 0.2, "weight_decay": 1e-4, "exclude_bias_norm": False}
VFS_SGD = {"name": "sgd", "base_lr": 0.05, "weight_decay": 1e-4, "exclude_bias_norm": False}

WORKLOADS: dict[str, Workload] = {
    "cim_vit_s16": Workload("CIM ViT-S/16", "cim", {"backbone": "vit_small_patch16"}, 64,
                            "MAE ref-code default (CIM paper silent)", images_per_sample=7),
    "cim_vit_b16": Workload("CIM ViT-B/16", "cim", {"backbone": "vit_base_patch16"}, 64,
                            "MAE ref-code default (CIM paper silent)", images_per_sample=7),
    "siammae_vit_s16": Workload("SiamMAE ViT-S/16", "siammae", {}, 512, "2048 on 4 GPUs",
                                images_per_sample=2),
    "byol_r50": Workload("BYOL R50", "byol", {}, 64, "512 on 8 GPUs", SGD, images_per_sample=2),
    "orl_r50": Workload("ORL R50", "orl", {}, 64, "512 on 8 GPUs", SGD, images_per_sample=6),
    "vfs_r18": Workload("VFS R18", "vfs", {"backbone": "resnet18"}, 32, "256 on 8 GPUs",
                        VFS_SGD, images_per_sample=8),
    "vfs_r50": Workload("VFS R50", "vfs", {"backbone": "resnet50"}, 32, "256 on 8 GPUs",
                        VFS_SGD, images_per_sample=8),
}  # fmt: skip


def build(work: Workload, extra: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate the workload's method (paper defaults + ``work.cfg`` + ``extra`` overrides)."""
    spec = METHODS[work.method]
    method_cfg = spec.config.model_fields["method"].annotation
    return spec.build(method_cfg(**{**work.cfg, **(extra or {})}))


def optim_config(work: Workload) -> OptimConfig:
    """The method's optimiser recipe (``OptimConfig`` table) with no warm-up, for timing."""
    return OptimConfig(**{**work.optim, "warmup_epochs": 0.0})


def _images(b: int, s: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(b, 3, s, s, generator=gen)


def make_batch(method: nn.Module, batch: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A batch of ``batch`` samples in the shapes ``method.training_step`` takes.

    Args:
        method: a built method; its config gives the image sizes.
        batch: samples (images, pairs or videos).
        gen: the random generator; the batch is a pure function of its state.

    Returns:
        BYOL ``view1``/``view2`` (B, 3, S, S); ORL those plus ``intra*``/``inter*`` (B, 3, R, R);
        CIM ``context`` (B, 3, m, m), ``exemplars`` (B, E, 3, n, n), ``maps`` (B, E, m, m);
        VFS ``frames`` (B, n, 3, S, S); SiamMAE ``f1``/``f2`` (B, 3, S, S).
    """
    cfg = method.cfg
    kind = type(method).__name__
    if kind in ("BYOL", "ORL"):
        out = {f"view{i}": _images(batch, cfg.image_size, gen) for i in (1, 2)}
        if kind == "ORL":
            for name in ("intra1", "intra2", "inter1", "inter2"):
                out[name] = _images(batch, cfg.roi_size, gen)
        return out
    if kind == "CIM":
        seed = int(torch.randint(0, 2**31, (1,), generator=gen))
        rng = np.random.default_rng(seed)
        side = max(cfg.pair.context_size * 2, 64)
        imgs = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(batch)]
        return build_cim_batch(imgs, rng, cfg.pair)
    if kind == "VFS":
        n = cfg.sampler.n
        return {
            "frames": _images(batch * n, cfg.image_size, gen).view(
                batch, n, 3, *[cfg.image_size] * 2
            )
        }
    if kind == "SiamMAE":
        return {
            "f1": _images(batch, cfg.image_size, gen),
            "f2": _images(batch, cfg.image_size, gen),
        }
    raise ValueError(f"no batch maker for {kind}")


def tiny_overrides(work: Workload, size: int) -> dict[str, Any]:
    """Config overrides that shrink a workload's images to about ``size`` px (CPU checks).

    The architecture (backbone, heads, decoder) stays the paper's; only the input sizes shrink.
    ViTs get ``img_size`` so their position table matches.
    """
    size = max(32, size // 16 * 16)
    if work.method == "cim":
        ctx, ex = size, max(16, size // 32 * 16)
        return {"pair": CIMPairConfig(context_size=ctx, exemplar_size=ex, num_exemplars=2)}
    if work.method == "siammae":
        return {"image_size": size, "backbone_kwargs": {"img_size": size}}
    if work.method == "orl":
        return {"image_size": size, "roi_size": max(32, size // 2)}
    return {"image_size": size}


StepFn = Callable[[], None]
