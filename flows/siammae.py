"""Flow ``siammae``: video shards -> frame index -> SiamMAE pre-training -> label propagation against its baselines."""

from flows.method_flow import method_flow

siammae_flow = method_flow(
    "siammae", "pretrain_siammae", "SiamMAE masked frame-pair pre-training and its evaluations"
)
