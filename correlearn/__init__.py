"""correlearn: self-supervised correspondence learning (CIM, ORL, VFS, SiamMAE) as cached pipelines."""

__version__ = "0.1.0"
