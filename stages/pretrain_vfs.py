"""Stage ``pretrain_vfs``: VFS frame-level similarity learning on video shards (Xu & Wang 2021).

The method, its config (paper defaults), its inputs and its batches are declared in the methods
registry (``correlearn.pretrain.METHODS["vfs"]``); this module names the stage.
"""

from correlearn.pretrain.stage import pretrain_stage

STAGE = pretrain_stage(
    "vfs",
    name="pretrain_vfs",
    version=2,  # 2: initial weights seeded from train.seed
    description="VFS frame-level similarity pre-training on videos",
)
