"""Prefect flows, one per method plus ``data`` and ``demo``: they name stages and wire artifacts."""

from flows.data import data_flow

FLOWS = {
    "data": data_flow,
}
