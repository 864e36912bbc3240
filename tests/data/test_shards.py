import tarfile
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from correlearn.data.decode import decode_image
from correlearn.data.prepare import sanitize_keys
from correlearn.data.readers import ShardedImages, ShardedVideos
from correlearn.data.shards import write_image_shards, write_video_shards
from correlearn.data.sources import DataError, ImageItem, VideoItem


def _decode_file(path):
    return decode_image(Path(path).read_bytes())


def test_image_round_trip_is_pixel_exact(davis_images, davis_image_shards):
    s = davis_image_shards
    assert s.n_samples == 9 and s.skipped == [] and s.n_reencoded == 0
    assert s.shards == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    ds = ShardedImages(s.out_dir)
    assert len(ds) == 9
    for i, item in enumerate(davis_images):
        assert ds.read_bytes(i) == Path(item.path).read_bytes()
        sample = ds[i]
        assert sample["key"] == item.key and sample["image"].shape == (480, 854, 3)
        np.testing.assert_array_equal(sample["image"], _decode_file(item.path))
    assert ds.position("boat/00020") == 6


def test_image_index_columns(davis_images, davis_image_shards):
    t = pq.read_table(davis_image_shards.index_path)
    assert t.column_names[:8] == [
        "key",
        "wds_key",
        "shard",
        "label",
        "width",
        "height",
        "source",
        "dataset",
    ]
    assert t.num_rows == 9
    assert t.column("wds_key").to_pylist()[0] == "bear__00000"
    assert set(t.column("width").to_pylist()) == {854} and set(t.column("height").to_pylist()) == {
        480
    }
    assert t.column("source").to_pylist() == [it.path for it in davis_images]
    counts = t.group_by("shard").aggregate([("key", "count")]).column("key_count").to_pylist()
    assert sorted(counts) == [1, 4, 4]
    with tarfile.open(Path(davis_image_shards.out_dir) / "shard-000000.tar") as tar:
        assert tar.getnames()[:2] == ["bear__00000.jpg", "bear__00000.json"]


def test_short_side_cap_downscales_and_never_upscales(davis_images, tmp_path):
    items = davis_images[:2]
    s = write_image_shards(items, tmp_path / "small", max_short_side=240, progress=False)
    ds = ShardedImages(s.out_dir)
    assert s.n_reencoded == 2 and ds[0]["image"].shape == (240, 427, 3)
    t = pq.read_table(s.index_path)
    assert (
        t.column("width").to_pylist() == [427, 427] and t.column("height").to_pylist() == [240] * 2
    )
    big = write_image_shards(items, tmp_path / "big", max_short_side=1000, progress=False)
    assert big.n_reencoded == 0
    assert ShardedImages(big.out_dir).read_bytes(1) == Path(items[1].path).read_bytes()


def test_corrupt_and_empty_files_are_skipped(davis_images, tmp_path):
    good = davis_images[0]
    data = Path(good.path).read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "zero.jpg").write_bytes(b"")
    items = [
        good,
        ImageItem("bad/trunc", str(tmp_path / "trunc.jpg"), -1, "t"),
        ImageItem("bad/zero", str(tmp_path / "zero.jpg"), -1, "t"),
    ]
    with pytest.warns(UserWarning) as rec:
        s = write_image_shards(items, tmp_path / "out", progress=False)
    assert sorted(str(w.message).split(":")[0] for w in rec) == [
        f"skipping {tmp_path / 'trunc.jpg'}",
        f"skipping {tmp_path / 'zero.jpg'}",
    ]
    assert s.n_samples == 1
    reasons = dict(s.skipped)
    assert set(reasons) == {str(tmp_path / "trunc.jpg"), str(tmp_path / "zero.jpg")}
    assert "truncated" in reasons[str(tmp_path / "trunc.jpg")]
    assert "0 bytes" in reasons[str(tmp_path / "zero.jpg")]
    with pytest.raises(DataError, match="no usable input"), pytest.warns(UserWarning):
        write_image_shards(items[2:], tmp_path / "none", progress=False)


def test_png_is_converted_and_keys_are_sanitized(davis_images, tmp_path):
    rgb = _decode_file(davis_images[0].path)[:64, :80]
    cv2.imwrite(str(tmp_path / "x.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    items = [
        ImageItem("a/b.c", str(tmp_path / "x.png"), 3, "p"),
        ImageItem("a/b_c", str(tmp_path / "x.png"), 3, "p"),
    ]
    s = write_image_shards(items, tmp_path / "out", progress=False)
    t = pq.read_table(s.index_path)
    assert t.column("wds_key").to_pylist() == ["a__b_c", "a__b_c-1"]
    assert t.column("key").to_pylist() == ["a/b.c", "a/b_c"] and s.n_reencoded == 2
    out = ShardedImages(s.out_dir)[0]
    assert out["label"] == 3 and np.abs(out["image"].astype(int) - rgb).mean() < 3
    assert sanitize_keys(["__x__", "é/ü"]) == ["__x__", "____"]


def test_shards_are_byte_deterministic(davis_images, tmp_path):
    a = write_image_shards(davis_images[:3], tmp_path / "a", progress=False)
    b = write_image_shards(davis_images[:3], tmp_path / "b", progress=False)
    for name in a.shards:
        assert (Path(a.out_dir) / name).read_bytes() == (Path(b.out_dir) / name).read_bytes()


def test_video_shards_from_frame_folders(davis_videos, davis_video_shards):
    s = davis_video_shards
    assert s.n_samples == 2 and len(s.shards) == 2
    t = pq.read_table(s.index_path)
    assert t.column("key").to_pylist() == ["bear", "boat"]
    assert t.column("n_frames").to_pylist() == [11, 10] and t.column("fps").to_pylist() == [
        3.0,
        3.0,
    ]
    vids = ShardedVideos(s.out_dir)
    np.testing.assert_array_equal(vids.frame(0, 7), _decode_file(davis_videos[0].frames[7]))
    assert vids.frames(1, [0, 9]).shape == (2, 480, 854, 3)
    with pytest.raises(IndexError):
        vids.frame(1, 10)


def _write_avi(path, frames, fps=15.0):
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def test_video_files_and_unreadable_video(davis_videos, tmp_path):
    frames = [cv2.resize(_decode_file(p), (160, 96)) for p in davis_videos[0].frames[:6]]
    _write_avi(tmp_path / "clip.avi", frames)
    (tmp_path / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    videos = [
        VideoItem("clip", None, str(tmp_path / "clip.avi"), 30.0, 1, "v"),
        VideoItem("clip2", None, str(tmp_path / "clip.avi"), 30.0, 2, "v"),
        VideoItem("broken", None, str(tmp_path / "broken.mp4"), 30.0, 1, "v"),
    ]
    with pytest.warns(UserWarning, match="broken.mp4"):
        s = write_video_shards(videos, tmp_path / "out", progress=False)
    assert [p for p, _ in s.skipped] == [str(tmp_path / "broken.mp4")]
    t = pq.read_table(s.index_path)
    assert t.column("n_frames").to_pylist() == [6, 3]
    assert t.column("fps").to_pylist() == [15.0, 7.5]  # container fps, divided by frame_step
    assert (t.column("width").to_pylist(), t.column("height").to_pylist()) == ([160] * 2, [96] * 2)
    vids = ShardedVideos(s.out_dir)
    assert np.abs(vids.frame(0, 2).astype(int) - frames[2]).mean() < 8  # MJPG + JPEG, lossy
    assert np.abs(vids.frame(1, 1).astype(int) - frames[2]).mean() < 8
