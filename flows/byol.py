"""Flow ``byol``: shards -> BYOL pre-training (ORL stage 1) -> label propagation J&F and k-NN, against its baselines."""

from flows.method_flow import method_flow

byol_flow = method_flow(
    "byol", "pretrain_byol", "Image-level BYOL (ORL stage 1) and its evaluations"
)
