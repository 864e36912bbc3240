from pathlib import Path

import cv2
import numpy as np
import pytest

from correlearn.mining.boxes import orl_filter
from correlearn.mining.proposals import (
    gt_boxes_from_mask,
    propose_many,
    recall_at_iou,
    selective_search,
)

# The embedded copy of DAVIS-2016 bear (byte-identical to the shared split's), so nothing skips.
DAVIS = Path(__file__).resolve().parents[2] / "data" / "davis-mini"
FRAME = DAVIS / "JPEGImages" / "480p" / "bear" / "00000.jpg"


@pytest.fixture(scope="module")
def frame():
    return cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)


def test_selective_search_real_frame_boxes_in_original_bounds(frame):
    h, w = frame.shape[:2]
    boxes = selective_search(frame, long_side=256)
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) > 50
    assert boxes.dtype == np.float32
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    # Mapped back to 854x480 pixels: some boxes must be larger than the 256-px working image.
    assert boxes[:, 2].max() > 256
    # Seeded: a second run gives the same proposals in the same order.
    assert np.array_equal(boxes, selective_search(frame, long_side=256))
    assert len(orl_filter(boxes)) >= 1


def test_propose_many_order_and_worker_independence(frame):
    small = cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA)
    imgs = [small, small[:, ::-1].copy(), small[::-1].copy()]
    inline = list(propose_many(imgs, long_side=None, processes=1, progress=False))
    pooled = list(propose_many(imgs, long_side=None, processes=2, progress=False))
    assert len(pooled) == 3
    assert all(np.array_equal(a, b) for a, b in zip(inline, pooled, strict=True))
    assert all(
        np.array_equal(a, selective_search(im, None)) for a, im in zip(inline, imgs, strict=True)
    )


def test_propose_many_reads_paths(frame, tmp_path):
    p = tmp_path / "x.png"
    small = cv2.resize(frame, (120, 68), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(p), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    (out,) = propose_many([p], long_side=None, processes=1, progress=False)
    assert np.array_equal(out, selective_search(small, None))


def test_gt_box_from_mask():
    m = np.zeros((10, 12), dtype=np.uint8)
    m[2:5, 3:9] = 255
    assert gt_boxes_from_mask(m).tolist() == [3, 2, 9, 5]
    assert gt_boxes_from_mask(np.zeros((4, 4))) is None


def test_recall_at_iou_hand_made():
    gt = np.array([[0, 0, 10, 10], [50, 50, 60, 60]])
    props = np.array([[0, 0, 10, 20], [100, 100, 110, 110]])  # IoU 0.5 with gt 0, 0 with gt 1
    assert recall_at_iou(props, gt, 0.5) == 0.5
    assert recall_at_iou(props, gt, 0.51) == 0.0
    assert recall_at_iou(np.vstack([props, [[51, 50, 60, 60]]]), gt) == 1.0
    assert recall_at_iou(np.zeros((0, 4)), gt) == 0.0
