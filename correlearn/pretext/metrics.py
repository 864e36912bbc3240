"""Held-out pretext metrics: how well a method does its own task on data it never trained on.

Pure tensor functions, one per task, each with the trivial predictor it must beat:

- :func:`retrieval_top1`: two views (or two distant frames) of one item; the first retrieves the
  second among the second views of every item (BYOL eq. 2, ORL eq. 1, VFS Sec. 3); chance 1/N.
- :func:`peak_in_box` and :func:`thresholded_iou`: where an exemplar came from in its context
  (CIM Sec. 3.2, eq. 6), against :func:`centre_prior`.
- the masked-patch error of SiamMAE is its own loss (:func:`correlearn.losses.mae.masked_mse`),
  against :func:`mean_patch_prediction` (each patch predicted as its own mean colour).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


@torch.no_grad()
def retrieval_top1(
    queries: torch.Tensor,
    keys: torch.Tensor,
    groups: torch.Tensor | None = None,
    center: bool = True,
) -> float:
    """Share of queries whose nearest key (cosine) is their own partner.

    Args:
        queries: (N, D); row i should retrieve row i of ``keys``.
        keys: (N, D).
        groups: (N,) optional group of each item (its video): keys of the query's own group other
            than its partner are left out of its gallery. Frames a few steps apart in one video
            are near-duplicates, not negatives, so instance retrieval is scored against the
            other videos' items only.
        center: subtract the mean query from the queries and the mean key from the keys before
            the cosine. Projection heads put a large component common to every item into their
            outputs (at init, and early in training, far larger than what tells items apart);
            keys that lean further into it then win every query's argmax (hubs), and top-1 sits at
            chance even where partners are on average far closer than other items. Centring
            removes what every item shares and is the same for every model scored.

    Returns:
        Top-1 accuracy in [0, 1]; chance is the mean of 1/(gallery size). Ties go to the lowest
        index, so a constant embedding scores 1 only where the partner comes first.
    """
    if queries.shape != keys.shape or queries.ndim != 2:
        raise ValueError(f"queries {tuple(queries.shape)} and keys {tuple(keys.shape)} differ")
    queries, keys = queries.float(), keys.float()
    if center:
        queries = queries - queries.mean(dim=0, keepdim=True)
        keys = keys - keys.mean(dim=0, keepdim=True)
    sim = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T
    own = torch.arange(len(sim), device=sim.device)
    if groups is not None:
        groups = groups.to(sim.device)
        same = groups[:, None] == groups[None, :]
        sim = sim.masked_fill(same & (own[:, None] != own[None, :]), float("-inf"))
    return float((sim.argmax(dim=1) == own).float().mean())


def retrieval_chance(n: int, groups: torch.Tensor | None = None) -> float:
    """Expected top-1 of a random ranking: the mean of 1/(gallery size) of :func:`retrieval_top1`."""
    if groups is None:
        return 1.0 / n
    same = (groups[:, None] == groups[None, :]).sum(1).float()
    return float((1.0 / (n - same + 1)).mean())


@torch.no_grad()
def peak_in_box(probs: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Whether each predicted map peaks inside its ground-truth region.

    Args:
        probs: (N, H, W) predicted correlation maps (any monotone score).
        maps: (N, H, W) ground truth in {0, 1}.

    Returns:
        (N,) float, 1 where the argmax of ``probs`` lies on a 1 of ``maps``.
    """
    peak = probs.flatten(1).argmax(dim=1)
    return maps.flatten(1).gather(1, peak[:, None])[:, 0].float()


