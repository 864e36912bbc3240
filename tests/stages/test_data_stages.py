"""Data stages through the stage runner on real DAVIS frames: shards, video shards, frame index,
bad input, and what lands in the manifest and in MLflow."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from correlearn.config import ConfigError
from correlearn.data.readers import ShardedImages, ShardedVideos
from correlearn.data.sources import DataError
from correlearn.pipeline import Pipeline
from correlearn.tracking import Tracker
from correlearn.workspace import get_workspace
from stages import STAGES

DAVIS = Path(__file__).resolve().parents[2] / "data" / "davis-mini"


@pytest.fixture()
def dataset(tmp_path, make_davis):
    """``dataset(seqs=..., n=...)``: a DAVIS-layout copy in ``tmp_path/davis``."""
    return lambda seqs=("dog-agility", "rollerblade"), n=6: make_davis(tmp_path / "davis", seqs, n)


def _pipe(tmp_path, root, extra="", overrides=None, tracker=True):
    ws = get_workspace(tmp_path / "home")
    for p in (ws.artifacts, ws.mlflow_artifacts):
        p.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "p.yaml"
    cfg.write_text(
        f"datasets:\n  d: {{root: {root}, layout: davis}}\n"
        "image_shards: {dataset: d}\nvideo_shards: {dataset: d}\n" + extra
    )
    return Pipeline(cfg, STAGES, ws, overrides, Tracker(ws) if tracker else None)


def test_image_shards_round_trip_is_pixel_exact(tmp_path, dataset):
    root = dataset()
    res = _pipe(tmp_path, root).run_stage("image_shards")
    ds = ShardedImages(res.ref.path)
    assert len(ds) == 12
    for i in (0, 7):
        key = ds[i]["key"]
        seq, frame = key.split("/")
        orig = np.asarray(
            Image.open(root / "JPEGImages" / "480p" / seq / f"{frame}.jpg").convert("RGB")
        )
        assert np.array_equal(ds[i]["image"], orig)
    idx = pq.read_table(Path(res.ref.path) / "index.parquet")
    assert {"key", "shard", "label", "width", "height", "source"} <= set(idx.column_names)
    assert set(idx.column("width").to_pylist()) == {854}
    m = json.loads((Path(res.ref.path) / "manifest.json").read_text())
    assert m["counts"]["images"] == 12 and m["skipped"] == []
    assert m["config"]["source"]["items"] == 12


def test_short_side_cap_and_frame_step_change_the_key(tmp_path, dataset):
    root = dataset()
    a = _pipe(tmp_path, root, tracker=False).run_stage("image_shards")
    b = _pipe(
        tmp_path, root, overrides=["image_shards.max_short_side=120"], tracker=False
    ).run_stage("image_shards")
    c = _pipe(tmp_path, root, overrides=["image_shards.frame_step=3"], tracker=False).run_stage(
        "image_shards"
    )
    assert len({a.ref.key, b.ref.key, c.ref.key}) == 3
    assert ShardedImages(b.ref.path)[0]["image"].shape == (120, round(854 * 120 / 480), 3)
    assert len(ShardedImages(c.ref.path)) == 4  # frames 0 and 3 of each sequence


def test_data_change_changes_the_key(tmp_path, dataset):
    root = dataset()
    a = _pipe(tmp_path, root, tracker=False).run_stage("image_shards")
    (root / "JPEGImages" / "480p" / "rollerblade" / "00005.jpg").unlink()
    b = _pipe(tmp_path, root, tracker=False).run_stage("image_shards")
    assert a.ref.key != b.ref.key and not b.cache_hit


def test_corrupt_and_empty_images_are_skipped_and_listed(tmp_path, dataset):
    root = dataset()
    frames = root / "JPEGImages" / "480p" / "dog-agility"
    (frames / "00001.jpg").write_bytes(b"")
    data = (frames / "00002.jpg").read_bytes()
    (frames / "00002.jpg").write_bytes(data[: len(data) // 3])
    with pytest.warns(UserWarning, match="skipping .*00001.jpg: empty file"):
        res = _pipe(tmp_path, root, tracker=False).run_stage("image_shards")
    m = json.loads((Path(res.ref.path) / "manifest.json").read_text())
    assert m["counts"]["images"] == 10 and m["counts"]["skipped"] == 2
    items = sorted(s["item"] for s in m["skipped"])
    assert items[0].endswith("00001.jpg") and items[1].endswith("00002.jpg")
    assert all(s["reason"] for s in m["skipped"])


def test_missing_root_and_empty_dataset_name_the_path(tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        _pipe(tmp_path, tmp_path / "nowhere", tracker=False).run_stage("image_shards")
    empty = tmp_path / "empty"
    (empty / "JPEGImages" / "480p").mkdir(parents=True)
    with pytest.raises(DataError, match="empty"):
        _pipe(tmp_path, empty, tracker=False).run_stage("image_shards")
    with pytest.raises(ConfigError, match="datasets.nope"):
        _pipe(tmp_path, empty, overrides=["image_shards.dataset=nope"], tracker=False).run_stage(
            "image_shards"
        )


def test_video_shards_and_frame_index(tmp_path, dataset):
    root = dataset(seqs=("dog-agility", "rollerblade", "surf"), n=30)
    with pytest.warns(UserWarning, match=r"surf.*00004.jpg: cannot decode"):
        (root / "JPEGImages" / "480p" / "surf" / "00004.jpg").write_bytes(b"broken")
        res = _pipe(tmp_path, root, tracker=False).run_stage("frame_index")
    idx = pq.read_table(Path(res.ref.path) / "frame_index.parquet").to_pylist()
    assert [r["key"] for r in idx] == ["dog-agility", "rollerblade"]  # surf skipped, whole video
    assert all(r["n_frames"] == 25 if r["key"] == "dog-agility" else 30 for r in idx)
    assert all(r["fps"] == 24.0 for r in idx)
    # Hand count for 25 frames at 24 fps: gaps round(g * 24 / 30) for g in 4..48 that are <= 24.
    gaps = {int(np.floor(g * 24 / 30 + 0.5)) for g in range(4, 49)}
    expected = sum(25 - g for g in gaps if g <= 24)
    assert idx[0]["pairs_gap_4_48"] == expected
    vids = ShardedVideos(
        Path(res.ref.path).parents[1]
        / "video_shards"
        / json.loads((Path(res.ref.path) / "manifest.json").read_text())["inputs"]["videos"]["key"]
    )
    orig = np.asarray(
        Image.open(root / "JPEGImages" / "480p" / "rollerblade" / "00017.jpg").convert("RGB")
    )
    assert np.array_equal(vids.frame(vids.position("rollerblade"), 17), orig)


def test_a_skipped_image_is_warned_once(tmp_path, dataset):
    # issue 11 item 13: the shard writer and the stage each warned about the same skipped file.
    import warnings

    root = dataset(seqs=("dog-agility",), n=3)
    bad = root / "JPEGImages" / "480p" / "dog-agility" / "00001.jpg"
    bad.write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _pipe(tmp_path, root, tracker=False).run_stage("image_shards")
    about = [w for w in caught if "00001.jpg" in str(w.message)]
    assert len(about) == 1, [str(w.message) for w in about]
    m = json.loads((Path(res.ref.path) / "manifest.json").read_text())
    assert [s["item"] for s in m["skipped"]] == [str(bad)]
