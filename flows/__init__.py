"""Prefect flows: one per method, ``data``, and ``demo`` (all methods).

Flows name stages and wire artifacts; they never compute.
"""

from flows.byol import byol_flow
from flows.cim import cim_flow
from flows.data import data_flow
from flows.demo import demo_flow
from flows.orl import orl_flow
from flows.siammae import siammae_flow
from flows.vfs import vfs_flow

# The order is the demo's: BYOL first, it is ORL's stage 1 and the image-level baseline.
METHOD_FLOWS = {
    "byol": byol_flow,
    "orl": orl_flow,
    "cim": cim_flow,
    "vfs": vfs_flow,
    "siammae": siammae_flow,
}

FLOWS = {
    "data": data_flow,
    **METHOD_FLOWS,
    "demo": demo_flow,
}
