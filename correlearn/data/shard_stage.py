"""One factory for the source-shard stages: a dataset of the pipeline config -> WebDataset shards.

``image_shards`` and ``video_shards`` differ only in what an item is (an image or a video) and in
the video options; :func:`source_shard_stage` makes either from its config model. The stage:

- resolves its dataset (the spec and a fingerprint of its files: the key material beyond the
  config, so new data gives a new artifact);
- declares ``units`` (:class:`~correlearn.stage.UnitMap`), one per output shard, so a flow on the
  Dask task runner can map the shards over workers before the stage runs;
- in ``run``, writes the shards not written yet (``workers`` processes; a stopped build resumes at
  the next missing shard; the bytes do not depend on the worker count), then merges the index.

See :mod:`correlearn.data.shard_build` for the plan and the part files.
"""

from __future__ import annotations

from functools import partial
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from correlearn.config import NOT_IN_KEY, ConfigError, StrictModel
from correlearn.data.fingerprint import fingerprint, get_dataset
from correlearn.data.shard_build import (
    PLAN_NAME,
    ShardPlan,
    merge,
    part_file,
    run_units,
    shard_name,
    write_plan,
)
from correlearn.data.shards import index_schema, shard_options, write_shard
from correlearn.data.sources import DatasetSpec, list_images, list_videos
from correlearn.stage import StageContext, StageSpec, UnitCall, UnitMap

Kind = Literal["images", "videos"]


class SourceShardsConfig(StrictModel):
    """Fields every source-shard stage has (each stage's model documents them and its defaults).

    Attributes:
        dataset: a name under ``datasets:``.
        frame_step: keep every k-th frame of frame folders / video files (overrides the dataset's).
        max_short_side: cap the short side (never upscales); None keeps the original JPEG bytes.
        shard_size: source items per shard.
        workers: shard-writing processes; the bytes written do not depend on it (not in the key).
    """

    dataset: str = "default"
    frame_step: int | None = Field(None, ge=1)
    max_short_side: int | None = Field(None, ge=16)
    shard_size: int = Field(1000, ge=1)
    workers: int = Field(1, ge=1, json_schema_extra=NOT_IN_KEY)


def _options(kind: Kind, cfg: Any) -> dict:
    max_fps, layout = getattr(cfg, "max_fps", None), getattr(cfg, "layout", "frames")
    return shard_options(kind, cfg.max_short_side, max_fps, layout)


def _plan(kind: Kind, call: UnitCall, reuse: bool) -> ShardPlan:
    """The plan in ``call.partial``: listed from the dataset, or (``reuse``) the one written there.

    Reusing saves listing the whole dataset once per unit; the partial folder belongs to one
    artifact key, which includes the dataset's fingerprint, so a plan there is this call's.
    """
    if reuse and (Path(call.partial) / PLAN_NAME).is_file():
        return ShardPlan.load(call.partial)
    spec = DatasetSpec.model_validate(call.resolved["source"]["dataset"])
    items = (list_images if kind == "images" else list_videos)(spec, call.base_dir)
    return write_plan(
        call.partial, kind, items, call.config.shard_size, _options(kind, call.config)
    )


def _unit_index(unit: str) -> int:
    return int(unit.removeprefix("shard-"))


def _names(kind: Kind, call: UnitCall) -> list[str]:
    return [shard_name(j).removesuffix(".tar") for j in range(_plan(kind, call, False).n_shards)]


def _done_file(call: UnitCall, unit: str) -> Path:
    return part_file(call.partial, _unit_index(unit))


def _run_unit(kind: Kind, call: UnitCall, unit: str) -> Path:
    _plan(kind, call, reuse=True)
    return write_shard(str(call.partial), _unit_index(unit))


def _run(kind: Kind, ctx: StageContext) -> dict:
    """Write the shards not written yet, merge ``index.parquet``, record skips and counts."""
    if getattr(ctx.config, "layout", "frames") == "encoded" and find_spec("av") is None:
        raise ConfigError(f"{ctx.spec.name}.layout: 'encoded' needs PyAV (pip install av)")
    call = UnitCall(ctx.spec.name, ctx.config, ctx.resolved, ctx.inputs, ctx.out_dir, ctx.base_dir)
    plan = _plan(kind, call, reuse=False)
    desc = "image shards" if kind == "images" else "video shards"
    resumed = run_units(plan, write_shard, ctx.config.workers, desc)
    if resumed:
        ctx.info(f"{resumed}/{plan.n_shards} shard(s) were already written; kept them")
    summary = merge(plan, index_schema(plan.options), resumed)
    for path, reason in summary.skipped:
        ctx.skip(path, reason, warn=False)  # merge warned already
    ctx.count(kind, summary.n_samples)
    ctx.count("shards", len(summary.shards))
    ctx.count("skipped", len(summary.skipped))
    ctx.count("shards_resumed", resumed)
    return {"dataset": call.resolved["source"]["dataset"]["name"]}


def source_shard_stage(
    name: str, kind: Kind, config_model: type[SourceShardsConfig], version: int, description: str
) -> StageSpec:
    """The stage spec of a source-shard stage.

    Args:
        name: stage name (``image_shards``, ``video_shards``).
        kind: ``"images"`` (one sample per image) or ``"videos"`` (one sample per video).
        config_model: the stage's config model (a :class:`SourceShardsConfig`; a video stage's
            adds ``max_fps`` and ``layout``).
        version: the stage version (part of the key).
        description: one line for ``correlearn stage list``.
    """

    def resolve(cfg: SourceShardsConfig, pipe: Any) -> dict:
        spec = get_dataset(pipe, cfg.dataset, frame_step=cfg.frame_step)
        return {"source": fingerprint(spec, pipe.base_dir, videos=kind == "videos")}

    return StageSpec(
        name=name,
        version=version,
        config_model=config_model,
        run=partial(_run, kind),  # partials, not closures: a spec may be pickled to a worker
        resolve=resolve,
        resumable=True,  # keep the written shards of a stopped build
        description=description,
        units=UnitMap(partial(_names, kind), _done_file, partial(_run_unit, kind)),
    )
