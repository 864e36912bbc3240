"""Late lookup of the stage and flow registries.

The library never imports ``stages/`` or ``flows/`` at module level (ARCHITECTURE.md: the library
computes, stages and flows wire). The CLI and the flows find them here by module name at run time.
"""

from __future__ import annotations

import importlib
from typing import Any

from correlearn.stage import StageSpec


def stage_registry() -> dict[str, StageSpec]:
    """``stages.STAGES``: stage name -> spec."""
    return importlib.import_module("stages").STAGES


def flow_registry() -> dict[str, Any]:
    """``flows.FLOWS``: flow name -> Prefect flow function."""
    return importlib.import_module("flows").FLOWS
