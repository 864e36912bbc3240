"""SiamFC tracker and head-training pieces on constructed inputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from correlearn.eval import siamfc_train
from correlearn.eval.object_tracking import SIAMFC, SiamFCTracker, SiamHead, crop_and_resize, xcorr
from correlearn.eval.otb import TrackSequence, center_error


def _frames(n=5, size=200, sq=20):
    frames, boxes = [], []
    for t in range(n):
        img = np.full((size, size, 3), 100, np.uint8)
        x, y = 60 + 6 * t, 80 + 3 * t
        img[y : y + sq, x : x + sq] = 255
        frames.append(img)
        boxes.append([x + 1, y + 1, sq, sq])  # 1-based
    return frames, np.array(boxes, dtype=float)


def _pool8(x):
    # A stand-in backbone: grey level at stride 8, centred so the background correlates to ~0.
    g = x.mean(1, keepdim=True)
    return F.avg_pool2d(g - g.mean(dim=(2, 3), keepdim=True), 8)


def test_xcorr_peaks_where_the_exemplar_sits():
    x = torch.zeros(2, 1, 9, 9)
    x[0, 0, 2, 6] = 1.0
    x[1, 0, 5, 1] = 1.0
    z = torch.ones(1, 1, 1, 1)
    out = xcorr(z, x)
    assert out.shape == (2, 1, 9, 9)
    assert out[0, 0].argmax().item() == 2 * 9 + 6 and out[1, 0].argmax().item() == 5 * 9 + 1


def test_crop_pads_with_the_border_colour_and_scales():
    img = np.zeros((20, 20, 3), np.uint8)
    img[:10, :10] = 200
    patch = crop_and_resize(img, np.array([0.0, 0.0]), 20, 10, np.array([7, 7, 7]))
    # Centre (0, 0), side 20: the top-left quarter is outside the image, the bottom-right
    # quarter is the bright block.
    assert patch[0, 0].tolist() == [7, 7, 7] and patch[7, 7].tolist() == [200, 200, 200]


def test_tracker_follows_a_moving_square():
    frames, boxes = _frames()
    params = {**SIAMFC, "exemplar_size": 64, "instance_size": 128, "response_size": 9}
    head = SiamHead(1, 1, False, 1.0)
    tracker = SiamFCTracker(_pool8, head, 8, params, "cpu")
    pred = tracker.track(list(range(len(frames))), boxes[0], frames.__getitem__)
    assert np.array_equal(pred[0], boxes[0])
    # 6.7 px of motion per frame; the tracker stays within a few pixels of the square.
    assert center_error(pred, boxes).max() < 5.0
    # A static "copy the first box" guess is off by 27 px at the last frame.
    assert center_error(np.repeat(boxes[:1], 5, 0), boxes)[-1] > 25


def test_labels_are_an_l1_ball_of_r_pos_over_stride():
    lab = siamfc_train.logistic_labels(5, 5, r_pos=16, r_neg=0, total_stride=8)
    assert lab.sum() == 13  # |dx| + |dy| <= 2 on a 5 x 5 grid
    assert lab[2, 2] == 1 and lab[0, 2] == 1 and lab[0, 1] == 0


def test_pair_filter_drops_small_large_and_hidden_boxes():
    boxes = np.array([[0, 0, 30, 30], [0, 0, 10, 30], [0, 0, 90, 30], [0, 0, 30, 30]], float)
    seq = TrackSequence("s", [], boxes, cover=np.array([8, 8, 8, 1]))
    # Too narrow (10 px), wider than half the 160 px frame, and cover 1 <= max(1, 8 x 0.3).
    assert siamfc_train.valid_frames(seq, (160, 120)).tolist() == [0]


def test_pairs_respect_the_gap_and_are_seeded():
    idx = np.arange(0, 1000, 10)
    a = [siamfc_train.sample_pair(np.random.default_rng([0, s]), idx, 100) for s in range(20)]
    b = [siamfc_train.sample_pair(np.random.default_rng([0, s]), idx, 100) for s in range(20)]
    assert a == b and all(0 < x - z < 100 for z, x in a)


def test_losses_prefer_the_right_map():
    target = torch.from_numpy(siamfc_train.logistic_labels(9, 9, 16, 0, 8))[None, None]
    good, bad = (target * 8 - 4), (4 - target * 8)
    for loss in (siamfc_train.focal_loss, siamfc_train.balanced_loss):
        assert loss(good, target) < loss(torch.zeros_like(good), target) < loss(bad, target)


def test_exponential_schedule_ends_at_the_ultimate_lr():
    lr = [siamfc_train.exp_lr(s, 10, 1e-3, 1e-5, 50) for s in (0, 9, 10, 500)]
    assert lr[0] == lr[1] == 1e-3 and lr[2] < 1e-3
    assert lr[3] == pytest.approx(1e-5)
