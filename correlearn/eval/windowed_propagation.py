"""One label-propagation step restricted to a spatial window, computed in tiles.

The result is the reference codes' (VFS ``masked_attention_efficient``, CRW
``mem_efficient_batched_affinity``, DINO ``label_propagation``): every target cell takes the top-k
cosine affinities jointly over all context cells inside its window, weights them with
``softmax(cos / T)`` (DINO's ``exp(cos / T)`` normalised over the kept k is the same) and averages
their labels. What differs is the cost: the references compare every target cell with every
context cell and mask afterwards (DINO builds the full ``(T, hw, hw)`` affinity), whereas here a
tile of target cells is compared only with the context rectangle within reach of the tile (one
bmm per tile that reads the rectangle in place from an ``(h, w, T, C)`` layout), and only the
cells inside each target's window enter the top-k. Candidates are ordered cell-major here and
frame-major in the references, which matters only for exactly tied affinities: those come from
repeated copies of a frame (VFS and CRW contexts), whose tied cells carry the same labels, so the
soft labels agree. Near-ties are another matter: two candidates for the k-th place whose
affinities differ only by the float rounding of differently shaped GEMMs may be kept differently
here and there, which moves a soft label (by 0.012 once at 480p in the bench) but has left every
mask unchanged. ``bench/label_propagation.py`` measures the three and asserts identical masks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

Window = Literal["circle", "square"]


def window_reach(radius: float, window: Window) -> int:
    """Largest offset (cells, per axis) inside the window: Chebyshev <= r or Euclidean < r."""
    return math.floor(radius) if window == "square" else math.ceil(radius) - 1


@functools.lru_cache(maxsize=32)
def window_plan(h: int, w: int, radius: float, window: str, tile: tuple, device: str) -> tuple:
    """Per tile of target cells: its bounds, the context rectangle in reach, the in-window cells.

    Bounds are ``(row0, row1, col0, col1)``. ``sel`` is ``(n_t, n_w)`` long: for each target cell
    of the tile (row-major), the row-major indices into the context rectangle of the cells inside
    its window, padded with index 0 where a cell near the border has fewer; ``pad`` is ``(n_t,
    n_w)`` bool, True on the padding; ``cell`` is ``(n_t, n_w)``, the same cells as indices into
    the whole ``h * w`` map. ``tile`` is ``(rows, cols)``. Built once per (resolution, window,
    tile).
    """
    reach = window_reach(radius, window)
    plan = []
    for i0 in range(0, h, tile[0]):
        for j0 in range(0, w, tile[1]):
            tgt = (i0, min(h, i0 + tile[0]), j0, min(w, j0 + tile[1]))
            ctx = (max(0, i0 - reach), min(h, tgt[1] + reach), max(0, j0 - reach))
            ctx = (*ctx, min(w, tgt[3] + reach))
            ty, tx = torch.meshgrid(torch.arange(*tgt[:2]), torch.arange(*tgt[2:]), indexing="ij")
            cy, cx = torch.meshgrid(torch.arange(*ctx[:2]), torch.arange(*ctx[2:]), indexing="ij")
            dy = ty.reshape(-1, 1) - cy.reshape(1, -1)
            dx = tx.reshape(-1, 1) - cx.reshape(1, -1)
            if window == "square":
                inside = torch.maximum(dy.abs(), dx.abs()) <= radius
            else:
                inside = (dy**2 + dx**2) < radius**2
            # Stable sort puts each row's in-window cells first, in row-major order.
            order = torch.sort(inside.to(torch.uint8), dim=1, descending=True, stable=True)[1]
            n_w = int(inside.sum(1).max())
            sel = order[:, :n_w].contiguous()
            pad = ~torch.gather(inside, 1, sel)
            cell = cy.reshape(-1)[sel] * w + cx.reshape(-1)[sel]  # index into the h * w map
            plan.append((tgt, ctx, sel.to(device), pad.to(device), cell.to(device)))
    return tuple(plan)


def _layout(
    target_feat: torch.Tensor,
    ctx_feats: torch.Tensor | Sequence[torch.Tensor],
    ctx_labels: torch.Tensor | Sequence[torch.Tensor],
    normalized: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The kernel's layouts: query ``(h, w, C)``, keys ``(h, w, T, C)``, labels ``(K, T * hw)``."""
    # (h, w, T, C): the context rectangle of a tile is then, row by row, a (cols * T, C) matrix
    # at a fixed stride, which bmm reads in place (no copy of the rectangle per tile).
    keys = torch.stack([f.permute(1, 2, 0) for f in ctx_feats], dim=2).float()
    labs = torch.stack(list(ctx_labels)).float()  # (T, K, h, w)
    q = target_feat.permute(1, 2, 0).float()  # (h, w, C)
    if not normalized:
        q, keys = F.normalize(q, dim=-1), F.normalize(keys, dim=-1)
    t, k, h, w = labs.shape
    return q, keys, labs.permute(1, 0, 2, 3).reshape(k, t * h * w)


