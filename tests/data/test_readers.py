import pickle
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import webdataset as wds

from correlearn.data.decode import decode_image
from correlearn.data.readers import ShardedImages, ShardedVideos
from correlearn.data.sources import DataError
from correlearn.data.wds_pipeline import DecodeErrors, load_video, make_wds_pipeline


def _shards(summary):
    return [Path(summary.out_dir) / s for s in summary.shards]


def test_pipeline_reads_every_image_in_order(davis_images, davis_image_shards):
    pipe = make_wds_pipeline(_shards(davis_image_shards), shuffle_buffer=0)
    out = list(pipe)
    assert [s["key"] for s in out] == [it.key for it in davis_images]
    np.testing.assert_array_equal(
        out[3]["image"], decode_image(Path(davis_images[3].path).read_bytes())
    )
    assert out[0]["__url__"].endswith("shard-000000.tar") and pipe.errors.total == 0


def test_pipeline_shuffle_is_seeded(davis_image_shards):
    def keys(seed):
        pipe = make_wds_pipeline(
            _shards(davis_image_shards), shuffle_buffer=8, seed=seed, decode="bytes"
        )
        return [s["key"] for s in pipe]

    a, b = keys(1), keys(1)
    assert a == b and len(a) == 9 and len(set(a)) == 9
    assert any(keys(s) != a for s in (2, 3, 4))


def test_pipeline_resampled_epoch_and_torch_decode(davis_image_shards):
    pipe = make_wds_pipeline(
        _shards(davis_image_shards),
        shuffle_buffer=4,
        resampled=True,
        epoch_length=13,
        decode="torch",
    )
    out = list(pipe)
    assert len(out) == 13
    assert out[0]["image"].shape == (3, 480, 854) and out[0]["image"].dtype == torch.uint8


def test_pipeline_with_workers_splits_shards(davis_image_shards):
    pipe = make_wds_pipeline(
        _shards(davis_image_shards), shuffle_buffer=0, decode="bytes", map_fn=lambda s: s["key"]
    )
    loader = torch.utils.data.DataLoader(pipe, batch_size=None, num_workers=2)
    keys = list(loader)
    assert len(keys) == 9 and len(set(keys)) == 9


def test_truncated_shard_is_reported_not_fatal(davis_image_shards, tmp_path):
    paths = []
    for p in _shards(davis_image_shards):
        paths.append(Path(shutil.copy(p, tmp_path / p.name)))
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])  # cut in the middle of the 2nd image
    errors = DecodeErrors()
    with pytest.warns(UserWarning, match="shard-000000.tar"):
        out = list(make_wds_pipeline(paths, shuffle_buffer=0, errors=errors))
    assert 5 <= len(out) < 9  # the 5 samples of the intact shards survive
    assert errors.total >= 1 and errors is not None
    assert all(rec[1].endswith("shard-000000.tar") for rec in errors.records)


def test_corrupt_sample_is_counted_with_its_key(davis_images, tmp_path):
    good = Path(davis_images[0].path).read_bytes()
    with wds.TarWriter(str(tmp_path / "bad.tar")) as tw:
        tw.write({"__key__": "ok", "jpg": good, "json": '{"key": "ok", "label": 1}'})
        tw.write({"__key__": "junk", "jpg": b"not a jpeg", "json": '{"key": "junk/1"}'})
        tw.write({"__key__": "nojpg", "json": '{"key": "nojpg"}'})
    errors = DecodeErrors()
    with pytest.warns(UserWarning) as rec:
        out = list(make_wds_pipeline([tmp_path / "bad.tar"], shuffle_buffer=0, errors=errors))
    assert "'junk' of shard" in str(rec[0].message) and "no image" in str(rec[1].message)
    assert [s["key"] for s in out] == ["ok"] and out[0]["label"] == 1
    assert errors.n_samples == 2 and errors.n_shard_errors == 0
    assert [r[2] for r in errors.records] == ["junk", "nojpg"]


