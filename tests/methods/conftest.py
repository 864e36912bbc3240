"""Method-test fixtures: tiny video shards of real DAVIS-2016 frames and their frame index."""

from pathlib import Path

import pytest

from correlearn.data.frame_index import build_frame_index, write_frame_index
from correlearn.data.shards import write_video_shards
from correlearn.data.sources import DatasetSpec, list_videos


@pytest.fixture(scope="session")
def davis_video_dir(shared_davis, tmp_path_factory) -> Path:
    """Video shards at short side 64: bear (41 frames) and boat (38) at every 2nd frame (12 fps),
    and hike as a single frame (every 100th), too short for any sampler. The frames come from
    ``<repo>/../shared/data/davis2016-train`` (missing: skipped, or failed under CI=true)."""
    videos = []
    for seqs, step in ((["bear", "boat"], 2), (["hike"], 100)):
        spec = DatasetSpec(
            name="d", root=str(shared_davis), layout="davis", sequences=seqs, frame_step=step
        )
        videos += list_videos(spec)
    out = tmp_path_factory.mktemp("method_videos")
    write_video_shards(videos, out, max_count_per_shard=2, max_short_side=64, progress=False)
    return out


@pytest.fixture(scope="session")
def davis_frame_index_dir(davis_video_dir, tmp_path_factory) -> Path:
    """Folder holding ``frame_index.parquet`` of :func:`davis_video_dir` (stage ``frame_index``)."""
    out = tmp_path_factory.mktemp("method_frame_index")
    write_frame_index(
        build_frame_index(davis_video_dir / "index.parquet"), out / "frame_index.parquet"
    )
    return out
