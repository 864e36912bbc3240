import numpy as np
import pytest

from correlearn.data.box_ops import iou_matrix, xywh_to_xyxy, xyxy_to_xywh
from correlearn.mining.boxes import orl_filter


def test_iou_known_values():
    a = np.array([[0, 0, 10, 10]])
    assert iou_matrix(a, a)[0, 0] == 1.0
    assert iou_matrix(a, [[20, 20, 30, 30]])[0, 0] == 0.0
    assert iou_matrix(a, [[10, 0, 20, 10]])[0, 0] == 0.0  # touching edges
    # Half of b overlaps a: inter 50, union 100 + 100 - 50 = 150.
    assert iou_matrix(a, [[5, 0, 15, 10]])[0, 0] == pytest.approx(50 / 150)
    # b inside a: inter 25, union 100.
    assert iou_matrix(a, [[0, 0, 5, 5]])[0, 0] == pytest.approx(0.25)
    m = iou_matrix(np.zeros((3, 4)) + [0, 0, 4, 4], np.zeros((2, 4)) + [0, 0, 2, 4])
    assert m.shape == (3, 2) and np.allclose(m, 0.5)


def test_iou_degenerate_boxes_are_zero():
    assert iou_matrix([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0


def test_xywh_roundtrip():
    xywh = np.array([[3, 4, 10, 20], [0, 0, 1, 1]])
    assert np.array_equal(xywh_to_xyxy(xywh), [[3, 4, 13, 24], [0, 0, 1, 1]])
    assert np.array_equal(xyxy_to_xywh(xywh_to_xyxy(xywh)), xywh)


BIG = [0, 0, 100, 100]


def test_too_small_box_dropped():
    boxes = np.array([[0, 0, 95, 200], [0, 0, 200, 95], [300, 300, 396, 396]])
    kept, idx = orl_filter(boxes, return_index=True)
    assert idx.tolist() == [2]  # exactly 96 x 96 is kept


def test_aspect_ratio_rules():
    boxes = np.array(
        [
            [0, 0, 400, 100],  # 4:1 dropped
            [0, 0, 100, 400],  # 1:4 dropped
            [500, 0, 800, 100],  # 3:1 exactly kept
            [0, 500, 100, 800],  # 1:3 exactly kept
        ]
    )
    _, idx = orl_filter(boxes, return_index=True)
    assert idx.tolist() == [2, 3]


def test_iou_rule_boundary():
    # IoU(BIG, [0,0,100,200]) = 10000 / 20000 = 0.5 exactly -> kept.
    # IoU(BIG, [0,0,100,190]) = 10000 / 19000 = 0.526 -> dropped.
    boxes = np.array([BIG, [0, 0, 100, 190], [0, 0, 100, 200]])
    assert iou_matrix(boxes[:1], boxes[2:])[0, 0] == 0.5
    _, idx = orl_filter(boxes, return_index=True)
    assert idx.tolist() == [0, 2]


def test_iou_rule_compares_with_kept_boxes_only():
    # Box 1 is dropped for size, so box 2 (IoU 0.8 with box 1) is not compared with it.
    boxes = np.array([[0, 0, 100, 50], [500, 500, 600, 580], [500, 500, 600, 600]])
    _, idx = orl_filter(boxes, return_index=True)
    assert idx.tolist() == [2]


def test_order_preserved_and_cap():
    rng = np.random.default_rng(0)
    # 30 disjoint 100x100 boxes on a grid, shuffled: all survive, in the given order.
    grid = np.array(
        [[x, y, x + 100, y + 100] for x in range(0, 600, 120) for y in range(0, 720, 120)]
    )
    perm = rng.permutation(len(grid))
    kept, idx = orl_filter(grid[perm], return_index=True)
    assert idx.tolist() == list(range(30)) and np.array_equal(kept, grid[perm])
    _, idx = orl_filter(grid[perm], max_boxes=7, return_index=True)
    assert idx.tolist() == list(range(7))


def test_fallback_keeps_first_proposal():
    boxes = np.array([[5, 5, 10, 10], [0, 0, 20, 400]])
    kept, idx = orl_filter(boxes, return_index=True)
    assert idx.tolist() == [0] and np.array_equal(kept, boxes[:1])
    assert orl_filter(np.zeros((0, 4))).shape == (0, 4)


def test_xywh_input_is_returned_as_xywh():
    xywh = np.array([[0, 0, 100, 100], [10, 10, 100, 100], [300, 0, 96, 96]], dtype=np.int32)
    kept = orl_filter(xywh, fmt="xywh")
    # Box 1 overlaps box 0 with IoU 8100 / 11900 = 0.68 -> dropped.
    assert kept.dtype == np.int32 and kept.tolist() == [[0, 0, 100, 100], [300, 0, 96, 96]]
