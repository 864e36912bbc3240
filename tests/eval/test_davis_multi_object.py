"""Multi-object DAVIS 2017 J&F, every path of the toolkit worked by hand on constructed masks.

Scored frames are 1..T-2. Objects are boxes on a 40x40 grid; an exact match scores J = F = 1,
"both empty" scores J = F = 1, and an object on one side only scores J = F = 0 (the toolkit's
conventions), so every expected value below is a count of such frames.
"""

import numpy as np
import pytest

from correlearn.eval.davis_metrics import evaluate_dataset, evaluate_sequence
from correlearn.eval.label_propagation import write_davis_masks

SHAPE = (40, 40)


def boxes(*placed):
    """An id map with ``(id, top, left, side)`` squares."""
    m = np.zeros(SHAPE, dtype=np.int64)
    for oid, top, left, side in placed:
        m[top : top + side, left : left + side] = oid
    return m


def write(tmp_path, which, seq, masks):
    write_davis_masks(tmp_path / which, seq, masks)


def test_two_objects_and_two_sequences_average_over_objects(tmp_path):
    # seq "a": 2 objects, 6 frames. Object 1 predicted exactly; object 2 (10x10 at column 20)
    # predicted 2 px to the right on every frame: J = 80 / 120 = 2/3 per scored frame.
    gt_a = [boxes((1, 2, 2, 8), (2, 20, 20, 10)) for _ in range(6)]
    pr_a = [boxes((1, 2, 2, 8), (2, 20, 22, 10)) for _ in range(6)]
    # seq "b": 1 object, predicted empty on scored frames 1, 2 and exactly on 3, 4: J = 1/2.
    gt_b = [boxes((1, 5, 5, 10)) for _ in range(6)]
    pr_b = [gt_b[0] if t not in (1, 2) else boxes() for t in range(6)]
    for seq, gt, pr in (("a", gt_a, pr_a), ("b", gt_b, pr_b)):
        write(tmp_path, "gt", seq, gt)
        write(tmp_path, "pred", seq, pr)
    res = evaluate_dataset(tmp_path / "pred", tmp_path / "gt", ["a", "b"])
    assert set(res["per_object"]) == {"a_1", "a_2", "b_1"}
    assert res["per_object"]["a_1"]["J_mean"] == 1.0
    assert res["per_object"]["a_2"]["J_mean"] == pytest.approx(2 / 3)
    assert res["per_object"]["b_1"]["J_mean"] == pytest.approx(1 / 2)
    assert res["per_sequence"]["a"]["J_mean"] == pytest.approx((1 + 2 / 3) / 2)
    # The global mean is over the 3 objects, not over the 2 sequences (toolkit).
    assert res["J_mean"] == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    # Tolerance is ceil(0.008 * 56.6) = 1 px: the 2-px shift breaks the left and right edges
    # but the top and bottom edges still match, so 0 < F < 1.
    assert 0.0 < res["per_object"]["a_2"]["F_mean"] < 1.0
    assert res["JF_mean"] == pytest.approx((res["J_mean"] + res["F_mean"]) / 2)
    assert res["unscored_sequences"] == []


def test_object_that_vanishes_and_reappears():
    # Object 2 is in GT on frames 0, 1, 4, 5, 6, 7 and gone on 2, 3.
    gts = [boxes((1, 2, 2, 8), *([(2, 20, 20, 10)] if t not in (2, 3) else [])) for t in range(8)]
    preds = [g.copy() for g in gts]
    preds[3] = boxes((1, 2, 2, 8), (2, 20, 20, 10))  # a ghost of object 2 while it is gone
    preds[5] = boxes((1, 2, 2, 8))  # object 2 lost on a frame where it is back
    out = evaluate_sequence(preds, gts)
    # Scored frames 1..6; object 2: f1 match, f2 both empty (1), f3 ghost (0), f4 match,
    # f5 missed (0), f6 match.
    np.testing.assert_array_equal(out["J"][1], [1, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(out["F"][1], [1, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(out["J"][0], [1] * 6)


def test_object_absent_from_the_first_frame(tmp_path):
    # Frame 0 holds only id 2, so the sequence has objects 1..2 (toolkit: max of the first
    # frame). Object 1 appears from frame 3 on; id 3 appears on frame 4 and is never scored.
    gts = []
    for t in range(7):
        placed = [(2, 20, 20, 10)] + ([(1, 2, 2, 8)] if t >= 3 else [])
        placed += [(3, 30, 2, 5)] if t == 4 else []
        gts.append(boxes(*placed))
    preds = [boxes((2, 20, 20, 10)) for _ in range(7)]  # propagation cannot invent object 1
    write(tmp_path, "gt", "s", gts)
    write(tmp_path, "pred", "s", preds)
    res = evaluate_dataset(tmp_path / "pred", tmp_path / "gt", ["s"])
    assert set(res["per_object"]) == {"s_1", "s_2"}
    # Object 1 over scored frames 1..5: both empty on 1, 2 (J = 1), missed on 3, 4, 5 (J = 0).
    assert res["per_object"]["s_1"]["J_mean"] == pytest.approx(2 / 5)
    assert res["per_object"]["s_1"]["F_mean"] == pytest.approx(2 / 5)
    assert res["per_object"]["s_2"]["JF_mean"] == 1.0
    # Predicting id 3 (above the 2 objects of the first frame) is an error, as in the toolkit.
    write(tmp_path, "bad", "s", [boxes((3, 2, 2, 4))] * 7)
    with pytest.raises(ValueError, match="id 3 > 2 objects"):
        evaluate_dataset(tmp_path / "bad", tmp_path / "gt", ["s"])


def test_fewer_predicted_objects_are_zero_padded():
    gts = [boxes((1, 2, 2, 8), (2, 20, 20, 10)) for _ in range(5)]
    preds = [boxes((1, 2, 2, 8)) for _ in range(5)]
    out = evaluate_sequence(preds, gts)
    np.testing.assert_array_equal(out["J"], [[1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(out["object_ids"], [1, 2])


def test_sequence_without_objects_in_first_frame_is_unscored(tmp_path):
    write(tmp_path, "gt", "empty", [boxes()] + [boxes((1, 2, 2, 8))] * 4)
    write(tmp_path, "pred", "empty", [boxes()] * 5)
    write(tmp_path, "gt", "one", [boxes((1, 2, 2, 8))] * 5)
    write(tmp_path, "pred", "one", [boxes((1, 2, 2, 8))] * 5)
    res = evaluate_dataset(tmp_path / "pred", tmp_path / "gt", ["empty", "one"])
    assert res["unscored_sequences"] == ["empty"]
    assert set(res["per_sequence"]) == {"one"} and res["JF_mean"] == 1.0
    with pytest.raises(ValueError, match="no sequence has an object"):
        evaluate_dataset(tmp_path / "pred", tmp_path / "gt", ["empty"])
