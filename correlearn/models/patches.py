"""MAE's patch-level tensor operations (He et al. 2022, Sec. 3), shared by SiamMAE.

:func:`patchify` / :func:`unpatchify` convert images to rows of flattened p x p patches and back,
in MAE's ``(p, q, c)`` order inside a patch; :func:`random_masking` is MAE's per-sample random
masking, which SiamMAE applies to its future frame only (SiamMAE Sec. 3 "Masking").
"""

from __future__ import annotations

import torch


def random_masking(
    b: int, n: int, ratio: float, gen: torch.Generator | None = None, device=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking (He et al. 2022, Sec. 3; SiamMAE Sec. 3 "Masking").

    Args:
        b: batch size B.
        n: patches per frame N.
        ratio: fraction of patches to mask.
        gen: the generator drawing the noise (its device is used); None -> global RNG.
        device: where the returned tensors live (default: the noise's device).

    Returns:
        ``keep`` (B, n_keep) long patch ids to encode, ``mask`` (B, N) float (1 = masked),
        ``ids_restore`` (B, N) long: position of each patch in [kept..., masked...].
    """
    # A tiny epsilon so float error in 1 - ratio never drops a token that MAE's int() keeps.
    n_keep = int(n * (1.0 - ratio) + 1e-6)
    noise = torch.rand(b, n, generator=gen, device=gen.device if gen is not None else device)
    ids_shuffle = noise.argsort(dim=1).to(device or noise.device)
    ids_restore = ids_shuffle.argsort(dim=1)
    mask = torch.ones(b, n, device=ids_shuffle.device)
    mask[:, :n_keep] = 0
    return ids_shuffle[:, :n_keep], torch.gather(mask, 1, ids_restore), ids_restore


def patchify(imgs: torch.Tensor, p: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, h*w, p*p*3), row-major patches, (p, q, c) order inside (MAE)."""
    b, c, hh, ww = imgs.shape
    h, w = hh // p, ww // p
    x = imgs[:, :, : h * p, : w * p].reshape(b, c, h, p, w, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, h * w, p * p * c)


def unpatchify(x: torch.Tensor, p: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: (B, h*w, p*p*3) -> (B, 3, h*p, w*p)."""
    x = x.reshape(x.shape[0], h, w, p, p, 3)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], 3, h * p, w * p)
