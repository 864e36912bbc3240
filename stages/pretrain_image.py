"""Stage ``pretrain_image``: image-level BYOL (ORL stage 1, and the image-level baseline).

The method, its config (paper defaults), its inputs and its batches are declared in the methods
registry (``correlearn.pretrain.METHODS["byol"]``); this module names the stage.
"""

from correlearn.pretrain.stage import pretrain_stage

STAGE = pretrain_stage(
    "byol",
    name="pretrain_image",
    version=2,  # 2: initial weights seeded from train.seed
    description="BYOL pre-training (ORL stage 1)",
)
