"""Flow ``cropmae``: image shards -> CropMAE pre-training -> label propagation against its baselines."""

from flows.method_flow import method_flow

cropmae_flow = method_flow(
    "cropmae", "pretrain_cropmae", "CropMAE masked crop-pair pre-training and its evaluations"
)
