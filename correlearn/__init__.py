"""correlearn: self-supervised correspondence learning (CIM, ORL, VFS, SiamMAE, CropMAE), cached."""

__version__ = "0.1.0"
