"""Flow ``vfs``: video shards -> frame index -> pre-training -> label propagation vs random init."""

from __future__ import annotations

from prefect import flow

from flows.common import flow_session
from flows.evaluation import train_and_evaluate


@flow(name="vfs")
def vfs_flow(
    config: str,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
    stop_after: str | None = None,
) -> dict:
    """Pre-train vfs on the frame-gap index and evaluate it; returns ``{"flow", "stages"}``."""
    with flow_session("vfs", config, overrides or [], force or [], stop_after) as s:
        videos = s.run("video_shards")
        frames = s.run("frame_index", inputs={"videos": videos})
        inputs = {"videos": videos, "frames": frames}
        train_and_evaluate(s, "vfs", "pretrain_vfs", inputs, s.options)
    return s.summary()
