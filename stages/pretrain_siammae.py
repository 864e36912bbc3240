"""Stage ``pretrain_siammae``: Siamese masked autoencoding of frame pairs (Gupta et al. 2023).

The method, its config (paper defaults), its inputs and its batches are declared in the methods
registry (``correlearn.pretrain.METHODS["siammae"]``); this module names the stage.
"""

from correlearn.pretrain.stage import pretrain_stage

STAGE = pretrain_stage(
    "siammae",
    name="pretrain_siammae",
    version=2,  # 2: initial weights seeded from train.seed
    description="SiamMAE masked frame-pair pre-training on videos",
)
