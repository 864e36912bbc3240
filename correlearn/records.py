"""Typed records of what ran: one stage call (:class:`StageRun`) and one flow run (:class:`FlowRun`).

They travel between the layers instead of label strings and loose dicts: the pipeline returns a
:class:`StageRun`, a flow collects them (and one :class:`MethodEvaluation` per trained method) into
a :class:`FlowRun`, and the report, the demo tables, ``correlearn status`` and ``correlearn gc``
read the flow run back from its ``flow_result.json`` (:data:`FLOW_RESULT`). Every record is plain
JSON on the wire (``to_dict``/``from_dict``), so Prefect tasks pass them as small metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from correlearn.artifacts import MANIFEST, ArtifactRef

FLOW_RESULT = "flow_result.json"
METRICS = "metrics.json"
LOSS_CURVE = "pictures/loss_curve.png"  # a training artifact's loss curve
# The evaluation stage whose runs the J&F tables and curves read (by their ``subject``).
LP_STAGE = "eval_label_propagation"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@dataclass(frozen=True)
class StageRun:
    """One call of a stage: which artifact answered it and how.

    Attributes:
        stage: the stage name (``eval_label_propagation``).
        key: the artifact key.
        path: the artifact folder.
        cache_hit: an existing artifact answered the call.
        forced: the artifact was recomputed over an existing one (descendants recompute too).
        label: the call's name in a flow (``pretrain_vfs@40``); the stage name by default.
        subject: for an evaluation, the name of the checkpoint it evaluated (``vfs``,
            ``random-s0``); None for other stages. Tables group evaluations by it.
        seconds: compute time recorded in the artifact's manifest (of the run that made it).
        mlflow_run_id: the MLflow run of this call (None without tracking).
    """

    stage: str
    key: str
    path: str
    cache_hit: bool
    forced: bool = False
    label: str = ""
    subject: str | None = None
    seconds: float | None = None
    mlflow_run_id: str | None = None

    @classmethod
    def of(cls, ref: ArtifactRef, cache_hit: bool = True) -> StageRun:
        """The run of an existing artifact (an input given by key, say)."""
        return cls(ref.stage, ref.key, ref.path, cache_hit, label=ref.stage)

    @property
    def ref(self) -> ArtifactRef:
        """The artifact reference (what a downstream stage takes as an input)."""
        return ArtifactRef(self.stage, self.key, self.path)

    @property
    def name(self) -> str:
        """The label, or the stage name when the call has none."""
        return self.label or self.stage

    def manifest(self) -> dict[str, Any]:
        """The artifact's manifest (empty when it cannot be read)."""
        return _read_json(Path(self.path) / MANIFEST)

    def metrics(self) -> dict[str, Any]:
        """The artifact's ``metrics.json`` (evaluation stages; empty when absent)."""
        return _read_json(Path(self.path) / METRICS)

    def metric(self, name: str) -> float | None:
        """One number of ``metrics.json``, or None when absent."""
        value = self.metrics().get(name)
        return float(value) if isinstance(value, int | float) else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (the ``--json`` object of a stage, a Prefect task's result)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageRun:
        """Inverse of :meth:`to_dict`, tolerant of older or minimal flow results.

        Unknown keys are ignored; a missing path or cache-hit flag defaults (``gc`` needs only
        the stage and the key).
        """
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**{"cache_hit": False, "path": "", **known})


def _run_or_none(d: dict[str, Any] | None) -> StageRun | None:
    return StageRun.from_dict(d) if d else None


def _dict_or_none(r: StageRun | None) -> dict[str, Any] | None:
    return r.to_dict() if r is not None else None


@dataclass(frozen=True)
class CurvePoint:
    """One checkpoint of a J&F-vs-steps curve: its steps, label-propagation run and training run.

    The training run's manifest holds the checkpoint's held-out pretext report (``pretext``).
    """

    steps: int | None
    lp: StageRun | None
    ckpt: StageRun | None = None

    def pretext(self) -> dict[str, Any]:
        """The training manifest's held-out pretext report (empty without one)."""
        if self.ckpt is None:
            return {}
        return (self.ckpt.manifest().get("metadata") or {}).get("pretext") or {}


