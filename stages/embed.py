"""Stage ``embed``: one L2-normalised embedding per image for ORL's kNN (ORL Sec. 3.1 Stage 2 (i)).

The computation is :mod:`correlearn.mining.embeddings` (reference default: the online projector
of the stage-1 BYOL on a 224 centre crop). The work splits into one unit per input shard
(``units``), each writing ``emb-<shard>.npy`` into the partial folder; ``run`` computes the shards
not done yet (by a stopped run or by mapped Prefect tasks), then merges them.
"""

from __future__ import annotations

from pathlib import Path

from correlearn.data.readers import ShardedImages
from correlearn.mining.embeddings import (
    EmbedConfig,
    embed_shard,
    merge_embeddings,
    remove_stale_writes,
    shard_file_name,
)
from correlearn.mining.shard_units import compute_pending, shard_units
from correlearn.stage import StageContext, StageSpec, UnitCall


def run_unit(call: UnitCall, shard: str) -> Path:
    """Embed the images of one input shard."""
    shards = call.inputs["shards"].path
    return embed_shard(shards, shard, call.inputs["checkpoint"], call.config, call.partial)


UNITS = shard_units(shard_file_name, run_unit)


def run(ctx: StageContext) -> dict:
    """Write ``embeddings.npy`` (N, D) float32 unit rows and ``keys.json`` (N keys, shard order)."""
    cfg: EmbedConfig = ctx.config
    remove_stale_writes(ctx.out_dir)
    names, _ = compute_pending(ctx, UNITS, verb="embedded")
    keys = ShardedImages(ctx.input_path("shards")).keys
    emb = merge_embeddings(ctx.out_dir, names, keys)
    ctx.count("images", len(emb))
    ctx.count("dim", emb.shape[1])
    return {"feature": cfg.feature, "dim": int(emb.shape[1])}


STAGE = StageSpec(
    name="embed",
    version=2,
    config_model=EmbedConfig,
    run=run,
    inputs={"checkpoint": "pretrain_byol", "shards": "image_shards"},
    resumable=True,
    description="L2-normalised image embeddings for ORL's kNN (stage 2 (i))",
    units=UNITS,
)
