"""The one shape of a method flow: produce the training stage's inputs, train, evaluate.

:func:`method_flow` makes the Prefect flow of one method from its name and training stage; the
stage's declared inputs (and theirs, recursively) are produced by their default stages, once each,
in declaration order, so ORL's mining chain and the video methods' shards and frame index need no
flow code of their own. The evaluation is :func:`flows.evaluation.train_and_evaluate`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.evaluation import train_and_evaluate
from flows.flow_session import flow_session


def method_flow(name: str, stage: str, description: str) -> Any:
    """The Prefect flow ``name`` that trains ``stage`` and evaluates it (see module doc).

    The flow's ``map_shards`` parameter maps the pending units of stages that declare them (the
    ORL mining stages, per input shard) as Prefect tasks first, for a Dask task runner.
    """

    def run(
        config: str,
        overrides: list[str] | None = None,
        force: list[str] | None = None,
        stop_after: str | None = None,
        map_shards: bool = False,
    ) -> dict:
        with flow_session(
            name, config, overrides or [], force or [], stop_after, map_units=map_shards
        ) as s:
            train_and_evaluate(s, name, stage, s.inputs_of(stage), s.options)
        return s.summary().to_dict()

    run.__doc__ = f"{description}; returns the flow run's record (``{{'flow', 'stages', ...}}``)."
    run.__name__ = f"{name}_flow"
    return flow(name=name)(run)
