"""The method flows, in the demo's order: BYOL first (ORL's stage 1 and the image-level baseline)."""

from flows.byol import byol_flow
from flows.cim import cim_flow
from flows.cropmae import cropmae_flow
from flows.orl import orl_flow
from flows.siammae import siammae_flow
from flows.vfs import vfs_flow

METHOD_FLOWS = {
    "byol": byol_flow,
    "orl": orl_flow,
    "cim": cim_flow,
    "vfs": vfs_flow,
    "siammae": siammae_flow,
    "cropmae": cropmae_flow,
}
