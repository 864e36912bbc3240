"""Flow ``byol``: shards -> BYOL pre-training -> label propagation J&F and k-NN, against random init."""

from __future__ import annotations

from prefect import flow

from flows.common import flow_session
from flows.evaluation import train_and_evaluate


@flow(name="byol")
def byol_flow(
    config: str,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
    stop_after: str | None = None,
) -> dict:
    """Image-level BYOL (ORL stage 1) and its evaluations; returns ``{"flow", "stages"}``."""
    with flow_session("byol", config, overrides or [], force or [], stop_after) as s:
        shards = s.run("image_shards")
        train_and_evaluate(s, "byol", "pretrain_image", {"shards": shards}, s.options)
    return s.summary()
