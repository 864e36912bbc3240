"""Projector and predictor MLPs for the siamese methods (BYOL, ORL, VFS/SimSiam, CIM's target).

Shapes used by the papers:

- BYOL (Grill et al. 2020, Sec. 3.3) and ORL (Xie et al. 2021, Sec. 3.2): projector and predictor
  are both ``Linear(in, 4096) -> BN -> ReLU -> Linear(4096, 256)``: ``mlp(2048, 4096, 256)`` and
  ``mlp(256, 4096, 256)``.
- SimSiam (Chen & He 2021, Sec. 4 "Projection MLP"/"Prediction MLP"), used by VFS without negatives:
  projector 3 FC layers with BN on every layer including the output one, ReLU on all but the output
  (``mlp(d, 2048, 2048, num_layers=3, last_bn=True)``; that BN is non-affine in SimSiam's code and
  affine in VFS's); predictor a 2-layer bottleneck without BN on
  its output (``mlp(2048, 512, 2048)``; VFS R18: ``mlp(512, 128, 512)``).
- MoCo v2 / VFS with negatives (Sec. 4.1): a 2-layer projector, ``mlp(d, d, 128)``; MoCo v2 has no
  BN in it, hence ``hidden_bn``.
"""

from __future__ import annotations

from torch import nn


def mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    num_layers: int = 2,
    last_bn: bool = False,
    last_bn_affine: bool = True,
    hidden_bn: bool = True,
) -> nn.Sequential:
    """A projector/predictor MLP: (B, in_dim) -> (B, out_dim).

    Hidden layers are ``Linear -> BatchNorm1d -> ReLU``; the output layer is a plain ``Linear``,
    followed by ``BatchNorm1d`` when ``last_bn`` (SimSiam's projector; SimSiam's code makes that BN
    non-affine, ``last_bn_affine=False``). Linear layers followed by BN have no bias, as the BN's
    shift makes it redundant (SimSiam code); other linear layers keep theirs.

    Args:
        in_dim: input width.
        hidden_dim: width of every hidden layer.
        out_dim: output width.
        num_layers: number of Linear layers (>= 1).
        last_bn: BatchNorm on the output layer (no ReLU after it).
        last_bn_affine: whether that output BN learns a scale and shift.
        hidden_bn: BatchNorm in the hidden layers (False for MoCo v2's projector).

    Returns:
        The MLP as an ``nn.Sequential``.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_layers - 1):
        layers.append(nn.Linear(dim, hidden_dim, bias=not hidden_bn))
        if hidden_bn:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers.append(nn.ReLU(inplace=True))
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim, bias=not last_bn))
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=last_bn_affine))
    return nn.Sequential(*layers)


def byol_projector(in_dim: int, hidden_dim: int = 4096, out_dim: int = 256) -> nn.Sequential:
    """BYOL/ORL projector g (BYOL Sec. 3.3): Linear(in, 4096) -> BN -> ReLU -> Linear(4096, 256)."""
    return mlp(in_dim, hidden_dim, out_dim)


def byol_predictor(dim: int = 256, hidden_dim: int = 4096) -> nn.Sequential:
    """BYOL/ORL predictor q (BYOL Sec. 3.3): same shape as the projector, 256 -> 4096 -> 256."""
    return mlp(dim, hidden_dim, dim)


def simsiam_projector(in_dim: int, dim: int = 2048, last_bn_affine: bool = False) -> nn.Sequential:
    """SimSiam projector (Sec. 4): 3 FC, BN on each incl. the output, no last ReLU.

    SimSiam's code makes the output BN non-affine (``last_bn_affine=False``, the default); the VFS
    reference code (``SimSiamHead``, ``build_norm1d``) keeps it affine (``True``).
    """
    return mlp(in_dim, dim, dim, num_layers=3, last_bn=True, last_bn_affine=last_bn_affine)


def simsiam_predictor(dim: int = 2048, hidden_dim: int = 512) -> nn.Sequential:
    """SimSiam predictor (Sec. 4): bottleneck dim -> hidden_dim (BN, ReLU) -> dim, no output BN."""
    return mlp(dim, hidden_dim, dim)
