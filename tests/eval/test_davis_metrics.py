import numpy as np
import pytest
from PIL import Image

from correlearn.eval.davis_metrics import (
    boundary_tolerance,
    db_eval_boundary,
    db_eval_iou,
    db_statistics,
    evaluate_dataset,
    evaluate_sequence,
    read_mask,
    seg2bmap,
)


def square(shape, top, left, side):
    m = np.zeros(shape, dtype=np.int64)
    m[top : top + side, left : left + side] = 1
    return m


def test_iou_shifted_square():
    # 10x10 squares, one shifted right by 2 px: intersection 8*10 = 80,
    # union 100 + 100 - 80 = 120 -> J = 2/3.
    gt = square((40, 40), 10, 10, 10)
    pred = square((40, 40), 10, 12, 10)
    assert db_eval_iou(gt, pred) == pytest.approx(80 / 120)
    # Shift by 2 px both ways: intersection 8*8 = 64, union 200 - 64 = 136.
    assert db_eval_iou(gt, square((40, 40), 12, 12, 10)) == pytest.approx(64 / 136)


def test_empty_masks():
    empty = np.zeros((30, 30), dtype=np.int64)
    obj = square((30, 30), 5, 5, 6)
    # Both empty: J = 1 and F = 1 (toolkit: no boundary on either side -> P = R = 1).
    assert db_eval_iou(empty, empty) == 1.0
    assert db_eval_boundary(empty, empty) == 1.0
    # Nothing predicted for a present object: J = 0; P = 1, R = 0 -> F = 0.
    assert db_eval_iou(obj, empty) == 0.0
    assert db_eval_boundary(obj, empty) == 0.0
    # Something predicted for an absent object: P = 0, R = 1 -> F = 0.
    assert db_eval_boundary(empty, obj) == 0.0


