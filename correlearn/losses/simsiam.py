"""SimSiam's symmetrised loss (Chen & He 2021, eq. 2-4) and VFS's frame-pair form (VFS eq. 5).

VFS (Xu & Wang 2021) measures the distance as ``2 - 2 p.sg(z)`` on L2-normalised vectors, which
is BYOL's normalised MSE (:func:`correlearn.losses.byol.byol_loss`), i.e. SimSiam's ``-cos`` up to
an affine map.
"""

from __future__ import annotations

import torch

from correlearn.losses.byol import byol_loss


def simsiam_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """Symmetrised SimSiam loss, D(p1, sg(z2))/2 + D(p2, sg(z1))/2 (SimSiam eq. 2-4).

    D is VFS eq. 5's 2 - 2 p.z on L2-normalised vectors. z1/z2 come from the same network as
    p1/p2 before the predictor; the stop-gradient is applied here.

    Args:
        p1: (B, D) prediction of view 1.
        p2: (B, D) prediction of view 2.
        z1: (B, D) projection of view 1.
        z2: (B, D) projection of view 2.

    Returns:
        Scalar in [0, 4].
    """
    return 0.5 * (byol_loss(p1, z2) + byol_loss(p2, z1))


def simsiam_pair_loss(
    p: torch.Tensor, z: torch.Tensor, pairs: list[tuple[int, int]]
) -> torch.Tensor:
    """VFS eq. 5 symmetrised over each frame pair, averaged over pairs and videos (weight 1/pairs).

    Args:
        p: (B, n, D) predictor outputs of n frames per video.
        z: (B, n, D) projections (the stop-gradient is applied here).
        pairs: frame index pairs (a, b), 0 <= a, b < n.

    Returns:
        Scalar in [0, 4]; 0 when p and z point the same way.
    """
    a, b = (torch.tensor(x, device=p.device) for x in zip(*pairs, strict=True))
    pa, pb, za, zb = (t[:, i].flatten(0, 1) for t, i in ((p, a), (p, b), (z, a), (z, b)))
    return simsiam_loss(pa, pb, za, zb)
