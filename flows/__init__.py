"""Prefect flows: one per method, ``data``, ``demo`` (all methods) and ``checkpoints``.

Flows name stages and wire artifacts; they never compute. This is the flow registry the
composition root (:mod:`app.registry`) looks up.
"""

from flows.data import data_flow
from flows.demo import demo_flow
from flows.methods import METHOD_FLOWS

FLOWS = {
    "data": data_flow,
    **METHOD_FLOWS,
    "demo": demo_flow,
}