@torch.no_grad()
def thresholded_iou(
    probs: torch.Tensor, maps: torch.Tensor, threshold: float = 0.5
) -> torch.Tensor:
    """IoU of each map thresholded at ``threshold`` with its ground truth (CIM's y_hat > 0.5).

    Args:
        probs: (N, H, W) probabilities.
        maps: (N, H, W) ground truth in {0, 1}.
        threshold: the decision level.

    Returns:
        (N,) IoU; an empty union counts as 1.
    """
    pred = (probs > threshold).flatten(1)
    gt = maps.flatten(1) > 0.5
    inter = (pred & gt).sum(1).float()
    union = (pred | gt).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def centre_prior(maps: torch.Tensor) -> torch.Tensor:
    """The trivial localiser: a centred square of the mean ground-truth area, peaking at the centre.

    Args:
        maps: (N, H, W) ground truth in {0, 1} (only their mean area is used).

    Returns:
        (N, H, W) maps in [0, 1]: 1 inside the square and a falling ramp outside it, so the argmax
        is the centre pixel and thresholding at 0.5 gives the square.
    """
    n, h, w = maps.shape
    side = float(maps.flatten(1).sum(1).float().mean().clamp_min(1.0).sqrt())
    ys = torch.arange(h, dtype=torch.float32) - (h - 1) / 2
    xs = torch.arange(w, dtype=torch.float32) - (w - 1) / 2
    # Chebyshev distance from the centre: a square level set.
    dist = torch.maximum(ys.abs()[:, None], xs.abs()[None, :])
    inside = (dist <= side / 2).float()
    ramp = 0.5 * (1.0 - dist / dist.max().clamp_min(1.0))
    # A strict peak at the centre pixel (odd sizes; on even sizes the top-left of the four).
    prior = torch.maximum(inside, ramp) - 1e-6 * dist
    return prior.expand(n, h, w).to(maps.device)


def mean_patch_prediction(target: torch.Tensor) -> torch.Tensor:
    """The trivial reconstruction: every patch predicted as its own mean value.

    Args:
        target: (B, N, P) target patches (per-patch normalised under ``norm_pix_loss``, where
            this is 0 and its error is the patches' variance, about 1).

    Returns:
        (B, N, P).
    """
    return target.mean(dim=-1, keepdim=True).expand_as(target)


@torch.no_grad()
def two_view_retrieval(
    predict: Callable[[torch.Tensor], torch.Tensor],
    target: Callable[[torch.Tensor], torch.Tensor],
    pairs: list[tuple[torch.Tensor, torch.Tensor]],
    groups: torch.Tensor | None = None,
    center: bool = True,
) -> float:
    """Symmetrised retrieval top-1 of the BYOL-family task over one gallery of every pair.

    The online prediction of one view retrieves the target projection of the other view (BYOL
    eq. 2, cosine), in both directions, among the other views of all items.

    Args:
        predict: online branch, (B, 3, S, S) -> (B, D).
        target: target branch, (B, 3, S, S) -> (B, D).
        pairs: chunks ``(x1, x2)`` of (B_i, 3, S, S) views; row r of x1 and x2 show one item.
        groups: (N,) the items' groups over all chunks (see :func:`retrieval_top1`).
        center: centre queries and keys over all chunks (see :func:`retrieval_top1`).

    Returns:
        The mean of the two directions' top-1, in [0, 1] (chance: :func:`retrieval_chance`).
    """
    p1 = torch.cat([predict(a) for a, _ in pairs])
    p2 = torch.cat([predict(b) for _, b in pairs])
    z1 = torch.cat([target(a) for a, _ in pairs])
    z2 = torch.cat([target(b) for _, b in pairs])
    return symmetric_retrieval(p1, z1, p2, z2, groups, center)


def symmetric_retrieval(
    p1: torch.Tensor,
    z1: torch.Tensor,
    p2: torch.Tensor,
    z2: torch.Tensor,
    groups: torch.Tensor | None = None,
    center: bool = True,
) -> float:
    """:func:`two_view_retrieval` on embeddings already computed: p1 retrieves z2, p2 retrieves z1.

    Args:
        p1: (N, D) predictions of the first views.
        z1: (N, D) target projections of the first views.
        p2: (N, D) predictions of the second views.
        z2: (N, D) target projections of the second views.
        groups: (N,) the items' groups (see :func:`retrieval_top1`).
        center: centre queries and keys (see :func:`retrieval_top1`).

    Returns:
        The mean of the two directions' top-1.
    """
    return 0.5 * (retrieval_top1(p1, z2, groups, center) + retrieval_top1(p2, z1, groups, center))
