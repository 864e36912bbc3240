"""Run stages through the artifact store: cache hits, forced re-runs, MLflow runs, manifests.

A pipeline config is one YAML file: ``datasets:`` (named dataset specs) and one section per stage
(missing sections take the stage's defaults). :class:`Pipeline` resolves a stage's inputs from their
default producers when a caller does not pass them, so ``correlearn stage run X`` works alone; flows
pass inputs explicitly and run one stage per Prefect task.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from correlearn import __version__
from correlearn.artifacts import ArtifactRef, ArtifactStore, compute_key
from correlearn.budgets import find_answer, prepare_partial, request_key, snapshot_key
from correlearn.config import (
    ConfigError,
    apply_overrides,
    budget_fields,
    deep_merge,
    key_material,
    load_yaml,
    preflight,
    validate,
    with_defaults,
)
from correlearn.stage import StageContext, StageSpec
from correlearn.tracking import Tracker
from correlearn.workspace import Workspace

RESERVED_SECTIONS = {"datasets", "flow"}
RUN_ID_FILE = ".mlflow_run_id"


@dataclass(frozen=True)
class StageResult:
    """Outcome of one stage: the artifact, whether it was a cache hit, whether it was forced."""

    ref: ArtifactRef
    cache_hit: bool
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object of a stage: ``{"stage", "key", "cache_hit", "path"}`` (+ forced)."""
        return {**self.ref.to_dict(), "cache_hit": self.cache_hit, "forced": self.forced}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageResult:
        """Inverse of :meth:`to_dict`."""
        return cls(ArtifactRef.from_dict(d), bool(d["cache_hit"]), bool(d.get("forced", False)))


