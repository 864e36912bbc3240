"""CropMAE: Siamese Cropped Masked Autoencoders (Eymaël et al., ECCV 2024).

SiamMAE's siamese ViT encoder and cross-self decoder (:mod:`correlearn.methods.siammae`), trained
on two crops of one *image* instead of two frames of one video (paper abstract and Fig. 1). The
default ``global_to_local`` strategy (reference ``data/util/CropMAEStrategies.py``,
``GlobalToLocal``, the ``--crop_strategy`` of ``scripts/train_cropmae_in.sh``) cuts a global crop
from the image (area 0.1-1 of the image), then a local crop from the global crop (area 0.3-0.6 of
it), resizes both to 224 px and flips each on its own; no colour augmentation. The global crop is
the visible view ``f1`` and the local crop the target ``f2``, 98.5% of whose patches are dropped
(paper abstract: two visible patches, ``int(196 * 0.015) = 2`` of 196 at 224 px and patch 16).
The loss, the held-out ``recon_error`` and its trivial predictors are SiamMAE's: MSE on the
per-patch normalised pixels of ``f2``'s masked patches.

Known differences from the reference model (``models/SiamMAE.py``), which come with reusing
SiamMAE's decoder: its decoder blocks are post-norm, ordered cross-attention -> MLP ->
self-attention, with dropout 0.1, and it adds the decoder's sin-cos table to ``f2``'s tokens only;
here the blocks are pre-norm cross -> self -> MLP without dropout and both views get the table.
Random-resized crops draw torchvision's way (10 tries, then a centred fallback) where the reference
clamps a single draw to the image.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from pydantic import Field, model_validator
from torchvision.transforms import InterpolationMode

from correlearn.config import StrictModel
from correlearn.data.augment import normalize as normalize_img
from correlearn.data.augment import rrc_params, to_chw
from correlearn.methods.siammae import SiamMAE
from correlearn.models import BackboneName
from correlearn.train.config import OptimConfig, TrainConfig

Scale = tuple[float, float]


class CropMAEConfig(StrictModel):
    """CropMAE defaults: the reference's ImageNet run (``scripts/train_cropmae_in.sh``).

    The model fields are those of :class:`~correlearn.methods.siammae.SiamMAEConfig`, which
    :class:`CropMAE` hands to SiamMAE's encoder and decoder.
    """

    # --architecture vits (misc/util.py default: models/SiamMAE.py siam_mae_vit_small) and
    # --patch_size=16 (scripts/train_cropmae_in.sh).
    backbone: BackboneName = "vit_small_patch16"
    backbone_kwargs: dict[str, Any] = Field(default_factory=dict)
    # models/components/mae/models_mae.py: the encoder's fixed 2-D sin-cos table (not trained).
    pos_embed: Literal["sincos", "learned"] = "sincos"
    image_size: int = Field(224, ge=16)  # --input_size=224, both views
    # GlobalToLocal (default --crop_strategy); local_to_global: LocalToGlobal (the local crop is
    # visible, the global one reconstructed); random: RandomViews (two global crops of the image).
    crops: Literal["global_to_local", "local_to_global", "random"] = "global_to_local"
    global_scale: Scale = (0.1, 1.0)  # --random_area_min_global=0.10, --random_area_max_global=1.0
    global_ratio: Scale = (3 / 4, 4 / 3)  # --random_aspect_ratio_{min,max}_global
    local_scale: Scale = (0.3, 0.6)  # --random_area_{min,max}_local: area of the global crop
    local_ratio: Scale = (3 / 4, 4 / 3)  # --random_aspect_ratio_{min,max}_local
    flip_p: float = Field(0.5, ge=0.0, le=1.0)  # --horizontal_flip_p (misc/util.py), per view
    mask_ratio: float = Field(0.985, ge=0.0, lt=1.0)  # --masking_ratio=0.985, on f2 only
    # models/components/DecoderBlock.py: cross-attention to f1 and self-attention among f2.
    decoder: Literal["cross_self", "cross", "joint"] = "cross_self"
    decoder_dim: int = Field(256, ge=4)  # --decoder_embed_dim=256
    decoder_depth: int = Field(4, ge=1)  # --decoder_depth=4
    decoder_heads: int = Field(8, ge=1)  # --decoder_num_heads=8
    # models/components/DecoderBlock.py: dim_feedforward=2048 at width 256.
    decoder_mlp_ratio: float = Field(8.0, gt=0)
    norm_pix_loss: bool = True  # --norm_pix_loss

    @model_validator(mode="after")
    def _check(self) -> CropMAEConfig:
        for name in ("global_scale", "local_scale"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi <= 1.0:
                raise ValueError(f"{name} must satisfy 0 < min <= max <= 1, got {(lo, hi)}")
        if self.decoder_dim % 4 or self.decoder_dim % self.decoder_heads:
            raise ValueError("decoder_dim must be divisible by 4 and by decoder_heads")
        return self


class CropMAE(SiamMAE):
    """CropMAE: SiamMAE's siamese ViT encoder and cross-self decoder on two crops of one image.

    Batches are SiamMAE's: ``f1`` the visible view, ``f2`` the masked one, so training, the
    held-out ``recon_error`` and the reconstruction sheet are SiamMAE's code.
    """

    def __init__(self, cfg: CropMAEConfig | None = None) -> None:
        super().__init__(cfg or CropMAEConfig())  # type: ignore[arg-type]  # same model fields

    @torch.no_grad()
    def pretext_baselines(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, dict]:
        """Copy the co-located patch of the visible view ``f1``; or predict each patch's mean.

        Args:
            batches: ``f1``, ``f2`` (B, 3, S, S) held-out visible and target views.

        Returns:
            ``{"copy_view": {"recon_error"}, "patch_mean": {"recon_error"}}``.
        """
        base = super().pretext_baselines(batches)
        return {"copy_view": base.pop("copy_past"), **base}


def _crop(img: torch.Tensor, box: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """(3, H, W) -> (3, size, size): the box (top, left, h, w), resized bilinear with antialias."""
    return F.resized_crop(
        img, *box, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True
    )


def crop_pair(
    img: torch.Tensor, rng: np.random.Generator, cfg: CropMAEConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two views of one image (CropMAEStrategies.py), before flips.

    Args:
        img: (3, H, W) uint8 image.
        rng: the random generator (the global box, then the second box, are drawn from it).
        cfg: ``crops``, the scales and ratios, ``image_size`` S.

    Returns:
        ``first`` (3, S, S) the global crop; ``second`` (3, S, S) the local crop (cut from
        ``first``) or, for ``random``, another global crop of the image; their boxes
        ``(top, left, h, w)`` as (4,) long: ``first``'s in image pixels, ``second``'s in
        ``first``'s S x S pixels (in image pixels for ``random``).
    """
    s = cfg.image_size
    g_box = rrc_params(rng, img.shape[-2], img.shape[-1], cfg.global_scale, cfg.global_ratio)
    first = _crop(img, g_box, s)
    if cfg.crops == "random":
        box = rrc_params(rng, img.shape[-2], img.shape[-1], cfg.global_scale, cfg.global_ratio)
        second = _crop(img, box, s)
    else:
        box = rrc_params(rng, s, s, cfg.local_scale, cfg.local_ratio)
        second = _crop(first, box, s)
    return first, second, torch.tensor(g_box), torch.tensor(box)


