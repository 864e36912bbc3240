import numpy as np
import pyarrow.parquet as pq
import pytest

from correlearn.data.frame_index import (
    FrameSampler,
    TooShortError,
    build_frame_index,
    continuous_sample,
    count_gap_pairs,
    distant_sample,
    gap_pair,
    scaled_gaps,
    valid_videos,
    write_frame_index,
)


@pytest.mark.parametrize("n_frames,n", [(82, 8), (10, 8), (8, 8), (100, 3)])
def test_distant_sampling_one_frame_per_segment(n_frames, n):
    rng = np.random.default_rng(0)
    bounds = np.arange(n + 1) * n_frames // n
    draws = np.stack([distant_sample(n_frames, n, rng) for _ in range(2000)])
    assert draws.shape == (2000, n)
    seg = np.searchsorted(bounds, draws, side="right") - 1
    assert (seg == np.arange(n)).all()  # frame i always from segment i
    assert (np.diff(draws, axis=1) > 0).all()
    for i in range(n):  # every position of every segment is reachable
        assert set(draws[:, i]) == set(range(bounds[i], bounds[i + 1]))


def test_continuous_sampling_keeps_its_interval():
    rng = np.random.default_rng(1)
    draws = np.stack([continuous_sample(40, 4, 5, rng) for _ in range(500)])
    assert (np.diff(draws, axis=1) == 5).all()
    assert draws.min() == 0 and draws.max() == 39
    same = continuous_sample(3, 4, 0, rng)
    assert (same == same[0]).all()
    with pytest.raises(TooShortError):
        continuous_sample(15, 4, 5, rng)


@pytest.mark.parametrize("fps,lo,hi", [(30.0, 4, 48), (15.0, 2, 24), (60.0, 8, 96)])
def test_gap_pair_gaps_scale_with_fps(fps, lo, hi):
    rng = np.random.default_rng(2)
    gaps = []
    for _ in range(3000):
        i, j = gap_pair(400, fps, rng=rng)
        assert 0 <= i < j < 400
        gaps.append(j - i)
    assert min(gaps) == lo and max(gaps) == hi
    assert set(gaps) == set(scaled_gaps(fps).tolist())


def test_gap_pair_in_short_video_stays_in_range():
    rng = np.random.default_rng(3)
    pairs = [gap_pair(20, 30.0, rng=rng) for _ in range(500)]
    assert {j - i for i, j in pairs} == set(range(4, 20))
    assert gap_pair(5, 30.0, rng=rng) == (0, 4)
    with pytest.raises(TooShortError):
        gap_pair(4, 30.0, rng=rng)
    assert gap_pair(2, 6.0, rng=rng) == (0, 1)  # 4 frames at 30 fps -> 0.8 -> at least 1


def test_samplers_are_deterministic_under_a_seed():
    a = [
        FrameSampler(kind=k).sample(90, 24.0, np.random.default_rng(5))
        for k in ("distant", "continuous", "gap_pair")
    ]
    b = [
        FrameSampler(kind=k).sample(90, 24.0, np.random.default_rng(5))
        for k in ("distant", "continuous", "gap_pair")
    ]
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert [x.shape for x in a] == [(8,), (8,), (2,)]
    with pytest.raises(TooShortError):
        distant_sample(7, 8, np.random.default_rng(0))


def test_count_gap_pairs_matches_enumeration():
    for n, fps in [(30, 30.0), (60, 15.0), (200, 60.0), (3, 30.0)]:
        allowed = set(scaled_gaps(fps).tolist())
        brute = sum(1 for i in range(n) for j in range(i + 1, n) if j - i in allowed)
        assert count_gap_pairs(n, fps) == brute


def test_frame_index_and_valid_videos(davis_video_shards, tmp_path):
    table = build_frame_index(davis_video_shards.index_path, gap_ranges=[(4, 48), (1, 2)])
    assert table.column_names == [
        "position",
        "key",
        "n_frames",
        "fps",
        "shard",
        "duration_s",
        "pairs_gap_4_48",
        "pairs_gap_1_2",
    ]
    # 3 fps: [4, 48] at 30 fps -> gaps 1..5 frames; bear has 11 frames
    assert table.column("pairs_gap_4_48").to_pylist()[0] == sum(11 - g for g in range(1, 6))
    path = write_frame_index(table, tmp_path / "frames.parquet")
    assert pq.read_table(path).num_rows == 2
    ok, skipped = valid_videos(path, FrameSampler(kind="distant", n=11))
    assert ok == [0] and skipped[0][0] == "boat" and "10 frames < 11" in skipped[0][1]
    rows = [{"key": "tiny", "n_frames": 4, "fps": 30.0}, {"key": "ok", "n_frames": 5, "fps": 30.0}]
    ok, skipped = valid_videos(rows, FrameSampler(kind="gap_pair"))
    assert ok == [1] and skipped[0][0] == "tiny"
