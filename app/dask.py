"""Prefect's Dask task runner for a flow (``correlearn flow run ... --dask-workers N``)."""

from __future__ import annotations

from typing import Any


def with_dask(flow_fn: Any, n_workers: int, address: str | None = None) -> Any:
    """The same flow on Prefect's Dask task runner.

    The runner starts a local cluster of ``n_workers`` processes, or joins an existing cluster at
    ``address`` (``tcp://scheduler:8786``) that spans machines. Mapped tasks (the ORL proposals per shard) then run on the Dask workers; the stages' own
    process pools and the artifact store are unchanged, so the artifacts are identical.
    """
    from prefect_dask import DaskTaskRunner

    if address:
        runner = DaskTaskRunner(address=address)
    else:
        runner = DaskTaskRunner(
            cluster_kwargs={"n_workers": n_workers, "threads_per_worker": 1, "processes": True}
        )
    return flow_fn.with_options(task_runner=runner)
