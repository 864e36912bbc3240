"""Geometry of CIM's exemplars (Li et al. 2023, Sec. 3.2 "Cropping strategy", Fig. 3).

An exemplar is a rotated rectangle inside the square context, drawn from its scale ratio
r0 = (h * w) / (m * m), shape ratio r1 = h / w and rotation alpha
(:func:`sample_exemplar_geometry`); :func:`cut_exemplar` resamples it to n x n and :func:`gt_map`
rasterises it as the ground-truth correlation map. :mod:`correlearn.data.cim_pairs` builds the
pairs from them.

Geometry convention: continuous pixel coordinates, the context spans [0, W] x [0, H], pixel (i, j)
has its centre at (x, y) = (j + 0.5, i + 0.5), y points down. A box (cx, cy, w, h, angle) is the
rectangle of width w and height h around (cx, cy), turned counter-clockwise on screen by ``angle``
degrees: its local point (u, v) sits at (cx + u cos a + v sin a, cy - u sin a + v cos a).

Every function draws all randomness from an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as TF

if TYPE_CHECKING:
    from correlearn.data.cim_pairs import CIMPairConfig

# Shortest exemplar side in context pixels: a rectangle this thick always covers a pixel centre,
# so a ground-truth map is never empty even for r0 -> 0 (the paper's range is the open (0, 1)).
_MIN_SIDE_PX = 2.0
# Candidates per vectorised redraw, and the number of such blocks before falling back to a shrink
# (the bounded proposal box of :func:`_fitting_shape_and_angle` accepts about a third).
_REDRAW_BLOCK = 16
_MAX_REDRAW_BLOCKS = 256


class ExemplarBox(NamedTuple):
    """A rotated rectangle in context pixels (module docstring convention); angle in degrees."""

    cx: float
    cy: float
    w: float
    h: float
    angle: float


def _extent(w: float, h: float, angle: float) -> tuple[float, float]:
    """Width and height of the axis-aligned bounding box of a (w, h) rectangle turned by angle."""
    a = math.radians(angle)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    return w * c + h * s, w * s + h * c


def _fits(r0: float, t: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Whether crops of area r0 m^2, log shape t = log r1 and angle (degrees) fit in the context.

    Args:
        r0: scale ratio.
        t: (K,) log shape ratios.
        angle: (K,) angles in degrees.

    Returns:
        (K,) bool: the turned rectangle's bounding box is at most m x m (up to rounding).
    """
    a = np.radians(angle)
    c, s = np.abs(np.cos(a)), np.abs(np.sin(a))
    w, h = np.sqrt(r0 * np.exp(-t)), np.sqrt(r0 * np.exp(t))  # in units of m
    return (w * c + h * s <= 1 + 1e-9) & (w * s + h * c <= 1 + 1e-9)


def _fitting_shape_and_angle(
    rng: np.random.Generator, r0: float, cfg: CIMPairConfig
) -> tuple[float, float] | None:
    """Draw (r1, alpha) from their configured distributions conditioned on the r0 crop fitting.

    The prior is uniform in (alpha, log r1) over the configured box, so the conditional is uniform
    over the region that fits; rejection sampling from a smaller box that still holds that region
    draws it exactly. Two bounds shrink the box (both are equalities at r0 = 1):

    - over all shapes the smallest bounding box of a turned crop is the square's, side
      sqrt(r0) m (|cos a| + |sin a|), so for r0 > 1/2 only |a| <= asin(1/r0 - 1) / 2 fits (used
      when the rotation range lies within [-45, 45]; beyond it the +-90 degree branch fits too);
    - a crop whose longer side exceeds m fits at best (sqrt(2) - 1) m^2 (the diagonal), so for
      r0 > sqrt(2) - 1 both sides are at most m: |log r1| <= -log r0.

    Returns:
        (r1, alpha in degrees), or None when nothing in the configured ranges fits or no
        candidate of ``_MAX_REDRAW_BLOCKS`` blocks did (measured: never in 300 draws each at
        r0 = 0.9999 and 1 with the default ranges; only a rotation range beyond [-45, 45] with
        r0 near 1 gets there); the caller then shrinks the crop.
    """
    t_lo, t_hi = math.log(cfg.exemplar_shape[0]), math.log(cfg.exemplar_shape[1])
    a_lo, a_hi = cfg.rotation
    if r0 > 0.5 and -45.0 <= a_lo and a_hi <= 45.0:
        a_max = math.degrees(0.5 * math.asin(min(1.0, 1.0 / r0 - 1.0)))
        a_lo, a_hi = max(a_lo, -a_max), min(a_hi, a_max)
    if r0 > math.sqrt(2.0) - 1.0:
        t_max = max(0.0, -math.log(r0))  # never -0.0: numpy rejects uniform(0.0, -0.0)
        t_lo, t_hi = max(t_lo, -t_max), min(t_hi, t_max)
    if a_lo > a_hi or t_lo > t_hi:
        return None
    for _ in range(_MAX_REDRAW_BLOCKS):
        t = rng.uniform(t_lo, t_hi, _REDRAW_BLOCK)
        angle = rng.uniform(a_lo, a_hi, _REDRAW_BLOCK)
        ok = np.flatnonzero(_fits(r0, t, angle))
        if ok.size:
            return math.exp(float(t[ok[0]])), float(angle[ok[0]])
    return None


