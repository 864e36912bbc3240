"""One unit per input shard: how the mining stages ``proposals`` and ``embed`` split their work.

Both read an ``image_shards`` artifact (their input ``shards``) and write one file per shard into
their partial folder before merging the files into the artifact. :func:`shard_units` builds the
stage's :class:`~correlearn.stage.UnitMap` from the per-shard file name and computation;
:func:`compute_pending` is what the stage's own ``run`` does first: compute the units whose file
does not exist yet (left by a stopped run, or by Prefect tasks mapped over the units), so a mapped
pre-pass followed by the stage and a plain run of the stage write the same files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from correlearn.data.readers import ShardedImages
from correlearn.stage import StageContext, UnitCall, UnitMap


def shard_names(shards_dir: str | Path) -> list[str]:
    """Shard names of an ``image_shards`` artifact, in index order (``shard-000000.tar``, ...)."""
    return list(dict.fromkeys(ShardedImages(shards_dir).shards))


def shard_units(
    file_name: Callable[[str], str], compute: Callable[[UnitCall, str], Path]
) -> UnitMap:
    """The units of a stage with one file per shard of its ``shards`` input.

    Args:
        file_name: shard name -> the unit's file name in the partial folder.
        compute: ``compute(call, shard) -> path``, writes that file atomically.
    """

    def names(call: UnitCall) -> list[str]:
        return shard_names(call.inputs["shards"].path)

    def done_file(call: UnitCall, unit: str) -> Path:
        return Path(call.partial) / file_name(unit)

    return UnitMap(names=names, done_file=done_file, run_unit=compute)


def unit_call(ctx: StageContext) -> UnitCall:
    """The running stage's call as its units see it (the partial folder is ``ctx.out_dir``)."""
    return UnitCall(ctx.spec.name, ctx.config, ctx.resolved, ctx.inputs, ctx.out_dir, ctx.base_dir)


def compute_pending(
    ctx: StageContext, units: UnitMap, verb: str = "done"
) -> tuple[list[str], list[str]]:
    """Compute the units of the running stage whose file does not exist yet, in order.

    Args:
        ctx: the running stage.
        units: its units.
        verb: what a done unit was (``proposed``), for the progress line.

    Returns:
        ``(every unit, the units that were done before this call)``.
    """
    call = unit_call(ctx)
    names = units.names(call)
    done = [n for n in names if units.done_file(call, n).is_file()]
    if done:
        ctx.info(f"{len(done)}/{len(names)} shard(s) already {verb}; skipping them")
    for k, name in enumerate(names):
        if name not in done:
            ctx.info(f"shard {k + 1}/{len(names)}: {name}")
            units.run_unit(call, name)
    return names, done
