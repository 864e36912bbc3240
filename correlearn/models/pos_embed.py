"""Fixed 2-D sin-cos position embeddings, in MAE's channel order (one definition for the package).

MAE (facebookresearch/mae, ``util/pos_embed.py``, ``get_2d_sincos_pos_embed``) builds
``np.meshgrid(grid_w, grid_h)`` ("here w goes first"), so the first half of the channels encodes
the *column* and the second half the *row*; each half is ``[sin(p omega), cos(p omega)]`` with
``omega_i = 10000^(-i / (D / 4))``, ``i = 0 .. D/4 - 1``. CIM's reference code
(weivision/Correlational-Image-Modeling) imports the same function for its encoder and decoder;
SiamMAE follows MAE. The ViT encoder (:mod:`correlearn.models.vit`), CIM's decoder queries and
SiamMAE's decoder all use :func:`sincos_2d`.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=32)
def _sincos_2d(dim: int, h: int, w: int, device: torch.device | str) -> torch.Tensor:
    # inference_mode(False): a cached inference tensor would poison later autograd use.
    with torch.inference_mode(False):
        omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
        rows, cols = torch.meshgrid(
            torch.arange(h, dtype=torch.float64),
            torch.arange(w, dtype=torch.float64),
            indexing="ij",
        )
        parts = [p.reshape(-1, 1) * omega for p in (cols, rows)]
        pe = torch.cat([f(p) for p in parts for f in (torch.sin, torch.cos)], dim=1)
        return pe.float().to(device)


def sincos_2d(dim: int, h: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """MAE's fixed 2-D sin-cos position embedding of an (h, w) grid.

    Args:
        dim: embedding width D, a multiple of 4.
        h: grid rows.
        w: grid columns.
        device: where the returned tensor lives.

    Returns:
        (h * w, D) float32, row-major over the grid: channels [0, D/2) encode the column as
        [sin, cos], channels [D/2, D) the row. Computed in float64, cast to float32, and cached
        per (D, h, w, device); treat it as read-only.

    Raises:
        ValueError: D is not a multiple of 4.
    """
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs dim % 4 == 0, got {dim}")
    return _sincos_2d(dim, h, w, device)