def propagate_labels(
    target_feat: torch.Tensor,
    ctx_feats: torch.Tensor | Sequence[torch.Tensor],
    ctx_labels: torch.Tensor | Sequence[torch.Tensor],
    radius: float,
    topk: int,
    temperature: float,
    window: Window = "circle",
    restrict_first: bool = True,
    tile: int | tuple[int, int] = 10,
    normalized: bool = False,
) -> torch.Tensor:
    """One propagation step: soft labels of the target frame from its context.

    Args:
        target_feat: ``(C, h, w)`` target features (L2-normalised here over C).
        ctx_feats: ``(T, C, h, w)`` context features, or ``T`` tensors ``(C, h, w)`` (saves a
            copy); index 0 is the long-term (first) frame.
        ctx_labels: ``(T, K, h, w)`` context soft labels, or ``T`` tensors ``(K, h, w)``.
        radius: window radius in cells (``window`` gives the metric).
        topk: number of affinities kept jointly over all context cells in reach.
        temperature: softmax temperature on the kept cosine similarities.
        window: ``"circle"`` (Euclidean < radius) or ``"square"`` (Chebyshev <= radius).
        restrict_first: apply the window to context entry 0 too (False: it is seen whole, CRW).
        tile: target tile ``(rows, cols)`` or side of the blocked computation (speed only).
        normalized: the features are L2-normalised over C already (skips that pass).

    Returns:
        ``(K, h, w)`` soft labels (each cell's weights sum to 1).
    """
    q, keys, labs = _layout(target_feat, ctx_feats, ctx_labels, normalized)
    (h, w, t, c), k = keys.shape, labs.shape[0]
    tile = (tile, tile) if isinstance(tile, int) else tuple(tile)
    plan = window_plan(h, w, float(radius), window, tile, str(q.device))
    # Unrestricted, frame 0's h * w cells come first among each target's candidates.
    first, n_free = (0, 0) if restrict_first else (1, h * w)
    out = q.new_empty(k, h, w)
    for (i0, i1, j0, j1), (r0, r1, c0, c1), sel, pad, cell in plan:
        qt = q[i0:i1, j0:j1].reshape(-1, c)  # (n_t, C)
        n_t, rows, cols = len(qt), r1 - r0, c1 - c0
        affs = [qt @ keys[:, :, 0].reshape(h * w, c).T] if n_free else []  # frame 0 whole
        if t > first:
            rect = keys[r0:r1, c0:c1].reshape(rows, cols * t, c)  # a view
            aff = torch.bmm(qt.expand(rows, -1, -1), rect.transpose(1, 2))  # (rows, n_t, cols*T)
            aff = aff.transpose(0, 1).reshape(n_t, rows * cols, t)[:, :, first:]
            # Only the in-window cells enter the top-k (n_w of rows * cols: ~1/3 for a circle).
            win = torch.gather(aff, 1, sel[:, :, None].expand(-1, -1, t - first))  # (n_t, n_w, T')
            win.masked_fill_(pad[:, :, None], float("-inf"))
            affs.append(win.view(n_t, -1))
        aff = affs[0] if len(affs) == 1 else torch.cat(affs, dim=1)
        top, idx = aff.topk(min(topk, aff.shape[1]), dim=1)  # (n_t, k)
        if t > first:
            # Kept entry (cell slot j, frame f) -> label column f * hw + cell[row, j].
            rel = (idx - n_free).clamp(min=0)
            f, j = first + rel % (t - first), rel // (t - first)
            idx = torch.where(idx < n_free, idx, f * (h * w) + torch.gather(cell, 1, j))
        weights = torch.softmax(top / temperature, dim=1)
        soft = (labs[:, idx] * weights).sum(-1)  # (K, n_t)
        out[:, i0:i1, j0:j1] = soft.view(k, i1 - i0, j1 - j0)
    return out
