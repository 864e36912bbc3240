"""What a stage is (:class:`StageSpec`) and what it sees while it runs (:class:`StageContext`).

A stage module in ``stages/`` defines ``STAGE = StageSpec(...)``; its ``run(ctx)`` reads
``ctx.config`` and ``ctx.inputs``, writes files into ``ctx.out_dir``, and reports through the context.
No algorithm lives in a stage: ``run`` calls the library.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from correlearn.artifacts import ArtifactRef

if TYPE_CHECKING:
    from correlearn.tracking import Tracker

log = logging.getLogger("correlearn")


@dataclass(frozen=True)
class StageSpec:
    """A stage: a pure function of (its config section, its input artifacts).

    Attributes:
        name: stage name; also the default config section and the store folder.
        version: bump when the code changes what the stage writes (it is part of the key).
        config_model: pydantic model of the config section (paper defaults; unknown keys error).
        run: ``run(ctx) -> dict | None``; the dict is small metadata stored in the manifest.
        inputs: input name -> the stage that produces it by default.
        resolve: optional ``resolve(config, pipeline) -> dict`` of extra key material (a dataset
            spec and its file fingerprint, say) that is logged with the config.
        resumable: keep a stopped run's partial folder so ``run`` can continue from it.
        description: one line for ``correlearn stage list``.
    """

    name: str
    version: int
    config_model: type[BaseModel]
    run: Callable[[StageContext], dict[str, Any] | None]
    inputs: dict[str, str] = field(default_factory=dict)
    resolve: Callable[[Any, Any], dict[str, Any]] | None = None
    resumable: bool = False
    description: str = ""
    units: UnitMap | None = None


@dataclass(frozen=True)
class UnitCall:
    """One computing call of a stage whose work splits into units, as mapped tasks see it.

    Small and JSON-friendly (paths and the config dump), so a Prefect task on another machine can
    rebuild it: ``UnitCall.from_dict(call.to_dict(), spec)``.

    Attributes:
        stage: the stage name.
        config: the validated config section.
        resolved: the resolved config (with the stage's extra key material, e.g. a dataset spec).
        inputs: input name -> artifact reference.
        partial: the stage's partial folder; each unit writes its own file into it.
        base_dir: folder of the pipeline config (dataset roots resolve from it).
    """

    stage: str
    config: Any
    resolved: dict[str, Any]
    inputs: dict[str, ArtifactRef]
    partial: Path
    base_dir: Path

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (what a Prefect task is passed)."""
        return {
            "stage": self.stage,
            "config": self.config.model_dump(mode="json"),
            "resolved": self.resolved,
            "inputs": {k: v.to_dict() for k, v in self.inputs.items()},
            "partial": str(self.partial),
            "base_dir": str(self.base_dir),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], spec: StageSpec) -> UnitCall:
        """Inverse of :meth:`to_dict`, validating the config with the stage's model."""
        return cls(
            d["stage"],
            spec.config_model.model_validate(d["config"]),
            d["resolved"],
            {k: ArtifactRef.from_dict(v) for k, v in d["inputs"].items()},
            Path(d["partial"]),
            Path(d["base_dir"]),
        )


@dataclass(frozen=True)
class UnitMap:
    """A stage capability: its work splits into independent units (one file each), resumably.

    The stage's own ``run`` computes the units that are not done yet and merges them; a flow on the
    Dask task runner instead asks the pipeline for the pending units
    (:meth:`correlearn.pipeline.Pipeline.pending_units`) and maps :attr:`run_unit` over them as
    Prefect tasks first, so ``run`` then only merges. A unit is done when its file exists (written
    atomically).

    Attributes:
        names: ``names(call) -> [unit name]``, every unit of the call in a stable order.
        done_file: ``done_file(call, unit) -> Path``, the file the unit writes into ``call.partial``.
        run_unit: ``run_unit(call, unit) -> Path``, compute one unit and return its file.
    """

    names: Callable[[UnitCall], list[str]]
    done_file: Callable[[UnitCall, str], Path]
    run_unit: Callable[[UnitCall, str], Path]


class StageContext:
    """Everything a running stage may touch; it records what goes into the manifest."""

    def __init__(
        self,
        spec: StageSpec,
        config: Any,
        resolved: dict[str, Any],
        inputs: dict[str, ArtifactRef],
        out_dir: Path,
        tracker: Tracker | None,
        run_id: str | None,
        base_dir: Path,
        resumed: bool,
        pipeline_config: dict[str, Any] | None = None,
    ):
        self.spec = spec
        self.config = config
        self.resolved = resolved
        self.inputs = inputs
        self.out_dir = out_dir
        self.tracker = tracker
        self.run_id = run_id
        self.base_dir = base_dir
        self.resumed = resumed
        # The pipeline config mapping (after --set) the call was resolved from.
        self.pipeline_config = pipeline_config or {}
        self.counts: dict[str, int] = {}
        self.skipped: list[dict[str, str]] = []
        self.metrics: dict[str, float] = {}
        self.pictures: list[str] = []
        # Set by training stages: {"step", "total_steps", "stopped_on_budget"} (correlearn.budgets).
        self.progress: dict[str, Any] | None = None

    def input_path(self, name: str) -> Path:
        """Folder of the input artifact ``name``."""
        return Path(self.inputs[name].path)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Send metrics to MLflow; the last value of each also goes into the manifest."""
        self.metrics.update({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        if self.tracker and self.run_id:
            self.tracker.log_metrics(self.run_id, metrics, step)

    def skip(self, item: str, reason: str, warn: bool = True) -> None:
        """Record an input item the stage skipped; it is warned about and listed in the manifest.

        Args:
            item: what was skipped (a path, a key).
            reason: why.
            warn: False when the library call that skipped it has already warned (once is
                enough).
        """
        if warn:
            warnings.warn(f"{self.spec.name}: skipped {item}: {reason}", stacklevel=2)
        self.skipped.append({"item": str(item), "reason": reason})

    def count(self, name: str, n: int) -> None:
        """Record a count (images written, boxes kept, ...) in the manifest."""
        self.counts[name] = int(n)

    def picture(self, path: str | Path) -> None:
        """Register a picture (PNG/HTML in ``out_dir``) to log to MLflow and show in reports."""
        p = Path(path)
        rel = p.relative_to(self.out_dir) if p.is_absolute() else p
        self.pictures.append(str(rel))
        if self.tracker and self.run_id:
            self.tracker.log_artifact(self.run_id, self.out_dir / rel, "pictures")

    def info(self, msg: str) -> None:
        """A progress line for the user."""
        print(f"  [{self.spec.name}] {msg}", flush=True)