def test_video_pipeline_and_load_video(davis_videos, davis_video_shards):
    out = list(make_wds_pipeline(_shards(davis_video_shards), shuffle_buffer=0))
    assert [s["key"] for s in out] == ["bear", "boat"] and len(out[0]["frames"]) == 11
    assert out[0]["fps"] == 3.0
    np.testing.assert_array_equal(
        out[1]["frames"][4], decode_image(Path(davis_videos[1].frames[4]).read_bytes())
    )
    sample = next(
        iter(
            wds.DataPipeline(
                wds.SimpleShardList([str(_shards(davis_video_shards)[0])]), wds.tarfile_to_samples()
            )
        )
    )
    frames = load_video(sample)
    assert len(frames) == 11 and frames[0].shape == (480, 854, 3)
    assert load_video(sample, "bytes")[2] == Path(davis_videos[0].frames[2]).read_bytes()


def test_random_access_survives_pickling_and_missing_offsets(davis_image_shards, tmp_path):
    ds = ShardedImages(davis_image_shards.out_dir, decode="torch")
    first = ds[5]["image"]
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[5]["image"], first) and first.shape == (3, 480, 854)
    for p in _shards(davis_image_shards):
        shutil.copy(p, tmp_path / p.name)
    t = pq.read_table(davis_image_shards.index_path).drop_columns(["offset", "size"])
    pq.write_table(t, tmp_path / "index.parquet")
    scanned = ShardedImages(tmp_path)
    np.testing.assert_array_equal(scanned.offsets, ds.offsets)
    assert scanned.read_bytes(8) == ds.read_bytes(8)


def test_video_random_access_by_frame(davis_videos, davis_video_shards):
    vids = ShardedVideos(davis_video_shards.out_dir, decode="torch")
    assert len(vids) == 2 and list(vids.n_frames) == [11, 10]
    item = vids[1]
    assert item["frames"].shape == (10, 3, 480, 854) and item["key"] == "boat"
    assert vids.frame_bytes(0, 3) == Path(davis_videos[0].frames[3]).read_bytes()


def _copy_shards(summary, dst):
    shutil.copytree(summary.out_dir, dst)
    return dst


def test_shard_paths_outside_the_artifact_are_refused(davis_image_shards, tmp_path):
    # issue 11 item 12: index.parquet rows naming ../ or absolute paths were followed.
    for bad in ("../outside.tar", "/etc/passwd"):
        root = _copy_shards(davis_image_shards, tmp_path / bad.replace("/", "_"))
        table = pq.read_table(root / "index.parquet")
        shards = table.column("shard").to_pylist()
        shards[1] = bad
        table = table.set_column(table.schema.get_field_index("shard"), "shard", [shards])
        pq.write_table(table, root / "index.parquet")
        with pytest.raises(DataError, match="outside the artifact"):
            ShardedImages(root)


def test_corrupt_member_error_names_shard_and_key(davis_image_shards, tmp_path):
    # issue 11 item 10: "cannot decode image (6088 bytes)" named neither the shard nor the key.
    root = _copy_shards(davis_image_shards, tmp_path / "s")
    ds = ShardedImages(root)
    shard, off, size = ds.shards[2], int(ds.offsets[2]), int(ds.sizes[2])
    with open(root / shard, "r+b") as f:
        f.seek(off)
        f.write(b"\0" * size)
    with pytest.raises(DataError, match=rf"{shard}: image of sample '{ds.keys[2]}'"):
        ShardedImages(root)[2]


def test_duplicate_keys_in_an_index_are_refused(davis_image_shards, tmp_path):
    root = _copy_shards(davis_image_shards, tmp_path / "d")
    table = pq.read_table(root / "index.parquet")
    keys = table.column("key").to_pylist()
    keys[3] = keys[0]
    table = table.set_column(table.schema.get_field_index("key"), "key", [keys])
    pq.write_table(table, root / "index.parquet")
    with pytest.raises(DataError, match="share the item key"):
        ShardedImages(root).position(keys[1])
