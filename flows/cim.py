"""Flow ``cim``: image shards -> CIM pre-training -> label propagation and k-NN against its baselines."""

from flows.method_flow import method_flow

cim_flow = method_flow("cim", "pretrain_cim", "Correlational Image Modeling and its evaluations")
