"""Flow ``cim``: image shards -> CIM pre-training -> label propagation and k-NN vs random init."""

from __future__ import annotations

from prefect import flow

from flows.common import flow_session
from flows.evaluation import train_and_evaluate


@flow(name="cim")
def cim_flow(
    config: str,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
    stop_after: str | None = None,
) -> dict:
    """Correlational Image Modeling and its evaluations; returns ``{"flow", "stages"}``."""
    with flow_session("cim", config, overrides or [], force or [], stop_after) as s:
        shards = s.run("image_shards")
        train_and_evaluate(s, "cim", "pretrain_cim", {"shards": shards}, s.options)
    return s.summary()
