"""Flow ``orl``: ORL's three stages, then label propagation and k-NN against its baselines.

image_shards -> proposals; pretrain_image (stage 1, BYOL) -> embed -> knn; correspondence (stage 2)
-> pretrain_object (stage 3); then label propagation and k-NN of ORL against its baselines
(``flows.evaluation``; BYOL, ORL's stage 1, is evaluated by the ``byol`` flow).

Proposals and embeddings are the mining steps. By default each runs as one stage (proposals spread
selective search over a process pool, shard by shard; both resume at the next shard after a stop).
With ``map_shards=True`` the flow first maps :func:`proposals_shard_task` and
:func:`embed_shard_task` over the input shards as Prefect tasks, so a Dask task runner spreads them
over workers or machines (``correlearn flow run orl --dask-workers N``, see
:func:`flows.common.with_dask`); each task writes its shard's file into the stage's partial folder
and the stage then only merges. Run one flow per artifact key at a time in that mode: the mapped
tasks do not hold the stage's writer lock.
"""

from __future__ import annotations

import importlib
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.utilities.annotations import unmapped

from correlearn.artifacts import ArtifactRef
from correlearn.pipeline import Pipeline
from correlearn.registry import stage_registry
from correlearn.workspace import activate
from flows.common import FlowSession, flow_session
from flows.evaluation import train_and_evaluate


@task(
    name="proposals_shard",
    task_run_name="proposals[{shard}]",
    cache_policy=NO_CACHE,
    persist_result=False,
)
def proposals_shard_task(shards_dir: str, shard: str, cfg: dict[str, Any], out_dir: str) -> str:
    """Selective search + ORL filter of one input shard into ``out_dir``; returns the file."""
    from stages.proposals import ProposalsConfig, propose_shard

    return str(propose_shard(shards_dir, shard, ProposalsConfig.model_validate(cfg), out_dir))


@task(
    name="embed_shard", task_run_name="embed[{shard}]", cache_policy=NO_CACHE, persist_result=False
)
def embed_shard_task(
    shards_dir: str, shard: str, ckpt: str, cfg: dict[str, Any], out_dir: str
) -> str:
    """Embeddings of one input shard into ``out_dir``; returns the file."""
    from stages.embed import EmbedConfig, embed_shard

    return str(embed_shard(shards_dir, shard, ckpt, EmbedConfig.model_validate(cfg), out_dir))


def _partial_for(s: FlowSession, stage: str, inputs: dict[str, dict]) -> tuple[Any, Any] | None:
    """(partial folder, config) of a stage that is about to compute, or None for a cache hit."""
    pipe = Pipeline(s.config, stage_registry(), activate(), raw=s.raw)
    cfg = pipe.section(stage)
    key, _ = pipe.key_of(stage, cfg, {k: ArtifactRef.from_dict(v) for k, v in inputs.items()})
    if s.stopped or (pipe.store.exists(stage, key) and stage not in s.force):
        return None
    partial = pipe.store.partial_path(stage, key)
    partial.mkdir(parents=True, exist_ok=True)
    return partial, cfg


def _map_shards(s: FlowSession, stage: str, inputs: dict[str, dict], task_fn, *extra) -> None:
    """Map ``task_fn(shards_dir, shard, *extra, cfg, partial)`` over the shards not done yet."""
    from stages.proposals import shard_names

    found = _partial_for(s, stage, inputs)
    if found is None:
        return
    partial, cfg = found
    shard_file = importlib.import_module(f"stages.{stage}").shard_file
    shards_dir = inputs["shards"]["path"]
    todo = [n for n in shard_names(shards_dir) if not shard_file(partial, n).is_file()]
    futures = task_fn.map(
        shards_dir,
        todo,
        *(unmapped(x) for x in extra),
        unmapped(cfg.model_dump(mode="json")),
        unmapped(str(partial)),
    )
    wait(futures)
    for f in futures:
        f.result()  # re-raise the first failure here, before the stage merges


@flow(name="orl")
def orl_flow(
    config: str,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
    stop_after: str | None = None,
    map_shards: bool = False,
) -> dict:
    """ORL end to end plus its evaluations; returns ``{"flow", "stages": [...]}``."""
    with flow_session("orl", config, overrides or [], force or [], stop_after) as s:
        shards = s.run("image_shards")
        if map_shards and shards is not None:
            _map_shards(s, "proposals", {"shards": shards}, proposals_shard_task)
        props = s.run("proposals", inputs={"shards": shards})
        byol = s.run("pretrain_image", inputs={"shards": shards})
        if map_shards and byol is not None:
            inputs = {"checkpoint": byol, "shards": shards}
            _map_shards(s, "embed", inputs, embed_shard_task, byol["path"])
        emb = s.run("embed", inputs={"checkpoint": byol, "shards": shards})
        knn = s.run("knn", inputs={"embeddings": emb})
        corr = s.run(
            "correspondence",
            inputs={"checkpoint": byol, "shards": shards, "knn": knn, "proposals": props},
        )
        inputs = {"shards": shards, "proposals": props, "correspondence": corr}
        train_and_evaluate(s, "orl", "pretrain_object", inputs, s.options)
    return s.summary()
