import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from correlearn.mining.box_shards import (
    BOXES,
    BOXES_SCHEMA,
    merge_box_shards,
    read_boxes,
    remove_stale_writes,
    shard_file,
)


def _write(out, shard, keys, boxes):
    table = pa.table(
        {"key": keys, "boxes": boxes, "n_raw": [len(b) + 1 for b in boxes]}, schema=BOXES_SCHEMA
    )
    pq.write_table(table, shard_file(out, shard))


def test_merge_in_shard_order_then_read_per_key(tmp_path):
    _write(tmp_path, "shard-000001.tar", ["c"], [[[0, 0, 5, 5]]])
    _write(tmp_path, "shard-000000.tar", ["a", "b"], [[[1, 2, 3, 4], [0, 0, 9, 9]], []])
    (tmp_path / ".boxes-shard-000002.parquet.tmp123").write_bytes(b"cut short")
    remove_stale_writes(tmp_path)
    table = merge_box_shards(tmp_path, ["shard-000000.tar", "shard-000001.tar"])
    assert table.column("key").to_pylist() == ["a", "b", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [BOXES]  # parts and leftovers gone
    boxes = read_boxes(tmp_path, ["c", "z", "a"])
    assert [b.shape for b in boxes] == [(1, 4), (0, 4), (2, 4)]
    assert boxes[0].dtype == np.float32
    np.testing.assert_array_equal(boxes[2], [[1, 2, 3, 4], [0, 0, 9, 9]])
