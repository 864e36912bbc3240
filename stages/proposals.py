"""Stage ``proposals``: selective-search RoIs per image after ORL's filter (ORL Sec. 3.1 (ii)).

The computation and the artifact's layout are :mod:`correlearn.mining.box_shards`. The work splits
into one unit per input shard (``units``), each writing ``boxes-<shard>.parquet`` into the partial
folder: a stopped run loses at most the shard in progress, and a flow may map the units over
workers (Prefect tasks) before the stage runs. ``run`` computes the shards not done yet, shard by
shard with a process pool of ``processes`` workers, then merges them into ``boxes.parquet``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from correlearn.mining.box_shards import (
    ProposalsConfig,
    merge_box_shards,
    propose_shard,
    remove_stale_writes,
    shard_file_name,
)
from correlearn.mining.shard_units import compute_pending, shard_units
from correlearn.stage import StageContext, StageSpec, UnitCall


def run_unit(call: UnitCall, shard: str) -> Path:
    """Propose and filter the boxes of one input shard."""
    return propose_shard(call.inputs["shards"].path, shard, call.config, call.partial)


UNITS = shard_units(shard_file_name, run_unit)


def run(ctx: StageContext) -> dict:
    """Propose per shard (skipping finished ones), then merge into ``boxes.parquet``."""
    cfg: ProposalsConfig = ctx.config
    remove_stale_writes(ctx.out_dir)
    names, done = compute_pending(ctx, UNITS, verb="proposed")
    table = merge_box_shards(ctx.out_dir, names)
    counts = np.array([len(b) for b in table.column("boxes").to_pylist()])
    n_raw = table.column("n_raw").to_numpy()
    ctx.count("images", table.num_rows)
    ctx.count("shards", len(names))
    ctx.count("shards_resumed", len(done))
    ctx.count("boxes", int(counts.sum()))
    ctx.count("no_proposal", int((n_raw == 0).sum()))
    if table.num_rows:
        ctx.log_metrics(
            {"boxes_per_image": float(counts.mean()), "raw_per_image": float(n_raw.mean())}
        )
    return {"long_side": cfg.long_side, "min_size": cfg.min_size}


STAGE = StageSpec(
    name="proposals",
    version=1,
    config_model=ProposalsConfig,
    run=run,
    inputs={"shards": "image_shards"},
    resumable=True,
    description="selective-search RoIs + ORL filter (stage 2 (ii)), resumable per shard",
    units=UNITS,
)