def build_cropmae_batch(
    samples: list[np.ndarray | torch.Tensor], rng: np.random.Generator, cfg: CropMAEConfig
) -> dict[str, torch.Tensor]:
    """Two crops of each image, each flipped on its own, as SiamMAE's visible and target views.

    Args:
        samples: B uint8 images, (H, W, 3) numpy or (3, H, W) tensors; sizes may differ.
        rng: the random generator; the batch is a pure function of its state.
        cfg: the method config.

    Returns:
        ``"f1"`` (B, 3, S, S) the visible view and ``"f2"`` (B, 3, S, S) the masked one,
        float32 ImageNet-normalised (global and local crop for ``global_to_local``, the reverse
        for ``local_to_global``); ``"boxes"`` (B, 2, 4) long, the global crop's and the second
        crop's ``(top, left, h, w)`` (see :func:`crop_pair`); ``"flips"`` (B, 2) bool, whether
        the global and the second crop were mirrored.
    """
    f1, f2, boxes, flips = [], [], [], []
    for img in samples:
        first, second, g_box, box = crop_pair(to_chw(img), rng, cfg)
        flipped = [bool(rng.random() < cfg.flip_p) for _ in range(2)]
        first, second = (
            F.horizontal_flip(v) if f else v for v, f in zip((first, second), flipped, strict=True)
        )
        visible, target = (second, first) if cfg.crops == "local_to_global" else (first, second)
        f1.append(visible)
        f2.append(target)
        boxes.append(torch.stack([g_box, box]))
        flips.append(torch.tensor(flipped))
    return {
        "f1": normalize_img(torch.stack(f1)),
        "f2": normalize_img(torch.stack(f2)),
        "boxes": torch.stack(boxes).long(),
        "flips": torch.stack(flips),
    }


def cropmae_optim() -> OptimConfig:
    """The optimiser of CropMAE pre-training (ref ``scripts/train_cropmae_in.sh``).

    AdamW ``--betas=0.9,0.95``, ``--weight_decay=0.05`` (timm's ``param_groups_weight_decay``:
    none on biases and norms), ``--blr=1e-4`` x batch/256, warm-up ``--warmup_epochs_prop=0.05``
    of 400 epochs = 20, half-cosine to ``--min_lr_prop=0.0``, no clipping.
    """
    return OptimConfig(
        name="adamw", base_lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, warmup_epochs=20
    )


def cropmae_train() -> TrainConfig:
    """The loop of CropMAE pre-training (ref ``scripts/train_cropmae_in.sh``): 400 epochs, 2048.

    ``--batch_size=128`` per GPU x 4 nodes x 4 GPUs (``--accum_iter=1``) = 2048 effective;
    ``batch_size`` is per process here.
    """
    return TrainConfig(epochs=400, batch_size=2048)
