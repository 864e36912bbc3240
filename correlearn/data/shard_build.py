"""A shard build as independent units, one per output shard: plan, run (resumably, in parallel), merge.

1. :func:`write_plan` fixes which source items go into which output shard: item ``i`` goes into
   shard ``i // shard_size`` (an input that turns out unusable leaves its shard one sample short),
   so every shard can be written on its own, by any process, in any order. The plan
   (``.plan.parquet``, one row group per shard) holds the items, their WebDataset keys (made unique
   over the whole list) and the write options.
2. A unit writes ``shard-<j>.tar`` and then its part file ``.shard-<j>.part.json`` (its index rows,
   skipped inputs and counts), each atomically; the part file marks the unit done. A stopped build
   therefore resumes at the next missing part; :func:`run_units` computes the pending units in
   this process or in worker processes, and the bytes of a shard depend only on its items.
3. :func:`merge` concatenates the parts in shard order into ``index.parquet`` (the same rows, in
   the same order, as a one-process build) and removes the plan and the parts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import tarfile
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from correlearn.data.prepare import sanitize_keys
from correlearn.data.sources import DataError, ImageItem, VideoItem

PLAN_NAME = ".plan.parquet"
INDEX_NAME = "index.parquet"
_ITEM_SCHEMAS = {
    "images": pa.schema([("key", pa.string()), ("path", pa.string()), ("label", pa.int64()),
                         ("source", pa.string()), ("wds_key", pa.string())]),
    "videos": pa.schema([("key", pa.string()), ("frames", pa.list_(pa.string())),
                         ("video_path", pa.string()), ("fps", pa.float64()),
                         ("frame_step", pa.int64()), ("source", pa.string()),
                         ("wds_key", pa.string())]),
}  # fmt: skip


@dataclass
class ShardSummary:
    """What a shard build produced. ``skipped`` lists ``(path, reason)`` of unusable inputs."""

    out_dir: str
    index_path: str
    shards: list[str]
    n_samples: int
    n_reencoded: int = 0
    n_bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_resumed: int = 0

    def to_dict(self) -> dict:
        """JSON-friendly form, for stage metadata."""
        return asdict(self)


def shard_name(j: int) -> str:
    """File name of output shard ``j``."""
    return f"shard-{j:06d}.tar"


def part_file(out_dir: str | Path, j: int) -> Path:
    """The done-marker of unit ``j``: its index rows, skipped inputs and counts (JSON)."""
    return Path(out_dir) / f".shard-{j:06d}.part.json"


def scan_shard(path: str | Path) -> dict[str, tuple[int, int]]:
    """Byte span ``(offset, size)`` of every member of a tar; DataError if it cannot be read."""
    try:
        with tarfile.open(path, "r:") as tar:
            return {ti.name: (ti.offset_data, ti.size) for ti in tar}
    except (OSError, tarfile.TarError) as exc:
        raise DataError(f"cannot read shard {path}: {exc}") from exc


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """``write(tmp)`` then rename onto ``path``: readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@dataclass(frozen=True)
class ShardPlan:
    """A written plan: ``n_items`` items in shards of ``shard_size``, and the write options."""

    out_dir: Path
    kind: str
    n_items: int
    shard_size: int
    options: dict[str, Any]

    @property
    def n_shards(self) -> int:
        """Output shards (units) of the build."""
        return -(-self.n_items // self.shard_size)

    @classmethod
    def load(cls, out_dir: str | Path) -> ShardPlan:
        """Read the plan's metadata; DataError when no plan was written there."""
        path = Path(out_dir) / PLAN_NAME
        if not path.is_file():
            raise DataError(f"{path}: no shard plan (write_plan first)")
        meta = json.loads(pq.read_schema(path).metadata[b"plan"])
        return cls(
            Path(out_dir), meta["kind"], meta["n_items"], meta["shard_size"], meta["options"]
        )

    def items(self, j: int) -> list[tuple[ImageItem | VideoItem, str]]:
        """The source items of shard ``j`` with their WebDataset keys (``(item, wds_key)``)."""
        pf = pq.ParquetFile(self.out_dir / PLAN_NAME)
        n = min(self.shard_size, self.n_items - j * self.shard_size)
        if pf.metadata.num_row_groups == self.n_shards and pf.metadata.row_group(j).num_rows == n:
            rows = pf.read_row_group(j).to_pylist()
        else:  # written with other row groups (another pyarrow): slice the whole table
            rows = pf.read().slice(j * self.shard_size, n).to_pylist()
        make = ImageItem if self.kind == "images" else VideoItem
        return [
            (make(**{k: v for k, v in r.items() if k != "wds_key"}), r["wds_key"]) for r in rows
        ]


def _rows(kind: str, items: Sequence[ImageItem | VideoItem]) -> list[dict]:
    keys = sanitize_keys([it.key for it in items])
    fields = _ITEM_SCHEMAS[kind].names[:-1]
    return [
        {**{f: getattr(it, f) for f in fields}, "wds_key": k}
        for it, k in zip(items, keys, strict=True)
    ]


def write_plan(
    out_dir: str | Path, kind: str, items: Sequence, shard_size: int, options: dict[str, Any]
) -> ShardPlan:
    """Write (or keep, when identical) the plan of a build into ``out_dir``.

    A different plan left there by another build is replaced, and its shards and parts removed.

    Args:
        out_dir: the output folder (created).
        kind: ``"images"`` or ``"videos"``.
        items: the source items in storage order.
        shard_size: items per output shard.
        options: JSON-friendly write options (recorded; the unit function reads them).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(kind, items)
    meta = {"kind": kind, "n_items": len(rows), "shard_size": shard_size, "options": options}
    blob = json.dumps([meta, rows], sort_keys=True, separators=(",", ":"))
    meta["digest"] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    path = out / PLAN_NAME
    if path.is_file():
        if json.loads(pq.read_schema(path).metadata[b"plan"]).get("digest") == meta["digest"]:
            return ShardPlan.load(out)
        for stale in [*out.glob(".shard-*.part.json"), *out.glob("shard-*.tar")]:
            stale.unlink()
    table = pa.Table.from_pylist(rows, schema=_ITEM_SCHEMAS[kind])
    table = table.replace_schema_metadata({"plan": json.dumps(meta)})
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, row_group_size=shard_size))
    return ShardPlan.load(out)


def _init_worker() -> None:
    import cv2  # one thread per worker process: the processes are the parallelism

    cv2.setNumThreads(1)


def run_units(
    plan: ShardPlan, unit: Callable[[str, int], Path], workers: int = 1, desc: str = "shards",
    progress: bool = True,
) -> int:  # fmt: skip
    """Compute the units whose part file is missing: ``unit(str(out_dir), j)`` for each.

    Args:
        plan: the build.
        unit: a module-level function (worker processes import it by name).
        workers: processes; 1 runs the units in this process, in order.
        desc: progress-bar label.
        progress: show a progress bar over the items (only on a terminal).

    Returns:
        How many units were already done (resumed).
    """
    for tmp in plan.out_dir.glob(".*.tmp*"):  # a write cut short by a stop
        tmp.unlink()
    todo = [j for j in range(plan.n_shards) if not part_file(plan.out_dir, j).is_file()]
    size = {j: min(plan.shard_size, plan.n_items - j * plan.shard_size) for j in todo}
    bar = tqdm(total=sum(size.values()), desc=desc, disable=None if progress else True)
    with bar:
        if workers <= 1 or len(todo) <= 1:
            for j in todo:
                unit(str(plan.out_dir), j)
                bar.update(size[j])
        else:
            ctx = mp.get_context("spawn")  # fork would copy the parent's threads and locks
            pool = ProcessPoolExecutor(min(workers, len(todo)), ctx, _init_worker)
            try:
                futures = {pool.submit(unit, str(plan.out_dir), j): j for j in todo}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for f in done:
                        f.result()  # re-raises a unit's error here
                        bar.update(size[futures[f]])
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    return plan.n_shards - len(todo)


def merge(plan: ShardPlan, schema: pa.Schema, n_resumed: int = 0) -> ShardSummary:
    """Concatenate the parts into ``index.parquet``, warn about skipped inputs, drop plan and parts.

    Raises:
        DataError: a unit is missing, or no input could be written.
    """
    rows, skipped, n_re = [], [], 0
    for j in range(plan.n_shards):
        path = part_file(plan.out_dir, j)
        if not path.is_file():
            raise DataError(f"{path}: shard {j} of {plan.n_shards} was not written")
        part = json.loads(path.read_text())
        rows += part["rows"]
        skipped += [tuple(s) for s in part["skipped"]]
        n_re += part["n_reencoded"]
    for where, reason in skipped:
        warnings.warn(f"skipping {where}: {reason}", stacklevel=2)
    if not rows:
        first = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
        raise DataError(f"no usable input for {plan.out_dir} ({len(skipped)} skipped: {first})")
    index = plan.out_dir / INDEX_NAME
    table = pa.Table.from_pylist(rows, schema=schema)
    write_atomic(index, lambda tmp: pq.write_table(table, tmp))
    for j in range(plan.n_shards):
        part_file(plan.out_dir, j).unlink()
    (plan.out_dir / PLAN_NAME).unlink()
    shards = sorted(dict.fromkeys(r["shard"] for r in rows))
    n_bytes = sum((plan.out_dir / s).stat().st_size for s in shards)
    return ShardSummary(
        str(plan.out_dir), str(index), shards, len(rows), n_re, n_bytes, skipped, n_resumed
    )