class Pipeline:
    """One pipeline config bound to a workspace, a stage registry and a tracker."""

    def __init__(
        self,
        config_path: str | Path,
        registry: dict[str, StageSpec],
        ws: Workspace,
        overrides: list[str] | None = None,
        tracker: Tracker | None = None,
        parent_run_id: str | None = None,
        raw: dict[str, Any] | None = None,
    ):
        self.config_path = Path(config_path).resolve()
        self.overrides = list(overrides or [])
        self.base_dir = self.config_path.parent
        # A flow passes the mapping it read at its start, so editing the file mid-flow cannot
        # give two stages of one run different configs.
        self.raw = (
            raw if raw is not None else apply_overrides(load_yaml(self.config_path), overrides)
        )
        self.registry = registry
        self.ws = ws
        self.store = ArtifactStore(ws.artifacts)
        self.tracker = tracker
        self.parent_run_id = parent_run_id
        self._results: dict[str, StageResult] = {}
        unknown = set(self.raw) - set(registry) - RESERVED_SECTIONS - self._aliases()
        if unknown:
            raise ConfigError(
                f"{self.config_path}: unknown section(s) {sorted(unknown)}; "
                f"known: {sorted(set(registry) | RESERVED_SECTIONS)}"
            )

    def _aliases(self) -> set[str]:
        # A section "stage@variant" configures a second use of a stage (e.g. a ViT baseline).
        return {s for s in self.raw if "@" in s and s.split("@", 1)[0] in self.registry}

    def section(self, stage: str, section: str | None = None, overrides: dict | None = None):
        """Validate a stage's config section (default: the stage's own name) with overrides."""
        spec = self._spec(stage)
        name = section or stage
        raw = deep_merge(self.raw.get(name) or {}, overrides or {})
        raw = with_defaults(spec.config_model, raw)
        config = validate(spec.config_model, raw, self.config_path.name, prefix=name)
        preflight(config, self.config_path.name, prefix=name)
        return config

    def _spec(self, stage: str) -> StageSpec:
        if stage not in self.registry:
            raise ConfigError(f"unknown stage {stage!r}; known: {sorted(self.registry)}")
        return self.registry[stage]

    def key_of(self, stage: str, config: Any, inputs: dict[str, ArtifactRef]) -> tuple[str, dict]:
        """The artifact key and the resolved (logged) config of a stage call."""
        spec = self._spec(stage)
        resolved = config.model_dump(mode="json")
        material = key_material(config)
        if spec.resolve is not None:
            extra = spec.resolve(config, self)
            resolved, material = {**resolved, **extra}, {**material, **extra}
        key = compute_key(spec.name, spec.version, material, {k: v.key for k, v in inputs.items()})
        return key, resolved

    def run_stage(
        self,
        stage: str,
        inputs: dict[str, StageResult] | None = None,
        section: str | None = None,
        overrides: dict | None = None,
        force: bool = False,
        force_upstream: frozenset[str] = frozenset(),
    ) -> StageResult:
        """Return the stage's artifact, computing it unless an identical one exists.

        Args:
            stage: stage name.
            inputs: input name -> upstream result; missing inputs are resolved from the stage's
                default producers (recursively, through the cache).
            section: config section to read (default the stage name; ``stage@variant`` allowed).
            overrides: field overrides applied on top of the section.
            force: recompute even on a cache hit.
            force_upstream: stages to force while resolving missing inputs.

        Returns:
            The result; ``forced`` is set when this artifact was recomputed over an existing one,
            so descendants recompute too (their keys alone would not change).
        """
        spec = self._spec(stage)
        config = self.section(stage, section, overrides)
        inputs = dict(inputs or {})
        for name, producer in spec.inputs.items():
            if name not in inputs:
                memo = f"{producer}"
                if memo not in self._results:
                    self._results[memo] = self.run_stage(
                        producer, force=producer in force_upstream, force_upstream=force_upstream
                    )
                inputs[name] = self._results[memo]
        refs = {k: v.ref for k, v in inputs.items()}
        key, resolved = self.key_of(stage, config, refs)
        force = force or any(v.forced for v in inputs.values())
        budget = _Budget.of(spec, config, key)
        if not force and (hit := self._cached(spec, key, budget)) is not None:
            self._record_cache_hit(spec, hit, resolved, refs)
            print(f"[cache hit] {stage} {hit} -> {self.store.path(stage, hit)}", flush=True)
            return StageResult(self.store.ref(stage, hit), cache_hit=True)
        with self.store.lock(stage, key):
            if not force and (hit := self._cached(spec, key, budget, quiet=True)) is not None:
                return StageResult(self.store.ref(stage, hit), cache_hit=True)
            existed = self._answer(spec, key, budget) is not None
            job = {
                "config": str(self.config_path),
                "overrides": self.overrides,
                "stage": stage,
                "section": section,
                "stage_overrides": overrides,
                "inputs": {k: v.to_dict() for k, v in refs.items()},
            }
            ref = self._compute(spec, config, resolved, refs, key, job, budget, force)
        return StageResult(ref, cache_hit=False, forced=force and existed)

    def _answer(self, spec: StageSpec, key: str, budget: _Budget | None) -> str | None:
        if budget is None:
            return key if self.store.exists(spec.name, key) else None
        return find_answer(
            self.store, spec.name, spec.version, key, budget.values, budget.max_steps
        )

    def _cached(
        self, spec: StageSpec, key: str, budget: _Budget | None, quiet: bool = False
    ) -> str | None:
        """The key of an intact finished artifact answering this call, or None (recompute)."""
        hit = self._answer(spec, key, budget)
        if hit is None:
            return None
        problems = self.store.verify(spec.name, hit)
        if problems:
            if not quiet:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                print(
                    f"[corrupt] {spec.name} {hit}: {problems[0]}{more}; recomputing it",
                    file=sys.stderr,
                    flush=True,
                )
            return None
        return hit

    def _record_cache_hit(self, spec: StageSpec, key: str, resolved: dict, refs: dict) -> None:
        if not self.tracker:
            return
        manifest = self.store.manifest(spec.name, key)
        run_id = self.tracker.start(
            spec.name, self.parent_run_id, self._tags(spec, key, refs, cache_hit=True)
        )
        self.tracker.set_tags(run_id, {"source_run_id": manifest.get("mlflow_run_id", "")})
        self.tracker.log_params(run_id, resolved)
        self.tracker.log_metrics(run_id, manifest.get("metrics", {}))
        self.tracker.end(run_id)

    @staticmethod
    def _tags(spec: StageSpec, key: str, refs: dict[str, ArtifactRef], cache_hit: bool) -> dict:
        tags = {"stage": spec.name, "key": key, "cache_hit": str(cache_hit).lower()}
        tags.update({f"input.{k}": f"{v.stage}/{v.key}" for k, v in refs.items()})
        return tags

    def _compute(self, spec, config, resolved, refs, key, job, budget, force) -> ArtifactRef:
        # A forced budgeted call starts its schedule over; anything else resumable continues.
        keep = spec.resumable and not (force and budget is not None)
        partial = self.store.begin(spec.name, key, keep_partial=keep)
        if budget is not None and not force:
            at = prepare_partial(self.store, spec.name, key, partial, budget.max_steps)
            if at:
                print(f"[continuing] {spec.name} {key} from step {at}", flush=True)
        run_file = partial / RUN_ID_FILE
        previous = run_file.read_text().strip() if run_file.exists() else None
        resumed = previous is not None
        run_id = None
        if self.tracker:
            run_id = self.tracker.start(
                spec.name,
                self.parent_run_id,
                self._tags(spec, key, refs, cache_hit=False),
                resume_run_id=previous,
            )
            run_file.write_text(run_id)
            self.tracker.log_params(run_id, resolved)
        verb = "resuming" if resumed else "running"
        print(f"[{verb}] {spec.name} {key}", flush=True)
        ctx = StageContext(
            spec, config, resolved, refs, partial, self.tracker, run_id, self.base_dir, resumed
        )
        ctx.job = job  # how to rebuild this call in another process (torchrun workers)
        started = time.time()
        try:
            with self.store.hold(refs):  # gc must not remove an input while the stage reads it
                meta = spec.run(ctx) or {}
        except BaseException:
            self._end_failed(spec, run_id)
            raise
        finished = time.time()
        manifest = {
            "stage": spec.name,
            "version": spec.version,
            "key": key,
            "config": resolved,
            "inputs": {k: {"stage": v.stage, "key": v.key} for k, v in refs.items()},
            "counts": ctx.counts,
            "skipped": ctx.skipped,
            "metrics": ctx.metrics,
            "pictures": ctx.pictures,
            "metadata": meta,
            "started_at": _iso(started),
            "finished_at": _iso(finished),
            "seconds": round(finished - started, 3),
            "mlflow_run_id": run_id,
            "package_version": __version__,
        }
        run_file.unlink(missing_ok=True)
        ref = self._commit(spec, key, partial, manifest, budget, ctx.progress)
        if self.tracker and run_id:
            self.tracker.log_artifact(run_id, Path(ref.path) / "manifest.json")
            self.tracker.log_metrics(run_id, {"seconds": finished - started, **ctx.counts})
            self.tracker.set_tags(run_id, {"artifact_path": ref.path, "key": ref.key})
            self.tracker.end(run_id)
        print(
            f"[done] {spec.name} {ref.key} in {finished - started:.1f} s -> {ref.path}", flush=True
        )
        return ref

    def _commit(self, spec, key, partial, manifest, budget, progress) -> ArtifactRef:
        """Commit the partial folder as ``key``, or snapshot it when a budget stopped the run."""
        if budget is None:
            return self.store.commit(spec.name, key, manifest)
        progress = progress or {}
        step = progress.get("step")
        manifest.update(
            schedule_key=key,
            stopped_at_step=step,
            total_steps=progress.get("total_steps"),
            budget=budget.values,
            requests=[budget.request],
        )
        if not progress.get("stopped_on_budget"):
            return self.store.commit(spec.name, key, manifest)
        skey = snapshot_key(spec.name, spec.version, key, step)
        with self.store.lock(spec.name, skey):
            if self.store.exists(spec.name, skey):  # same weights (seeded); keep its requests
                old = self.store.manifest(spec.name, skey).get("requests", [])
                manifest["requests"] = sorted(set(old) | {budget.request})
            manifest["key"] = skey
            return self.store.snapshot(spec.name, partial, skey, manifest)

    def _end_failed(self, spec: StageSpec, run_id: str | None) -> None:
        # The stage's own error (disk full, say) must reach the user; failing to record it in
        # MLflow too is only a warning (the run is marked KILLED at the next start).
        if not (self.tracker and run_id):
            return
        try:
            self.tracker.end(run_id, ok=False)
        except Exception as exc:  # noqa: BLE001 - any tracking failure
            warnings.warn(
                f"{spec.name}: could not mark MLflow run {run_id} FAILED "
                f"({type(exc).__name__}: {exc}); the stage's own error follows",
                stacklevel=3,
            )


@dataclass(frozen=True)
class _Budget:
    """The budget of one call of a stage with budget fields (a training stage)."""

    values: dict[str, Any]  # dotted field -> value, the fields that are set
    max_steps: int | None
    request: str

    @classmethod
    def of(cls, spec: StageSpec, config: Any, key: str) -> _Budget | None:
        fields = budget_fields(config)
        if not fields:
            return None
        values = {k: v for k, (_, v) in fields.items() if v is not None}
        steps = [v for kind, v in fields.values() if kind == "steps" and v is not None]
        req = request_key(spec.name, spec.version, key, values)
        return cls(values, min(steps) if steps else None, req)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"


def dumps_result(obj: dict[str, Any]) -> str:
    """One-line JSON for the CLI's ``--json`` contract."""
    return json.dumps(obj, sort_keys=False)
