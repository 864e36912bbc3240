"""The stage and flow registries, looked up by the composition root only.

The stage registry is ``stages.STAGES`` (the index of the stage modules) and the flow registry
``flows.FLOWS``; both are imported on first use so that ``correlearn --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

from correlearn.stage import StageSpec


def stage_registry() -> dict[str, StageSpec]:
    """Stage name -> spec."""
    from stages import STAGES

    return STAGES


def flow_registry() -> dict[str, Any]:
    """Flow name -> Prefect flow function."""
    from flows import FLOWS

    return FLOWS
