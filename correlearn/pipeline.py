"""Run stages through the artifact store: cache hits, forced re-runs, MLflow runs, manifests.

A pipeline config is one YAML file: ``datasets:`` (named dataset specs) and one section per stage
(missing sections take the stage's defaults). :class:`Pipeline` resolves a stage's inputs from their
default producers when a caller does not pass them, so ``correlearn stage run X`` works alone; flows
pass inputs explicitly and run one stage per Prefect task.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from correlearn.artifacts import ArtifactRef, ArtifactStore, compute_key
from correlearn.budgets import find_answer
from correlearn.config import (
    ConfigError,
    apply_overrides,
    blame_overrides,
    deep_merge,
    key_material,
    load_yaml,
    preflight,
    validate,
    with_defaults,
)
from correlearn.records import StageRun
from correlearn.stage import StageSpec, UnitCall
from correlearn.stage_call import Budget, Call, compute, tags
from correlearn.stage_names import current_name, current_override, rename_sections
from correlearn.tracking import Tracker
from correlearn.workspace import Workspace

RESERVED_SECTIONS = {"datasets", "flow"}


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
        if raw is None:
            # Sections and --set keys under a renamed stage's first name take its current name.
            loaded = rename_sections(load_yaml(self.config_path), self.config_path.name)
            raw = apply_overrides(loaded, [current_override(o) for o in self.overrides])
        self.raw = rename_sections(raw, self.config_path.name)
        self.registry = registry
        self.ws = ws
        self.store = ArtifactStore(ws.artifacts)
        self.tracker = tracker
        self.parent_run_id = parent_run_id
        self._results: dict[str, StageRun] = {}
        self._check_mappings()
        unknown = set(self.raw) - set(registry) - RESERVED_SECTIONS - self._aliases()
        if unknown:
            raise ConfigError(
                f"{self.config_path}: unknown section(s) {sorted(unknown)}; "
                f"known: {sorted(set(registry) | RESERVED_SECTIONS)}"
            )

    def _check_mappings(self) -> None:
        """Every section, and every dataset under ``datasets``, is a mapping (or empty)."""
        src = self.config_path.name
        entries = list(self.raw.items())
        datasets = self.raw.get("datasets")
        if isinstance(datasets, dict):
            entries += [(f"datasets.{k}", v) for k, v in datasets.items()]
        for where, value in entries:
            if value is not None and not isinstance(value, dict):
                msg = f"{src}: {where}: must be a mapping of settings, got {type(value).__name__}"
                raise ConfigError(blame_overrides(msg, src, self.overrides))

    def _aliases(self) -> set[str]:
        # A section "stage@variant" configures a second use of a stage (e.g. a ViT baseline).
        return {s for s in self.raw if "@" in s and s.split("@", 1)[0] in self.registry}

    def section(self, stage: str, section: str | None = None, overrides: dict | None = None):
        """Validate a stage's config section (default: the stage's own name) with overrides."""
        spec = self.spec(stage)
        name = current_name(section or spec.name)
        raw = deep_merge(self.raw.get(name) or {}, overrides or {})
        raw = with_defaults(spec.config_model, raw)
        try:
            config = validate(spec.config_model, raw, self.config_path.name, prefix=name)
            preflight(config, self.config_path.name, prefix=name)
        except ConfigError as exc:
            msg = blame_overrides(str(exc), self.config_path.name, self.overrides)
            raise ConfigError(msg) from None
        return config

    def spec(self, stage: str) -> StageSpec:
        """The registered stage ``stage`` (a renamed stage by its first name too)."""
        stage = current_name(stage)
        if stage not in self.registry:
            raise ConfigError(f"unknown stage {stage!r}; known: {sorted(self.registry)}")
        return self.registry[stage]

    def key_of(self, stage: str, config: Any, inputs: dict[str, ArtifactRef]) -> tuple[str, dict]:
        """The artifact key and the resolved (logged) config of a stage call."""
        spec = self.spec(stage)
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
        inputs: dict[str, StageRun] | None = None,
        section: str | None = None,
        overrides: dict | None = None,
        force: bool = False,
        force_upstream: frozenset[str] = frozenset(),
    ) -> StageRun:
        """Return the stage's artifact, computing it unless an identical one exists.

        Args:
            stage: stage name.
            inputs: input name -> upstream run; missing inputs are resolved from the stage's
                default producers (recursively, through the cache).
            section: config section to read (default the stage name; ``stage@variant`` allowed).
            overrides: field overrides applied on top of the section.
            force: recompute even on a cache hit.
            force_upstream: stages to force while resolving missing inputs.

        Returns:
            The run; ``forced`` is set when this artifact was recomputed over an existing one,
            so descendants recompute too (their keys alone would not change).
        """
        spec = self.spec(stage)
        stage = spec.name
        config = self.section(stage, section, overrides)
        inputs = self._resolve_inputs(spec, dict(inputs or {}), force_upstream)
        refs = {k: v.ref for k, v in inputs.items()}
        key, resolved = self.key_of(stage, config, refs)
        force = force or any(v.forced for v in inputs.values())
        budget = Budget.of(spec, config, key)
        if not force and (hit := self._cached(spec, key, budget)) is not None:
            run_id = self._record_cache_hit(spec, hit, resolved, refs)
            print(f"[cache hit] {stage} {hit} -> {self.store.path(stage, hit)}", flush=True)
            return self._run(stage, hit, cache_hit=True, run_id=run_id)
        with self.store.lock(stage, key):
            if not force and (hit := self._cached(spec, key, budget, quiet=True)) is not None:
                return self._run(stage, hit, cache_hit=True)
            existed = self._answer(spec, key, budget) is not None
            call = Call(spec, config, resolved, refs, key, budget, force)
            ref, run_id, seconds = compute(
                call, self.store, self.tracker, self.parent_run_id, self.base_dir, self.raw
            )
        return StageRun(
            ref.stage, ref.key, ref.path, cache_hit=False, forced=force and existed,
            label=stage, seconds=seconds, mlflow_run_id=run_id,
        )  # fmt: skip

    def _resolve_inputs(
        self, spec: StageSpec, inputs: dict[str, StageRun], force_upstream: frozenset[str]
    ) -> dict[str, StageRun]:
        """The given inputs plus the missing ones from their default producers (memoised)."""
        for name, producer in spec.inputs.items():
            if name not in inputs:
                if producer not in self._results:
                    self._results[producer] = self.run_stage(
                        producer, force=producer in force_upstream, force_upstream=force_upstream
                    )
                inputs[name] = self._results[producer]
        return inputs

    def _run(self, stage: str, key: str, cache_hit: bool, run_id: str | None = None) -> StageRun:
        ref = self.store.ref(stage, key)
        seconds = self.store.manifest(stage, key).get("seconds")
        return StageRun(
            stage, key, ref.path, cache_hit, label=stage, seconds=seconds, mlflow_run_id=run_id
        )

    def pending_units(
        self, stage: str, inputs: dict[str, StageRun], force: bool = False
    ) -> tuple[UnitCall, list[str]] | None:
        """The units a computing call of ``stage`` still has to do, for mapping them elsewhere.

        Returns None when the call would be a cache hit (nothing to map) or the stage has no
        units. Otherwise the partial folder exists and each unit's file goes into it; the stage's
        own run then only computes what is still missing and merges.
        """
        spec = self.spec(stage)
        if spec.units is None:
            return None
        config = self.section(stage)
        refs = {k: v.ref for k, v in inputs.items()}
        key, resolved = self.key_of(stage, config, refs)
        force = force or any(v.forced for v in inputs.values())
        if not force and self._cached(spec, key, Budget.of(spec, config, key), quiet=True):
            return None
        partial = self.store.partial_path(stage, key)
        partial.mkdir(parents=True, exist_ok=True)
        call = UnitCall(stage, config, resolved, refs, partial, self.base_dir)
        todo = [u for u in spec.units.names(call) if not spec.units.done_file(call, u).is_file()]
        return call, todo

    def _answer(self, spec: StageSpec, key: str, budget: Budget | None) -> str | None:
        if budget is None:
            return key if self.store.exists(spec.name, key) else None
        return find_answer(
            self.store, spec.name, spec.version, key, budget.values, budget.max_steps
        )

    def _cached(
        self, spec: StageSpec, key: str, budget: Budget | None, quiet: bool = False
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

    def _record_cache_hit(
        self, spec: StageSpec, key: str, resolved: dict, refs: dict
    ) -> str | None:
        """An MLflow run for the cache hit (params and metrics of the run that computed it)."""
        if not self.tracker:
            return None
        manifest = self.store.manifest(spec.name, key)
        run_id = self.tracker.start(
            spec.name, self.parent_run_id, tags(spec, key, refs, cache_hit=True)
        )
        self.tracker.set_tags(run_id, {"source_run_id": manifest.get("mlflow_run_id", "")})
        self.tracker.log_params(run_id, resolved)
        self.tracker.log_metrics(run_id, manifest.get("metrics", {}))
        self.tracker.end(run_id)
        return run_id