def sample_exemplar_geometry(rng: np.random.Generator, m: int, cfg: CIMPairConfig) -> ExemplarBox:
    """Draw r0, r1 and alpha (Sec. 3.2, Fig. 3) and place the rotated crop inside the context.

    r0 ~ U(exemplar_scale), r1 ~ logU(exemplar_shape), alpha ~ U(rotation); w = sqrt(r0 m^2 / r1),
    h = r1 w. A turned rectangle whose bounding box is wider or taller than the context (large r0
    with elongated or rotated crops) does not fit. ``exemplar_fit="redraw"`` keeps r0 and redraws
    (r1, alpha) from their distributions conditioned on fitting (:func:`_fitting_shape_and_angle`),
    so r0 is exactly as configured and large crops come out squarer and less turned, as they must.
    ``"shrink"`` keeps the drawn r1 and alpha and shrinks the rectangle about its centre until it
    fits, which biases r0 down instead. Either way the centre is then uniform over the positions
    whose bounding box lies inside the context.

    Args:
        rng: the random generator.
        m: context side in pixels.
        cfg: the ranges.

    Returns:
        The box; its four corners lie in [0, m] x [0, m].
    """
    r0 = rng.uniform(*cfg.exemplar_scale)
    fitted = _fitting_shape_and_angle(rng, r0, cfg) if cfg.exemplar_fit == "redraw" else None
    if fitted is None:
        lo, hi = cfg.exemplar_shape
        r1 = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        angle = float(rng.uniform(*cfg.rotation))
    else:
        r1, angle = fitted
    area = r0 * m * m
    w = max(math.sqrt(area / r1), _MIN_SIDE_PX)
    h = max(r1 * w, _MIN_SIDE_PX)
    bw, bh = _extent(w, h, angle)
    shrink = min(1.0, m / bw, m / bh)
    w, h, bw, bh = w * shrink, h * shrink, bw * shrink, bh * shrink
    # max(.., 0) absorbs the rounding of a box that fits exactly.
    cx = bw / 2 + float(rng.uniform()) * max(m - bw, 0.0)
    cy = bh / 2 + float(rng.uniform()) * max(m - bh, 0.0)
    return ExemplarBox(cx, cy, w, h, angle)


def box_corners(box: ExemplarBox) -> np.ndarray:
    """(4, 2) corners (x, y): local (-w/2, -h/2), (w/2, -h/2), (w/2, h/2), (-w/2, h/2) in turn."""
    a = math.radians(box.angle)
    c, s = math.cos(a), math.sin(a)
    u = np.array([-1, 1, 1, -1]) * box.w / 2
    v = np.array([-1, -1, 1, 1]) * box.h / 2
    return np.stack([box.cx + u * c + v * s, box.cy - u * s + v * c], axis=1)


def cut_exemplar(context: torch.Tensor, box: ExemplarBox, n: int) -> torch.Tensor:
    """Resample the rotated rectangle ``box`` of the context to an n x n exemplar (Sec. 3.2).

    Output pixel (p, q) reads the context at local point (u, v) = (((q + .5) / n - .5) w,
    ((p + .5) / n - .5) h) bilinearly, so the exemplar holds exactly the region that
    :func:`gt_map` marks, upright. When the box is larger than n the grid is supersampled k-fold
    and average-pooled (antialiasing; the ref code's PIL resize also antialiases).

    Args:
        context: (3, H, W) uint8 or float image.
        box: the region in context pixels.
        n: exemplar side.

    Returns:
        (3, n, n) exemplar of the context's dtype.
    """
    k = max(1, math.ceil(max(box.w, box.h) / n))
    t = (torch.arange(n * k, dtype=torch.float64) + 0.5) / (n * k) - 0.5
    u, v = t[None, :] * box.w, t[:, None] * box.h
    a = math.radians(box.angle)
    c, s = math.cos(a), math.sin(a)
    x = box.cx + u * c + v * s
    y = box.cy - u * s + v * c
    height, width = context.shape[-2:]
    grid = torch.stack([2 * x / width - 1, 2 * y / height - 1], dim=-1)
    img = context.unsqueeze(0).float()
    out = TF.grid_sample(
        img, grid.unsqueeze(0).float(), mode="bilinear", padding_mode="border", align_corners=False
    )
    if k > 1:
        out = TF.avg_pool2d(out, k)
    out = out[0]
    if context.dtype == torch.uint8:
        return out.round().clamp(0, 255).to(torch.uint8)
    return out.to(context.dtype)


def gt_map(box: ExemplarBox, m: int | tuple[int, int]) -> torch.Tensor:
    """Ground-truth correlation map y (Sec. 3.2): 1 on the pixels whose centre is inside the box.

    Args:
        box: the exemplar's region in context pixels.
        m: context side, or (H, W).

    Returns:
        (H, W) uint8 in {0, 1}; its sum approximates w * h up to the rasterisation of the border.
    """
    height, width = (m, m) if isinstance(m, int) else m
    ys = torch.arange(height, dtype=torch.float64)[:, None] + 0.5 - box.cy
    xs = torch.arange(width, dtype=torch.float64)[None, :] + 0.5 - box.cx
    a = math.radians(box.angle)
    c, s = math.cos(a), math.sin(a)
    # Inverse of the corner map of the module docstring: pixel centre -> local (u, v).
    u = xs * c - ys * s
    v = xs * s + ys * c
    return ((u.abs() <= box.w / 2) & (v.abs() <= box.h / 2)).to(torch.uint8)
