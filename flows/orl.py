"""Flow ``orl``: ORL's three stages, then label propagation and k-NN against BYOL and random init.

image_shards -> proposals; pretrain_image (stage 1, BYOL) -> embed -> knn; correspondence (stage 2)
-> pretrain_object (stage 3); then ``eval_label_propagation`` and ``eval_knn`` (``s.evaluate``) on
ORL, on BYOL and on a random init of ORL's backbone.

Proposals are the expensive mining step. By default the ``proposals`` stage runs as one task and
spreads selective search over a process pool, shard by shard (resumable). With
``map_proposals=True`` the flow first maps :func:`proposals_shard_task` over the input shards (so a
Dask/Ray task runner can spread them over machines: ``correlearn flow run orl --dask-workers N``
runs the flow on a local Dask cluster, see :func:`flows.common.with_dask`); each task writes its shard's file into the
stage's partial folder and the stage then only merges them. Run one flow per artifact key at a time
in that mode: the mapped tasks do not hold the stage's writer lock.
"""

from __future__ import annotations

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


def _map_proposals(s: FlowSession, shards: dict[str, Any]) -> None:
    from stages.proposals import shard_file, shard_names

    pipe = Pipeline(s.config, stage_registry(), activate(), raw=s.raw)
    cfg = pipe.section("proposals")
    key, _ = pipe.key_of("proposals", cfg, {"shards": ArtifactRef.from_dict(shards)})
    if s.stopped or (pipe.store.exists("proposals", key) and "proposals" not in s.force):
        return
    partial = pipe.store.partial_path("proposals", key)
    partial.mkdir(parents=True, exist_ok=True)
    todo = [n for n in shard_names(shards["path"]) if not shard_file(partial, n).is_file()]
    futures = proposals_shard_task.map(
        shards["path"], todo, unmapped(cfg.model_dump(mode="json")), unmapped(str(partial))
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
    map_proposals: bool = False,
) -> dict:
    """ORL end to end plus its evaluations; returns ``{"flow", "stages": [...]}``."""
    with flow_session("orl", config, overrides or [], force or [], stop_after) as s:
        shards = s.run("image_shards")
        if map_proposals and shards is not None:
            _map_proposals(s, shards)
        props = s.run("proposals", inputs={"shards": shards})
        byol = s.run("pretrain_image", inputs={"shards": shards})
        emb = s.run("embed", inputs={"checkpoint": byol, "shards": shards})
        knn = s.run("knn", inputs={"embeddings": emb})
        corr = s.run(
            "correspondence",
            inputs={"checkpoint": byol, "shards": shards, "knn": knn, "proposals": props},
        )
        orl = s.run(
            "pretrain_object",
            inputs={"shards": shards, "proposals": props, "correspondence": corr},
        )
        s.evaluate("orl", orl)
        s.evaluate("byol", byol)
        s.evaluate("random", s.random_init("pretrain_object"))
    return s.summary()
