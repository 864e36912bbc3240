"""Stage ``pretrain_cim``: Correlational Image Modeling pre-training (Li et al. 2023, Sec. 3.2).

The method, its config (paper defaults), its inputs and its batches are declared in the methods
registry (``correlearn.pretrain.METHODS["cim"]``); this module names the stage.
"""

from correlearn.pretrain.stage import pretrain_stage

STAGE = pretrain_stage(
    "cim",
    name="pretrain_cim",
    version=2,  # 2: initial weights seeded from train.seed
    description="CIM pre-training (crop-and-correlate)",
)
