"""Flow ``vfs``: video shards -> frame index -> VFS pre-training -> label propagation against its baselines."""

from flows.method_flow import method_flow

vfs_flow = method_flow(
    "vfs", "pretrain_vfs", "VFS frame-level similarity learning and its evaluations"
)
