"""Training losses as pure tensor functions (no modules, no state), one module per family.

- :mod:`correlearn.losses.byol`: BYOL's normalised MSE against a stop-gradient target (BYOL eq. 2;
  ORL eq. 1-2).
- :mod:`correlearn.losses.simsiam`: SimSiam's symmetrised loss (SimSiam eq. 2-4) and VFS's
  frame-pair version (VFS eq. 5).
- :mod:`correlearn.losses.moco`: MoCo's InfoNCE with a queue of negatives (MoCo eq. 1) and VFS's
  frame-pair version (VFS eq. 4).
- :mod:`correlearn.losses.cim`: CIM's dense losses between predicted and ground-truth correlation
  maps (CIM eq. 7, Table 3).
- :mod:`correlearn.losses.mae`: MAE's per-patch normalised pixel target and masked-patch MSE, the
  SiamMAE loss.

The methods in :mod:`correlearn.methods` import them.
"""
