"""Video options: the frame-rate cap, and the encoded layout read through the same interface."""

import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from correlearn.data import video_codec
from correlearn.data.decode import decode_image
from correlearn.data.readers import ShardedVideos
from correlearn.data.shards import write_video_shards
from correlearn.data.sources import DataError, VideoItem
from correlearn.data.video_frames import fps_stride
from correlearn.data.wds_pipeline import make_wds_pipeline

pytest.importorskip("av")


def test_fps_stride_keeps_at_most_the_cap():
    assert [fps_stride(24.0, m) for m in (None, 30, 24, 12, 10, 5)] == [1, 1, 1, 2, 3, 5]
    assert fps_stride(29.97, 15) == 2 and fps_stride(30.0, 15) == 2


def test_max_fps_subsamples_frame_folders(davis_videos, tmp_path):
    # davis_videos: every 8th DAVIS frame, at 24 / 8 = 3 fps; a 1 fps cap keeps every 3rd.
    s = write_video_shards(davis_videos, tmp_path / "o", max_fps=1.0, progress=False)
    t = pq.read_table(s.index_path)
    assert t.column("fps").to_pylist() == [1.0, 1.0]
    assert t.column("n_frames").to_pylist() == [4, 4]  # ceil(11 / 3), ceil(10 / 3)
    vids = ShardedVideos(s.out_dir)
    np.testing.assert_array_equal(
        vids.frame(0, 2), decode_image(Path(davis_videos[0].frames[6]).read_bytes())
    )


def test_max_fps_subsamples_video_files(davis_videos, tmp_path):
    frames = [cv2.imread(p) for p in davis_videos[0].frames[:9]]
    vw = cv2.VideoWriter(str(tmp_path / "c.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (854, 480))
    for f in frames:
        vw.write(f)
    vw.release()
    clip = VideoItem("c", None, str(tmp_path / "c.avi"), 30.0, 1, "v")
    s = write_video_shards([clip], tmp_path / "o", max_fps=5, max_short_side=96, progress=False)
    t = pq.read_table(s.index_path).to_pylist()[0]
    assert (t["fps"], t["n_frames"], t["width"], t["height"]) == (4.0, 3, 171, 96)


@pytest.fixture(scope="module")
def encoded(davis_videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("encoded")
    return write_video_shards(davis_videos, out, 1, layout="encoded", progress=False, workers=2)


def test_encoded_layout_reads_like_the_frames_layout(davis_videos, davis_video_shards, encoded):
    vids, ref = ShardedVideos(encoded.out_dir), ShardedVideos(davis_video_shards.out_dir)
    assert list(vids.n_frames) == list(ref.n_frames) and list(vids.fps) == list(ref.fps)
    assert vids.keys == ref.keys and vids.encoded and not ref.encoded
    ts = [9, 0, 9, 4]
    got = vids.frames(1, ts)
    assert got.shape == (4, 480, 854, 3) and got.dtype == np.uint8
    for frame, t in zip(got, ts, strict=True):
        assert np.abs(frame.astype(int) - ref.frame(1, t)).mean() < 6  # lossy, CRF 23
    np.testing.assert_array_equal(vids.frame(1, 9), got[0])  # a seek decodes exactly the same
    with pytest.raises(IndexError):
        vids.frame(1, 10)
    with pytest.raises(DataError, match="no per-frame JPEG bytes"):
        vids.frame_bytes(0, 0)


def test_encoded_layout_streams_through_the_pipeline(encoded):
    paths = [Path(encoded.out_dir) / s for s in encoded.shards]
    out = list(make_wds_pipeline(paths, shuffle_buffer=0))
    vids = ShardedVideos(encoded.out_dir)
    assert [s["key"] for s in out] == ["bear", "boat"] and len(out[0]["frames"]) == 11
    np.testing.assert_array_equal(np.stack(out[0]["frames"]), vids[0]["frames"])


def test_odd_frame_sizes_are_padded_then_cropped(davis_videos, tmp_path):
    s = write_video_shards(
        davis_videos[:1], tmp_path / "o", max_short_side=75, layout="encoded", progress=False
    )
    vids = ShardedVideos(s.out_dir, decode="torch")
    assert vids.frames(0, [3, 10]).shape == (2, 3, 75, 133)


def test_missing_pyav_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    with pytest.raises(DataError, match="needs PyAV.*pip install av"):
        video_codec.encode_video([np.zeros((8, 8, 3), np.uint8)], 24.0)
