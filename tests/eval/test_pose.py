"""JHMDB pose propagation: label maps, read-back, PCK on constructed predictions, the reader."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from correlearn.data.sources import DataError
from correlearn.eval.features import IMAGENET_MEAN, IMAGENET_STD
from correlearn.eval.label_propagation import LabelPropConfig
from correlearn.eval.pose import (
    draw_gaussian,
    joint_label_maps,
    load_video,
    normalized_distances,
    pck,
    propagate_pose,
    read_keypoints,
    read_split,
)
from tests.eval.fixtures import make_jhmdb


def test_gaussian_patch_as_crw():
    # sigma 0.5, pt (2.2, 3.7): top-left int(pt - 1.5) = (0, 2), a 4x4 patch whose centre (index
    # 2) lands on cell (x 2, y 4); neighbours exp(-1 / (2 * 0.25)) = e^-2, diagonals e^-4.
    hm = np.zeros((8, 8))
    draw_gaussian(hm, (2.2, 3.7), 0.5)
    assert hm[4, 2] == 1.0
    for y, x in ((4, 1), (4, 3), (3, 2), (5, 2)):
        assert hm[y, x] == pytest.approx(math.exp(-2))
    assert hm[3, 1] == pytest.approx(math.exp(-4))
    assert hm[2, 2] == pytest.approx(math.exp(-8))  # the patch's first row
    assert hm[4, 4] == 0.0 and hm[6, 2] == 0.0  # outside the 4x4 patch (cols 0..3, rows 2..5)
    # Near the border: int() truncates towards zero, so int(0 - 1.5) = -1 and a joint at (0, 0)
    # is centred on cell (1, 1), as in CRW; the patch is clipped at the border.
    edge = np.zeros((8, 8))
    draw_gaussian(edge, (0.0, 0.0), 0.5)
    assert edge[1, 1] == 1.0 and edge[0, 0] == pytest.approx(math.exp(-4))
    far = np.zeros((8, 8))
    draw_gaussian(far, (20.0, 3.0), 0.5)
    assert not far.any()


def test_label_maps_background_channel():
    maps = joint_label_maps(np.array([[1.0, 1.0], [5.0, 6.0]]), (8, 8), sigma=0)
    assert maps.shape == (3, 8, 8)
    assert maps[1, 1, 1] == 1 and maps[2, 6, 5] == 1 and maps[1:].sum() == 2
    assert maps[0, 1, 1] == 0 and maps[0, 6, 5] == 0 and maps[0].sum() == 62


def test_read_keypoints_weighted_top3_and_lost():
    soft = torch.zeros(3, 6, 6)
    soft[1, 2, 1], soft[1, 2, 3], soft[1, 5, 2], soft[1, 0, 0] = 0.5, 0.3, 0.2, 0.1
    xy = read_keypoints(soft, topk=3)
    # Top 3 of joint 0: (x1, y2) 0.5, (x3, y2) 0.3, (x2, y5) 0.2 -> x 1.8, y 2.6; joint 1 empty.
    np.testing.assert_allclose(xy[0], [1.8, 2.6])
    np.testing.assert_array_equal(xy[1], [-1, -1])
    np.testing.assert_allclose(read_keypoints(soft, topk=1)[0], [1, 2])


def test_pck_by_hand():
    # 3 frames, 3 joints. GT joints (0, 0), (30, 40), (30, 0): person box 0.6 * 50 = 30.
    gt = np.tile(np.array([[0.0, 0.0], [30.0, 40.0], [30.0, 0.0]]), (3, 1, 1))
    pred = gt.copy()
    pred[0] = -1  # frame 0 is never scored, whatever it holds
    pred[1, 0] = (2.4, 0.0)  # 2.4 / 30 = 0.08
    pred[1, 1] = (30.0, 44.5)  # 4.5 / 30 = 0.15
    # Frame 2: joint 1 lost, so the box spans joints 0 and 2 only: 0.6 * 30 = 18.
    pred[2, 0] = (0.0, 2.7)  # 2.7 / 18 = 0.15
    pred[2, 1] = (-1.0, -1.0)
    pred[2, 2] = (34.5, 0.0)  # 4.5 / 18 = 0.25 (0.15 had the box included the lost joint)
    d = normalized_distances(pred, gt)
    assert np.isnan(d[0]).all() and np.isnan(d[2, 1])
    np.testing.assert_allclose(d[1], [0.08, 0.15, 0.0])
    np.testing.assert_allclose(d[2, [0, 2]], [0.15, 0.25])
    res = pck([d])
    # @0.1: joint 0 1/2, joint 1 0/1, joint 2 1/2 -> mean of (50, 0, 50).
    assert res["PCK_0.1"] == pytest.approx(100 / 3)
    # @0.2: joint 0 2/2, joint 1 1/1, joint 2 1/2 -> mean of (100, 100, 50).
    assert res["PCK_0.2"] == pytest.approx(250 / 3)
    assert res["per_joint"]["PCK_0.2"] == pytest.approx([100, 100, 50])
    with pytest.raises(ValueError, match="no joint was scored"):
        pck([d[:1]])


def decode_fn(n_ids):
    """Features = one-hot of a per-pixel id spelled by the frame's R, G channels."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def fn(x):
        rgb = ((x * std + mean) * 255).round().long()
        return F.one_hot(rgb[:, 0] + 256 * rgb[:, 1], n_ids).permute(0, 3, 1, 2).float()

    return fn


def test_joints_follow_moving_content():
    # Frame t is a unique-id texture rolled t px right; features identify each pixel, so the
    # joints must move right by t px (one-hot labels and argmax read-back: exact).
    size = 16
    base = np.arange(size * size).reshape(size, size)
    frames = []
    for t in range(4):
        ids = np.roll(base, t, axis=1)
        frames.append(np.stack([ids % 256, ids // 256, 0 * ids], -1).astype(np.uint8))
    joints = np.array([[5.0, 4.0], [9.0, 11.0]])
    cfg = LabelPropConfig(short_side=None, context_frames=1, topk=1, radius=6)
    pred = propagate_pose(
        decode_fn(size * size), frames, joints, cfg, image_size=size, sigma=0, topk=1
    )
    for t in range(4):
        np.testing.assert_allclose(pred[t], joints + [t, 0])


def test_reader_on_jhmdb_layout(tmp_path):
    truth = make_jhmdb(tmp_path, n=5)
    videos = read_split(tmp_path, split=1, subset="test")
    assert videos == ["run/rollerblade", "walk/dog-agility"]
    assert read_split(tmp_path, subset="train") == ["run/run_train", "walk/walk_train"]
    frames, joints = load_video(tmp_path, "walk/dog-agility")
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    np.testing.assert_allclose(joints, truth["walk/dog-agility"])  # 1-based in the .mat
    with pytest.raises(DataError, match="split2"):
        read_split(tmp_path, split=2)
    (tmp_path / "splits" / "walk_test_split1.txt").write_text("dog-agility.avi\n")
    with pytest.raises(ValueError, match="walk_test_split1.txt: line 1"):
        read_split(tmp_path)