@dataclass
class MethodEvaluation:
    """How one trained method was evaluated in a flow run (``flows/evaluation.py``).

    Attributes:
        name: the checkpoint's name in tables (``vfs``).
        stage: the training stage (``pretrain_vfs``).
        preset: the label-propagation preset the final checkpoint resolved to.
        points: the curve, ascending in steps; the last is the final checkpoint.
        baselines: ``random-s<seed>`` and ``bn-init`` -> their label-propagation runs.
        knn: the k-NN probe of the final checkpoint; ``knn_random`` of the seed-0 random init.
        protocols: further protocol stage -> ``{"checkpoint": run, "random": run}``.
    """

    name: str
    stage: str
    preset: str | None = None
    points: list[CurvePoint] = field(default_factory=list)
    baselines: dict[str, StageRun | None] = field(default_factory=dict)
    knn: StageRun | None = None
    knn_random: StageRun | None = None
    protocols: dict[str, dict[str, StageRun | None]] = field(default_factory=dict)

    @property
    def final(self) -> StageRun | None:
        """The final checkpoint's label-propagation run."""
        return self.points[-1].lp if self.points else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "name": self.name,
            "stage": self.stage,
            "preset": self.preset,
            "points": [
                {"steps": p.steps, "lp": _dict_or_none(p.lp), "ckpt": _dict_or_none(p.ckpt)}
                for p in self.points
            ],
            "baselines": {k: _dict_or_none(v) for k, v in self.baselines.items()},
            "knn": _dict_or_none(self.knn),
            "knn_random": _dict_or_none(self.knn_random),
            "protocols": {
                p: {k: _dict_or_none(v) for k, v in runs.items()}
                for p, runs in self.protocols.items()
            },
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MethodEvaluation:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=d["name"],
            stage=d.get("stage", ""),
            preset=d.get("preset"),
            points=[
                CurvePoint(p.get("steps"), _run_or_none(p.get("lp")), _run_or_none(p.get("ckpt")))
                for p in d.get("points", [])
            ],
            baselines={k: _run_or_none(v) for k, v in (d.get("baselines") or {}).items()},
            knn=_run_or_none(d.get("knn")),
            knn_random=_run_or_none(d.get("knn_random")),
            protocols={
                p: {k: _run_or_none(v) for k, v in runs.items()}
                for p, runs in (d.get("protocols") or {}).items()
            },
        )


@dataclass
class FlowRun:
    """One flow run: its stage calls in order and its method evaluations.

    Attributes:
        flow: the flow name (``vfs``, ``demo``).
        stages: every stage call, in the order the flow made them.
        evaluations: one record per evaluated method.
        flows: for a flow of flows (``demo``), the flow runs it made.
        mlflow_run_id: the flow's parent MLflow run.
        table: the closing tables (markdown) of a flow that prints one (``demo``).
    """

    flow: str
    stages: list[StageRun] = field(default_factory=list)
    evaluations: list[MethodEvaluation] = field(default_factory=list)
    flows: list[FlowRun] = field(default_factory=list)
    mlflow_run_id: str | None = None
    table: str | None = None

    def all_stages(self) -> list[StageRun]:
        """The stage calls of this run and of the flow runs it made."""
        return [*self.stages, *(r for f in self.flows for r in f.all_stages())]

    def evaluations_of(self, stage: str) -> dict[str, StageRun]:
        """``subject -> run`` of every call of evaluation stage ``stage`` (the first call wins)."""
        out: dict[str, StageRun] = {}
        for r in self.stages:
            if r.stage == stage and r.subject is not None:
                out.setdefault(r.subject, r)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (the flow's ``--json`` object and its ``flow_result.json``)."""
        return {
            "flow": self.flow,
            "stages": [r.to_dict() for r in self.stages],
            "evaluations": [e.to_dict() for e in self.evaluations],
            "flows": [f.to_dict() for f in self.flows],
            "mlflow_run_id": self.mlflow_run_id,
            "table": self.table,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowRun:
        """Inverse of :meth:`to_dict`."""
        return cls(
            flow=d.get("flow", "?"),
            stages=[StageRun.from_dict(r) for r in d.get("stages") or []],
            evaluations=[MethodEvaluation.from_dict(e) for e in d.get("evaluations") or []],
            flows=[FlowRun.from_dict(f) for f in d.get("flows") or []],
            mlflow_run_id=d.get("mlflow_run_id"),
            table=d.get("table"),
        )

    @classmethod
    def read(cls, path: str | Path) -> FlowRun:
        """A flow run from its ``flow_result.json``."""
        return cls.from_dict(json.loads(Path(path).read_text()))
