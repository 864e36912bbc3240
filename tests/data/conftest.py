"""Fixtures of the data-layer tests: a few real DAVIS-2016 frames and their shards."""

from pathlib import Path

import pytest

from correlearn.data.shards import write_image_shards, write_video_shards
from correlearn.data.sources import DatasetSpec, list_images, list_videos

SEQS = ["bear", "boat"]


@pytest.fixture(scope="session")
def davis_root(shared_davis) -> Path:
    """``<repo>/../shared/data/davis2016-train``; missing: skipped, or failed under CI=true."""
    return shared_davis


@pytest.fixture(scope="session")
def davis_images(davis_root):
    """Every 20th frame of bear and boat: 5 + 4 real 854x480 JPEGs."""
    spec = DatasetSpec(
        name="davis", root=str(davis_root), layout="davis", sequences=SEQS, frame_step=20
    )
    return list_images(spec)


@pytest.fixture(scope="session")
def davis_image_shards(davis_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("img_shards")
    return write_image_shards(davis_images, out, max_count_per_shard=4, progress=False)


@pytest.fixture(scope="session")
def davis_videos(davis_root):
    """bear and boat at every 8th frame (3 fps), 11 and 10 frames."""
    spec = DatasetSpec(
        name="davis", root=str(davis_root), layout="davis", sequences=SEQS, frame_step=8
    )
    return list_videos(spec)


@pytest.fixture(scope="session")
def davis_video_shards(davis_videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("vid_shards")
    return write_video_shards(davis_videos, out, max_count_per_shard=1, progress=False)
