"""Exemplar-context pairs of CIM (Li et al. 2023, "Correlational Image Modeling", Sec. 3.2, Fig. 3).

A square *context* c (m x m) is a random-resized crop of the image; each *exemplar* z (n x n) is a
rotated rectangle cut from the context with scale ratio r0 = (h * w) / (m * m), shape ratio
r1 = h / w and rotation alpha, resampled to n x n. The ground-truth correlation map
y in {0, 1}^(m x m) marks exactly that rotated rectangle in the context (Sec. 3.2 "Cropping
strategy"). Photometric transformations go on the exemplars only (Table 1d). The exemplars'
geometry (sampling, cutting, ground-truth maps) lives in :mod:`correlearn.data.cim_geometry`.

Every function draws all randomness from an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from pydantic import Field
from torchvision.transforms import InterpolationMode

from correlearn.config import StrictModel
from correlearn.data.augment import ViewAug, hflip, normalize, photometric, rrc_params, to_chw
from correlearn.data.cim_geometry import cut_exemplar, gt_map, sample_exemplar_geometry

#: The ref code's exemplar transformations (tools/main_pretrain.py, ``--common_aug
#: --template_aug``): jitter (0.4, 0.4, 0.2, 0.1) p 0.8, grayscale 0.2, blur sigma (0.1, 2) p 0.5,
#: solarize 0.2, flip 0.5.
#: The blur kernel is 0.2 x 64 -> 13 px, i.e. +-3 sigma at sigma = 2 like the ref code's PIL blur.
CIM_EXEMPLAR_AUG = ViewAug(blur_p=0.5, solarize_p=0.2, blur_kernel_frac=0.2)


class CIMPairConfig(StrictModel):
    """Pair generation of CIM (Sec. 3.2, Table 1, Sec. 4.1); every range is a config value.

    Attributes:
        context_size: m, side of the square context (Sec. 4.1: 160).
        context_scale: random-resized-crop area range of the context, fraction of the image (ref
            code ``--context_min_scale 0.5``).
        context_ratio: aspect range (w / h) of the context crop (torchvision's default, ref code).
        context_flip_p: horizontal flip of the context crop (ref code ``RandomHorizontalFlip``);
            exemplars are cut after the flip so the maps stay consistent.
        exemplar_size: n, side of the square exemplar (Sec. 4.1: 64).
        num_exemplars: exemplars per context (Sec. 4.1: 6, 160^2 + 6 x 64^2 px = 196 tokens).
        exemplar_scale: range of r0 = crop area / context area, sampled uniformly. Default (0, 1):
            the paper's best (Table 1a, "random r0 in (0, 1.0)"), binding per METHODS.md where
            paper and ref code disagree; the ref code's range is ``(0.05, 0.48)``
            (scripts/dist_pretrain.sh).
        exemplar_fit: what happens when the drawn crop does not fit in the context once rotated
            (53% of the draws at the defaults). ``redraw`` (default) keeps r0 as drawn and redraws
            r1 and alpha until the crop fits, so the r0 of the exemplars follows
            ``exemplar_scale`` (Table 1a studies r0 itself); ``shrink`` keeps r1 and alpha and
            shrinks the crop, which lowers the mean r0 of U(0, 1) from 0.5 to 0.35. See
            :func:`~correlearn.data.cim_geometry.sample_exemplar_geometry`.
        exemplar_shape: range of r1 = h / w, sampled log-uniformly (Table 1b best [1/3, 3]; the ref
            code samples it log-uniformly as torchvision's aspect ratio).
        rotation: range of alpha in degrees, uniform (Table 1c best [-45, 45]).
        transform_exemplars: photometric transformations + flip on each exemplar (Table 1d best).
        transform_context: photometric transformations (no flip: the map would move) on the
            context as well (Table 1d ablation; off by default).
        exemplar_aug: the transformations' parameters (``scale``/``ratio`` are unused here).
    """

    context_size: int = Field(160, ge=8)
    context_scale: tuple[float, float] = (0.5, 1.0)
    context_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    context_flip_p: float = Field(0.5, ge=0.0, le=1.0)
    exemplar_size: int = Field(64, ge=4)
    num_exemplars: int = Field(6, ge=1)
    exemplar_scale: tuple[float, float] = (0.0, 1.0)
    exemplar_fit: Literal["redraw", "shrink"] = "redraw"
    exemplar_shape: tuple[float, float] = (1 / 3, 3.0)
    rotation: tuple[float, float] = (-45.0, 45.0)
    transform_exemplars: bool = True
    transform_context: bool = False
    exemplar_aug: ViewAug = Field(default_factory=lambda: CIM_EXEMPLAR_AUG.model_copy())


def make_cim_sample(
    img: np.ndarray | torch.Tensor, rng: np.random.Generator, cfg: CIMPairConfig
) -> dict[str, torch.Tensor]:
    """One context, its E exemplars and their ground-truth maps (Sec. 3.2, Fig. 3, Table 1).

    The geometry and the transformations use two child generators, so switching
    ``transform_exemplars`` / ``transform_context`` leaves the context and the crops unchanged.

    Args:
        img: (H, W, 3) numpy or (3, H, W) tensor, uint8.
        rng: the random generator; the sample is a pure function of its state.
        cfg: the pair config (m = ``context_size``, n = ``exemplar_size``, E = ``num_exemplars``).

    Returns:
        ``context`` (3, m, m) float normalised, ``exemplars`` (E, 3, n, n) float normalised,
        ``maps`` (E, m, m) float in {0, 1}.
    """
    geo_rng, aug_rng = (np.random.default_rng(s) for s in rng.integers(0, 2**62, size=2))
    m, n = cfg.context_size, cfg.exemplar_size
    x = to_chw(img)
    top, left, h, w = rrc_params(
        geo_rng, x.shape[-2], x.shape[-1], cfg.context_scale, cfg.context_ratio
    )
    context = F.resized_crop(
        x, top, left, h, w, [m, m], interpolation=InterpolationMode.BICUBIC, antialias=True
    )
    context = hflip(context, cfg.context_flip_p, geo_rng)
    exemplars, maps = [], []
    for _ in range(cfg.num_exemplars):
        box = sample_exemplar_geometry(geo_rng, m, cfg)
        z = cut_exemplar(context, box, n)
        if cfg.transform_exemplars:
            z = hflip(photometric(z, aug_rng, cfg.exemplar_aug), cfg.exemplar_aug.flip_p, aug_rng)
        exemplars.append(z)
        maps.append(gt_map(box, m))
    if cfg.transform_context:
        context = photometric(context, aug_rng, cfg.exemplar_aug)
    return {
        "context": normalize(context),
        "exemplars": normalize(torch.stack(exemplars)),
        "maps": torch.stack(maps).float(),
    }


def build_cim_batch(
    samples: list[np.ndarray | torch.Tensor], rng: np.random.Generator, cfg: CIMPairConfig
) -> dict[str, torch.Tensor]:
    """Make and stack the CIM samples of B images (:func:`make_cim_sample`).

    Args:
        samples: B uint8 images, (H, W, 3) numpy or (3, H, W) tensors; sizes may differ.
        rng: the random generator; the batch is a pure function of its state.
        cfg: the pair config.

    Returns:
        ``context`` (B, 3, m, m), ``exemplars`` (B, E, 3, n, n), ``maps`` (B, E, m, m), float32.
    """
    items = [make_cim_sample(img, rng, cfg) for img in samples]
    return {k: torch.stack([it[k] for it in items]) for k in ("context", "exemplars", "maps")}
