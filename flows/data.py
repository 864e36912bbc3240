"""Flow ``data``: image shards, video shards and the frame-gap index of a pipeline config."""

from __future__ import annotations

from prefect import flow

from flows.flow_session import flow_session


@flow(name="data")
def data_flow(
    config: str,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
    stop_after: str | None = None,
) -> dict:
    """Build the shards and the frame index; returns ``{"flow", "stages": [...]}``."""
    with flow_session("data", config, overrides or [], force or [], stop_after) as s:
        s.run("image_shards")
        videos = s.run("video_shards")
        if videos:
            s.run("frame_index", inputs={"videos": videos})
    return s.summary().to_dict()
