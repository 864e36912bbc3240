"""Image augmentations as small pure functions with an explicit RNG.

Every function takes a ``numpy.random.Generator`` and draws *all* its randomness from it (never from
the global numpy/torch RNGs), so a batch is a pure function of the generator's seed: the same seed
gives identical views, which makes resumed training exact. Images are torch tensors (..., 3, H, W),
uint8 in [0, 255] or float in [0, 1]; the pixel operations are torchvision.transforms.v2.functional,
so they keep the dtype. :func:`normalize` is the last step and returns float.

The pipeline and defaults follow BYOL (Grill et al. 2020, Appendix B, Table 6), which ORL uses for
its global views and, without the random-resized crop, for its 96x96 RoI patches (ORL Sec. 3.2).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode

from correlearn.config import StrictModel

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ViewAug(StrictModel):
    """Augmentation parameters of one view (BYOL Table 6 defaults, view 1)."""

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    jitter_p: float = 0.8
    gray_p: float = 0.2
    blur_p: float = 1.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    # BYOL: a 23x23 kernel at 224 px, i.e. ~10% of the side (odd).
    blur_kernel_frac: float = 0.1
    solarize_p: float = 0.0


#: BYOL's asymmetric pair (Table 6): view 1 always blurred, never solarised; view 2 the reverse-ish.
BYOL_VIEW1 = ViewAug(blur_p=1.0, solarize_p=0.0)
BYOL_VIEW2 = ViewAug(blur_p=0.1, solarize_p=0.2)


def to_chw(img: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(H, W, 3) or (H, W) numpy uint8 -> (3, H, W) uint8 tensor; tensors pass through unchanged."""
    if isinstance(img, torch.Tensor):
        return img
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def to_tchw(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(T, H, W, 3) numpy uint8 clip -> (T, 3, H, W) uint8 tensor; tensors pass through unchanged.

    Clips are (T, H, W, 3) arrays from :meth:`~correlearn.data.readers.ShardedVideos.frames`
    (or already (T, 3, H, W) tensors with ``decode="torch"``); the result is a permuted view of
    the array (channels-last strides, no copy).
    """
    if isinstance(frames, torch.Tensor):
        return frames
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def rrc_params(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """Sample a random-resized-crop box with torchvision's algorithm (10 tries, centre fallback).

    Args:
        rng: the random generator.
        height: image height H.
        width: image width W.
        scale: range of the crop area as a fraction of H * W.
        ratio: range of the crop aspect w / h, sampled log-uniformly.

    Returns:
        (top, left, h, w) of a box inside the image.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    # Fallback: the largest centred crop whose aspect is within ``ratio``.
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(
    img: torch.Tensor,
    rng: np.random.Generator,
    size: int | tuple[int, int],
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Random-resized crop (bilinear, antialiased): (..., 3, H, W) -> (..., 3, size, size)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    top, left, h, w = rrc_params(rng, img.shape[-2], img.shape[-1], scale, ratio)
    return F.resized_crop(
        img, top, left, h, w, list(size), interpolation=InterpolationMode.BILINEAR, antialias=True
    )


def hflip(img: torch.Tensor, p: float, rng: np.random.Generator) -> torch.Tensor:
    """Horizontal flip with probability p: (..., 3, H, W) -> same."""
    return F.horizontal_flip(img) if rng.random() < p else img


def color_jitter(
    img: torch.Tensor,
    rng: np.random.Generator,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.2,
    hue: float = 0.1,
    p: float = 0.8,
) -> torch.Tensor:
    """With probability p, torchvision's ColorJitter: the four adjustments in random order.

    Factors are drawn as torchvision does: brightness/contrast/saturation uniform in
    [max(0, 1 - s), 1 + s], hue uniform in [-hue, hue]. (..., 3, H, W) -> same.
    """
    if rng.random() >= p:
        return img
    order = rng.permutation(4)
    b = rng.uniform(max(0.0, 1 - brightness), 1 + brightness)
    c = rng.uniform(max(0.0, 1 - contrast), 1 + contrast)
    s = rng.uniform(max(0.0, 1 - saturation), 1 + saturation)
    h = rng.uniform(-hue, hue)
    for i in order:
        if i == 0 and brightness > 0:
            img = F.adjust_brightness(img, b)
        elif i == 1 and contrast > 0:
            img = F.adjust_contrast(img, c)
        elif i == 2 and saturation > 0:
            img = F.adjust_saturation(img, s)
        elif i == 3 and hue > 0:
            img = F.adjust_hue(img, h)
    return img


def grayscale(img: torch.Tensor, rng: np.random.Generator, p: float = 0.2) -> torch.Tensor:
    """With probability p, luma grayscale replicated to 3 channels: (..., 3, H, W) -> same."""
    return F.rgb_to_grayscale(img, num_output_channels=3) if rng.random() < p else img


def blur_kernel_size(side: int, frac: float = 0.1) -> int:
    """Odd Gaussian kernel size of about ``frac`` of the image side (23 at 224 px, as BYOL)."""
    return max(3, int(frac * side) // 2 * 2 + 1)


def gaussian_blur(
    img: torch.Tensor,
    rng: np.random.Generator,
    p: float,
    sigma: tuple[float, float] = (0.1, 2.0),
    kernel_size: int | None = None,
) -> torch.Tensor:
    """With probability p, Gaussian blur with sigma ~ U(sigma) (BYOL Table 6).

    Args:
        img: (..., 3, H, W).
        rng: the random generator.
        p: probability of blurring.
        sigma: range of the standard deviation in pixels.
        kernel_size: odd kernel side; default :func:`blur_kernel_size` of min(H, W).

    Returns:
        (..., 3, H, W), same dtype.
    """
    if rng.random() >= p:
        return img
    s = float(rng.uniform(sigma[0], sigma[1]))
    k = kernel_size or blur_kernel_size(min(img.shape[-2], img.shape[-1]))
    return F.gaussian_blur(img, [k, k], [s, s])


def solarize(img: torch.Tensor, rng: np.random.Generator, p: float) -> torch.Tensor:
    """With probability p, invert pixels >= half range (BYOL: x -> 1 - x where x >= 0.5)."""
    if rng.random() >= p:
        return img
    threshold = 128 if img.dtype == torch.uint8 else 0.5
    return F.solarize(img, threshold)


def normalize(img: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float (..., 3, H, W) -> float32 normalised with ImageNet mean/std."""
    x = F.to_dtype(img, torch.float32, scale=True)
    return F.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD))


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize` for display: float (..., 3, H, W) -> uint8 (..., 3, H, W)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return ((x * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)


def photometric(img: torch.Tensor, rng: np.random.Generator, aug: ViewAug) -> torch.Tensor:
    """BYOL's colour pipeline: jitter, grayscale, blur, solarize (in that order; BYOL App. B)."""
    img = color_jitter(
        img, rng, aug.brightness, aug.contrast, aug.saturation, aug.hue, p=aug.jitter_p
    )
    img = grayscale(img, rng, aug.gray_p)
    k = blur_kernel_size(min(img.shape[-2], img.shape[-1]), aug.blur_kernel_frac)
    img = gaussian_blur(img, rng, aug.blur_p, aug.blur_sigma, kernel_size=k)
    return solarize(img, rng, aug.solarize_p)


def augment_view(
    img: np.ndarray | torch.Tensor | Any,
    rng: np.random.Generator,
    size: int,
    aug: ViewAug,
) -> torch.Tensor:
    """One BYOL view: random-resized crop, flip, then :func:`photometric`.

    Args:
        img: (H, W, 3) numpy or (3, H, W) tensor, uint8; or an
            :class:`~correlearn.data.decode.EncodedImage`, whose crop decodes at reduced size
            where it can, with the same random draws.
        rng: the random generator.
        size: output side S.
        aug: the view's parameters.

    Returns:
        (3, S, S) tensor of the input's dtype (not normalised).
    """
    crop = getattr(img, "random_resized_crop", None)  # an EncodedImage (decode.py imports us)
    if crop is not None:
        x = crop(rng, size, aug.scale, aug.ratio)[0]
    else:
        x = random_resized_crop(to_chw(img), rng, size, aug.scale, aug.ratio)
    x = hflip(x, aug.flip_p, rng)
    return photometric(x, rng, aug)


def byol_views(
    img: np.ndarray | torch.Tensor,
    rng: np.random.Generator,
    size: int = 224,
    augs: tuple[ViewAug, ViewAug] = (BYOL_VIEW1, BYOL_VIEW2),
) -> tuple[torch.Tensor, torch.Tensor]:
    """BYOL's asymmetric view pair (Appendix B, Table 6).

    Args:
        img: (H, W, 3) numpy or (3, H, W) tensor, uint8.
        rng: the random generator; the pair is a pure function of its state.
        size: output side S (224 in BYOL/ORL).
        augs: parameters of view 1 and view 2.

    Returns:
        Two (3, S, S) uint8 tensors (apply :func:`normalize` before the network).
    """
    return augment_view(img, rng, size, augs[0]), augment_view(img, rng, size, augs[1])
