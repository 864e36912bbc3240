"""Per-shard units: same bytes whatever the worker count, resume at the next missing shard."""

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from correlearn.data.shard_build import PLAN_NAME, ShardPlan, part_file, write_plan
from correlearn.data.shards import (
    build_shards,
    shard_options,
    write_image_shards,
    write_shard,
    write_video_shards,
)
from correlearn.data.sources import ImageItem


def _digests(out_dir) -> dict[str, str]:
    """File name -> sha256 of every file of a shard folder (hidden files included)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(out_dir).iterdir())
        if p.is_file()
    }


def test_images_are_byte_identical_at_one_and_two_workers(davis_images, tmp_path):
    a = write_image_shards(davis_images, tmp_path / "a", 2, progress=False)
    b = write_image_shards(davis_images, tmp_path / "b", 2, progress=False, workers=2)
    assert len(a.shards) == 5 and a.shards == b.shards
    assert _digests(a.out_dir) == _digests(b.out_dir)
    assert set(_digests(a.out_dir)) == {*a.shards, "index.parquet"}  # plan and parts removed


def test_videos_are_byte_identical_at_one_and_two_workers(davis_videos, tmp_path):
    a = write_video_shards(davis_videos, tmp_path / "a", 1, max_short_side=64, progress=False)
    b = write_video_shards(
        davis_videos, tmp_path / "b", 1, max_short_side=64, progress=False, workers=2
    )
    assert _digests(a.out_dir) == _digests(b.out_dir) and len(a.shards) == 2


def test_a_stopped_build_resumes_at_the_next_missing_shard(davis_images, tmp_path):
    ref = write_image_shards(davis_images, tmp_path / "ref", 4, progress=False)
    out = tmp_path / "stopped"
    plan = write_plan(out, "images", davis_images, 4, shard_options("images"))
    write_shard(str(out), 1)  # shard 1 finished before the stop...
    (out / ".shard-000002.tar.tmp999").write_bytes(b"half")  # ...shard 2 was being written
    before = (out / "shard-000001.tar").stat().st_mtime_ns
    summary = build_shards(davis_images, out, shard_options("images"), 4, progress=False)
    assert summary.n_resumed == 1 and plan.n_shards == 3
    assert part_file(out, 1).exists() is False  # merged and removed
    assert (out / "shard-000001.tar").stat().st_mtime_ns == before  # kept, not rewritten
    assert _digests(out) == _digests(ref.out_dir)  # the cut-short temp file is gone too


def test_a_skipped_input_leaves_its_shard_short(davis_images, tmp_path):
    (tmp_path / "zero.jpg").write_bytes(b"")
    items = [*davis_images[:2], ImageItem("bad", str(tmp_path / "zero.jpg"), -1, "t")]
    items += davis_images[2:5]
    with pytest.warns(UserWarning, match="zero.jpg: empty file"):
        s = write_image_shards(items, tmp_path / "out", 3, progress=False, workers=2)
    t = pq.read_table(s.index_path)
    assert t.column("shard").to_pylist() == ["shard-000000.tar"] * 2 + ["shard-000001.tar"] * 3
    assert [p for p, _ in s.skipped] == [str(tmp_path / "zero.jpg")]


def test_a_different_plan_replaces_a_stale_one(davis_images, tmp_path):
    out = tmp_path / "o"
    write_plan(out, "images", davis_images[:4], 2, shard_options("images"))
    write_shard(str(out), 0)
    plan = write_plan(out, "images", davis_images[4:], 2, shard_options("images"))
    assert not part_file(out, 0).exists() and not (out / "shard-000000.tar").exists()
    assert plan.n_items == 5 and plan.n_shards == 3
    assert [it.key for it, _ in ShardPlan.load(out).items(2)] == [davis_images[8].key]
    meta = json.loads(pq.read_schema(out / PLAN_NAME).metadata[b"plan"])
    assert meta["shard_size"] == 2 and meta["options"] == {"kind": "images", "max_short_side": None}
