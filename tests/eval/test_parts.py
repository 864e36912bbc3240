"""VIP part propagation: mIoU on constructed masks, frame selection, the VIP reader."""

import shutil

import numpy as np
import pytest

from correlearn.data.sources import DataError
from correlearn.eval.parts import fast_hist, load_video, miou, read_video_list, score_video
from tests.eval.fixtures import HAIR, LEFT_LEG, RIGHT_LEG, UPPER, make_vip


def test_miou_by_hand():
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 1, 2]])
    hist = fast_hist(gt, pred, 4)
    # Class 0: TP 3, GT 4, pred 3 -> 3/4. Class 1: TP 3, GT 4, pred 4 -> 3/5. Class 2: only
    # predicted -> 0. Class 3: absent from both -> no IoU, left out of the mean.
    res = miou(hist)
    assert res["mIoU"] == pytest.approx(100 * (0.75 + 0.6 + 0.0) / 3)
    assert res["per_class"] == {"0": 75.0, "1": 60.0, "2": 0.0, "3": None}
    assert res["pixel_accuracy"] == pytest.approx(100 * 6 / 8)


def test_ignored_gt_and_dataset_level_accumulation():
    # GT 255 (outside the classes) is not scored, whatever is predicted there.
    assert fast_hist(np.array([255, 1]), np.array([0, 1]), 2).tolist() == [[0, 0], [0, 1]]
    # mIoU pools the counts of all frames; it is not the mean of per-frame IoUs.
    gts = [np.array([1, 1, 1, 1]), np.array([1, 0, 0, 0])]
    preds = [np.array([1, 1, 1, 1]), np.array([0, 0, 0, 0])]
    hist = score_video(preds, gts, n_classes=2)
    # Pooled: class 1 TP 4 / (GT 5 + pred 4 - 4) = 0.8; class 0 TP 3 / (3 + 4 - 3) = 0.75.
    assert miou(hist)["mIoU"] == pytest.approx(100 * (0.8 + 0.75) / 2)


def test_score_video_frame_selection():
    gt = np.array([[1, 1], [0, 0]])
    wrong = np.zeros((2, 2), dtype=np.int64)
    # Frame 1 has no annotation and is skipped; frame 0 counts only with score_first.
    hist = score_video([gt, wrong, gt], [gt, None, gt], n_classes=2)
    assert hist.tolist() == [[4, 0], [0, 4]]
    hist = score_video([gt, wrong, gt], [gt, None, gt], n_classes=2, score_first=False)
    assert hist.tolist() == [[2, 0], [0, 2]]
    with pytest.raises(ValueError, match="differ in size"):
        score_video([np.zeros((3, 3), dtype=int)], [gt], n_classes=2)


def test_reader_on_vip_layout(tmp_path):
    truth = make_vip(tmp_path, n=4)
    assert read_video_list(tmp_path) == ["bear", "motorbike"]  # "videos/<name>" lines
    frames, masks, names = load_video(tmp_path, "bear")
    assert len(frames) == 4 and names[0] == "000000000001.png"
    assert [m is None for m in masks] == [False, False, True, False]
    np.testing.assert_array_equal(masks[1], truth["bear"][1])
    assert set(np.unique(masks[0])) == {0, HAIR, UPPER, RIGHT_LEG, LEFT_LEG}
    # VIP_Fine keeps the maps under Annotations/Category_ids.
    (tmp_path / "Annotations").mkdir()
    shutil.move(tmp_path / "Category_ids", tmp_path / "Annotations" / "Category_ids")
    assert load_video(tmp_path, "bear")[1][0] is not None
    (tmp_path / "Annotations" / "Category_ids" / "bear" / "000000000001.png").unlink()
    with pytest.raises(DataError, match="first frame has no annotation"):
        load_video(tmp_path, "bear")
    with pytest.raises(DataError, match="test_videos.txt"):
        read_video_list(tmp_path, "test")


def test_frame_size_is_a_square_or_cropmaes_long_side_with_a_short_side_of_64s():
    from correlearn.eval.parts import frame_size

    assert frame_size((720, 1280), 560) == (560, 560)  # UVC: a square
    # CropMAE src/data/vos.py: long side 880, short side 720 * 880 / 1280 = 495 -> 448.
    assert frame_size((720, 1280), None, 880) == (880, 448)
    assert frame_size((1280, 720), None, 880) == (448, 880)
