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


def _files(path):
    return {p.name: p.read_bytes() for p in Path(path).glob("*") if p.name != "manifest.json"}


def test_mapped_units_then_run_give_the_plain_artifact(tmp_path, dataset):
    # The flow's Dask path: pending units computed first (any process), then the stage merges.
    from correlearn.stage import UnitCall

    root = dataset(n=5)
    plain = _pipe(tmp_path / "a", root, overrides=["image_shards.shard_size=3"], tracker=False)
    ref = plain.run_stage("image_shards")
    pipe = _pipe(tmp_path / "b", root, overrides=["image_shards.shard_size=3"], tracker=False)
    spec = STAGES["image_shards"]
    config = pipe.section("image_shards")
    key, resolved = pipe.key_of("image_shards", config, {})
    partial = pipe.store.begin("image_shards", key, keep_partial=spec.resumable)
    call = UnitCall("image_shards", config, resolved, {}, partial, pipe.base_dir)
    call = UnitCall.from_dict(call.to_dict(), spec)  # what a mapped task receives
    units = spec.units.names(call)
    assert units == ["shard-000000", "shard-000001", "shard-000002", "shard-000003"]
    for unit in units[:3]:  # the last one "did not get mapped": run() computes it
        assert spec.units.run_unit(call, unit) == spec.units.done_file(call, unit)
    res = pipe.run_stage("image_shards")
    assert res.ref.key == ref.ref.key == key
    assert _files(res.ref.path) == _files(ref.ref.path)
    m = json.loads((Path(res.ref.path) / "manifest.json").read_text())
    assert m["counts"]["shards_resumed"] == 3 and m["counts"]["images"] == 10


def test_workers_are_not_in_the_key_and_change_no_byte(tmp_path, dataset):
    root = dataset(n=4)
    a = _pipe(tmp_path / "a", root, tracker=False).run_stage("video_shards")
    two = ["video_shards.workers=2", "video_shards.shard_size=1"]
    b = _pipe(tmp_path / "b", root, overrides=two, tracker=False).run_stage("video_shards")
    one = _pipe(tmp_path / "b", root, overrides=two[1:], tracker=False).run_stage("video_shards")
    assert one.cache_hit and one.ref.key == b.ref.key != a.ref.key
    c = _pipe(tmp_path / "c", root, overrides=two[1:], tracker=False).run_stage("video_shards")
    assert _files(c.ref.path) == _files(b.ref.path)


def test_video_options_change_the_key_and_frame_index_reads_encoded(tmp_path, dataset):
    pytest.importorskip("av")
    root = dataset(n=12)
    over = ["video_shards.max_fps=12", "video_shards.layout=encoded"]
    base = _pipe(tmp_path, root, tracker=False).run_stage("video_shards")
    capped = _pipe(tmp_path, root, overrides=over[:1], tracker=False).run_stage("video_shards")
    enc = _pipe(tmp_path, root, overrides=over, tracker=False).run_stage("frame_index")
    assert len({base.ref.key, capped.ref.key}) == 2 and not enc.cache_hit
    idx = pq.read_table(Path(enc.ref.path) / "frame_index.parquet").to_pylist()
    assert [(r["n_frames"], r["fps"]) for r in idx] == [(6, 12.0), (6, 12.0)]  # DAVIS: 24 fps
    frames_dir = json.loads((Path(enc.ref.path) / "manifest.json").read_text())["inputs"]
    vids = ShardedVideos(
        Path(enc.ref.path).parents[1] / "video_shards" / frames_dir["videos"]["key"]
    )
    assert vids.encoded and vids.frames(0, [5, 1]).shape == (2, 480, 854, 3)


def test_encoded_layout_without_pyav_is_a_config_error(tmp_path, dataset, monkeypatch):
    import correlearn.data.shard_stage as shard_stage

    monkeypatch.setattr(shard_stage, "find_spec", lambda name: None)
    pipe = _pipe(tmp_path, dataset(n=2), overrides=["video_shards.layout=encoded"], tracker=False)
    with pytest.raises(ConfigError, match=r"video_shards.layout: 'encoded' needs PyAV"):
        pipe.run_stage("video_shards")