def test_seg2bmap_small_square():
    # A 2x2 object at rows/cols 1..2: the boundary is a 3x3 ring shifted half a pixel towards
    # the origin (outer-left column, outer-top row, inner-right column, inner-bottom row).
    seg = np.zeros((5, 5), dtype=bool)
    seg[1:3, 1:3] = True
    expected = np.array(
        [
            [1, 1, 1, 0, 0],
            [1, 0, 1, 0, 0],
            [1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(seg2bmap(seg), expected)


def test_boundary_tolerance():
    assert boundary_tolerance((480, 854)) == 8  # ceil(0.008 * 979.6)
    assert boundary_tolerance((100, 100)) == 2  # ceil(0.008 * 141.4) = ceil(1.13)


def half_plane(cols, shape=(100, 100)):
    m = np.zeros(shape, dtype=np.int64)
    m[:, :cols] = 1
    return m


def test_f_tolerance_half_plane():
    # Object = columns 0..49 of a 100x100 image; its boundary (seg2bmap) is exactly column 49
    # (100 px; the image border is no boundary). Tolerance is 2 px.
    gt = half_plane(50)
    assert np.count_nonzero(seg2bmap(gt)) == 100
    assert db_eval_boundary(gt, half_plane(51)) == 1.0  # shift 1 <= 2
    assert db_eval_boundary(gt, half_plane(52)) == 1.0  # shift 2 <= 2
    assert db_eval_boundary(gt, half_plane(53)) == 0.0  # shift 3 > 2: nothing matches
    assert db_eval_iou(gt, half_plane(52)) == pytest.approx(50 / 52)


def test_f_partial_match_by_hand():
    # GT: columns 0..49 (boundary = column 49, 100 px). Prediction: columns 0..49 on rows 0..49
    # and columns 0..54 on rows 50..99 (a step of 5 px > tolerance 2).
    # Prediction boundary: column 49 on rows 0..48 (49 px), row 49 columns 49..54 (6 px: the
    # step), column 54 on rows 50..99 (50 px) = 105 px. Within 2 px of GT: 49 + columns 49..51
    # of row 49 (3) = 52 -> P = 52/105.
    # GT boundary pixels within 2 px of the prediction's: rows 0..49 (50) + rows 50, 51 (near
    # (49, 49)) = 52 -> R = 52/100. F = 2PR/(P+R) = 104/205.
    gt = half_plane(50)
    pred = gt.copy()
    pred[50:, :55] = 1
    assert np.count_nonzero(seg2bmap(pred)) == 105
    assert db_eval_boundary(gt, pred) == pytest.approx(104 / 205)


def test_thin_object():
    # A 1-px-wide vertical line: shifted by 1 px it shares no pixel (J = 0) but its boundary
    # (columns 49-50 for the GT, 50-51 for the shift) is within tolerance (F = 1); shifted by
    # 5 px the boundaries are 4 px apart > 2 -> F = 0.
    gt = np.zeros((100, 100), dtype=np.int64)
    gt[20:80, 50] = 1
    assert db_eval_iou(gt, gt) == 1.0
    assert db_eval_boundary(gt, gt) == 1.0
    one = np.roll(gt, 1, axis=1)
    assert db_eval_iou(gt, one) == 0.0
    assert db_eval_boundary(gt, one) == 1.0
    assert db_eval_boundary(gt, np.roll(gt, 5, axis=1)) == 0.0


def test_db_statistics_by_hand():
    v = np.array([1.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.9, 0.3])
    mean, recall, decay = db_statistics(v)
    assert mean == pytest.approx(v.mean())
    assert recall == pytest.approx(4 / 8)  # 1, .8, .6, .9 exceed 0.5
    # Bin edges round(linspace(1, 8, 5)) - 1 = [0, 2, 4, 5, 7]: first bin v[0:3] (mean 0.8),
    # last bin v[5:8] (mean 0.4) -> decay 0.4.
    assert decay == pytest.approx(0.4)


def test_evaluate_sequence_crafted():
    # 10 frames, one object; prediction perfect on frames 0..5 and empty on 6..9.
    # Scored frames 1..8: J = [1]*5 + [0]*3.
    gts = [square((60, 60), 10 + t, 10, 20) for t in range(10)]
    preds = [g if t < 6 else np.zeros_like(g) for t, g in enumerate(gts)]
    out = evaluate_sequence(preds, gts)
    np.testing.assert_array_equal(out["J"], [[1, 1, 1, 1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(out["F"], [[1, 1, 1, 1, 1, 0, 0, 0]])
    mean, recall, decay = db_statistics(out["J"][0])
    # Bin edges for 8 values [0, 2, 4, 5, 7]: first bin all 1, last bin v[5:8] all 0.
    assert (mean, recall, decay) == (pytest.approx(5 / 8), pytest.approx(5 / 8), 1.0)
    with pytest.raises(ValueError, match="predicted id"):
        evaluate_sequence([g * 2 for g in gts], gts)


def test_read_mask_formats(tmp_path):
    ids = np.zeros((8, 8), dtype=np.uint8)
    ids[1:3, 1:3] = 1
    ids[5:7, 5:7] = 2
    ids[0, 7] = 255  # void
    pal = Image.fromarray(ids)
    pal.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    pal.save(tmp_path / "p.png")
    expected = ids.astype(np.int64)
    expected[0, 7] = 0
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), expected)
    Image.fromarray((ids == 1).astype(np.uint8) * 255).save(tmp_path / "l.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "l.png"), (ids == 1).astype(np.int64))
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_mask(tmp_path / "nope.png")


def _write(folder, masks):
    folder.mkdir(parents=True)
    for i, m in enumerate(masks):
        Image.fromarray(m.astype(np.uint8) * 255).save(folder / f"{i:05d}.png")


def test_evaluate_dataset(tmp_path):
    gts = [square((50, 50), 10, 10 + t, 15) for t in range(6)]
    preds = [square((50, 50), 10, 10, 15)] * 6  # frozen at frame 0
    _write(tmp_path / "gt" / "seq", gts)
    _write(tmp_path / "pred" / "seq", preds)
    res = evaluate_dataset(tmp_path / "pred", tmp_path / "gt", ["seq"])
    # Scored frames 1..4, shift t px: J = 15(15-t) / (15(15+t)) = (15-t)/(15+t).
    j = [(15 - t) / (15 + t) for t in range(1, 5)]
    assert res["J_mean"] == pytest.approx(np.mean(j))
    assert res["J_recall"] == 1.0
    assert res["JF_mean"] == pytest.approx((res["J_mean"] + res["F_mean"]) / 2)
    assert res["per_sequence"]["seq"]["J_mean"] == pytest.approx(np.mean(j))
    for key in ("F_mean", "F_recall", "J_decay", "F_decay"):
        assert key in res
    # max_frames=4 scores frames 1, 2 only (frame 3 is then the unscored last frame).
    (tmp_path / "pred" / "seq" / "00003.png").unlink()
    short = evaluate_dataset(tmp_path / "pred", tmp_path / "gt", ["seq"], max_frames=4)
    assert short["J_mean"] == pytest.approx(np.mean(j[:2]))
    with pytest.raises(FileNotFoundError, match="00003.png"):
        evaluate_dataset(tmp_path / "pred", tmp_path / "gt", ["seq"])
