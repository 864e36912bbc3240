import numpy as np
import pytest

from correlearn.data.box_jitter import clip_box, jitter_box, sample_jitter
from correlearn.data.box_ops import iou_matrix

BOX = np.array([100.0, 50.0, 300.0, 150.0])  # w 200, h 100


def test_unclipped_jitter_stays_in_paper_ranges():
    # The ranges of ORL footnote 3 hold before clipping (clipping can only shrink the box).
    rng = np.random.default_rng(0)
    w, h = 200.0, 100.0
    out = np.stack([sample_jitter(BOX, rng) for _ in range(2000)])
    nw, nh = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
    dx = 0.5 * (out[:, 0] + out[:, 2]) - 200.0
    dy = 0.5 * (out[:, 1] + out[:, 3]) - 100.0
    eps = 1e-9
    assert np.all(np.abs(dx) <= 0.5 * w + eps) and np.all(np.abs(dy) <= 0.5 * h + eps)
    area = nw * nh / (w * h)
    assert area.min() >= 0.5 - eps and area.max() <= 2.0 + eps
    aspect = nw / nh
    assert aspect.min() >= 0.5 - eps and aspect.max() <= 2.0 + eps
    # The ranges are actually explored, not just respected.
    assert area.min() < 0.6 and area.max() > 1.9 and aspect.min() < 0.6 and aspect.max() > 1.8
    assert np.abs(dx).max() > 0.45 * w and np.abs(dy).max() > 0.45 * h


def test_jitter_is_deterministic_under_seed():
    a = [jitter_box(BOX, np.random.default_rng(7), 320, 240) for _ in range(3)]
    assert all(np.array_equal(a[0], x) for x in a)
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    s1 = [jitter_box(BOX, r1, 320, 240) for _ in range(5)]
    s2 = [jitter_box(BOX, r2, 320, 240) for _ in range(5)]
    assert np.array_equal(s1, s2)
    assert not np.array_equal(s1[0], s1[1])


def test_clipped_jitter_inside_image_and_at_least_one_pixel():
    rng = np.random.default_rng(1)
    corner = np.array([0.0, 0.0, 5.0, 5.0])
    for box in (BOX, corner):
        for _ in range(500):
            b = jitter_box(box, rng, 320, 240)
            assert 0 <= b[0] < b[2] <= 320 and 0 <= b[1] < b[3] <= 240
            assert b[2] - b[0] >= 1 - 1e-9 and b[3] - b[1] >= 1 - 1e-9


def test_clip_box_regrows_slivers():
    assert np.allclose(clip_box([-10, -10, -5, -5], 100, 50), [0, 0, 1, 1])
    assert np.allclose(clip_box([120, 10, 130, 20], 100, 50), [99, 10, 100, 20])


def test_reject_mode_matches_reference_rules():
    rng = np.random.default_rng(3)
    for _ in range(300):
        b = jitter_box(BOX, rng, 320, 240, mode="reject")
        assert np.array_equal(b, np.round(b))
        assert 0 <= b[0] and 0 <= b[1] and b[2] <= 320 and b[3] <= 240
        assert iou_matrix(b, BOX)[0, 0] > 0.5 or np.array_equal(b, BOX)
    # Impossible constraints fall back to the source box.
    assert np.array_equal(jitter_box(BOX, rng, 320, 240, mode="reject", iou_thresh=1.0), BOX)


def test_bad_mode_and_box():
    with pytest.raises(ValueError):
        jitter_box(BOX, np.random.default_rng(0), 10, 10, mode="nope")
    with pytest.raises(ValueError):
        sample_jitter(np.array([0, 0, 0, 5]), np.random.default_rng(0))
