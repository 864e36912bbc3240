"""Stage ``pretrain_object``: ORL stage 3, object-level BYOL on mined RoI pairs (ORL Sec. 3.1).

The method, its config (paper defaults), its inputs and its batches are declared in the methods
registry (``correlearn.pretrain.METHODS["orl"]``); this module names the stage.
"""

from correlearn.pretrain.stage import pretrain_stage

STAGE = pretrain_stage(
    "orl",
    name="pretrain_object",
    version=2,  # 2: initial weights seeded from train.seed
    description="ORL object-level pre-training (stage 3)",
)
