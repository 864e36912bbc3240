"""Flow ``orl``: ORL's three stages, then label propagation and k-NN against its baselines.

image_shards -> proposals; pretrain_byol (stage 1, BYOL) -> embed -> neighbours; correspondence (stage 2)
-> pretrain_orl (stage 3): the chain is the stages' declared inputs, produced in order by
:func:`flows.method_flow.method_flow`. BYOL, ORL's stage 1, is evaluated by the ``byol`` flow.
With ``map_shards=True`` (``correlearn flow run orl --dask-workers N``) the per-shard work of
``proposals`` and ``embed`` is mapped as Prefect tasks first, which a Dask task runner spreads over
workers or machines (:mod:`app.dask`).
"""

from flows.method_flow import method_flow

orl_flow = method_flow("orl", "pretrain_orl", "ORL end to end and its evaluations")
