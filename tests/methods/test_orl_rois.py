"""ORL stage-3 inputs: the stored RoI pair index and the RoI patches."""

import numpy as np
import pyarrow as pa
import torch

from correlearn.data.augment import BYOL_VIEW1
from correlearn.methods.orl_rois import RoIPairIndex, roi_patch
from correlearn.mining.correspondence import PAIRS_SCHEMA


def _pairs(knn_k=None):
    # a -> c (rank 0, two pairs) and a -> b (rank 1, one pair); b -> a; c and d have none.
    rows = [
        ("a", "c", 0, [1, 2, 30, 40], [5, 6, 50, 55], 0.9),
        ("a", "c", 0, [3, 4, 33, 44], [7, 8, 60, 58], 0.8),
        ("b", "a", 0, [0, 0, 40, 40], [2, 2, 22, 22], 0.5),
        ("a", "b", 1, [10, 10, 70, 50], [0, 0, 20, 20], 0.7),
    ]
    cols = dict(zip(PAIRS_SCHEMA.names, zip(*rows, strict=True), strict=True))
    table = pa.table({k: list(v) for k, v in cols.items()}, schema=PAIRS_SCHEMA)
    return RoIPairIndex(table, ["a", "b", "c", "d"], knn_k)


def test_pair_index_groups_and_knn_k():
    idx = _pairs()
    assert [idx.num_neighbours(i) for i in range(4)] == [2, 1, 0, 0]
    rng = np.random.default_rng(0)
    draws = [idx.sample(0, rng) for _ in range(300)]
    seen = {(j, tuple(q.tolist())) for j, q, _ in draws}
    assert seen == {(2, (1, 2, 30, 40)), (2, (3, 4, 33, 44)), (1, (10, 10, 70, 50))}
    # uniform over neighbours first (reference COCOORLJson.get_sample), then over their pairs
    assert 0.4 < np.mean([j == 1 for j, _, _ in draws]) < 0.6
    assert idx.sample(3, rng) is None
    assert _pairs(knn_k=1).num_neighbours(0) == 1


def test_roi_patch_crops_the_box():
    img = torch.zeros(3, 40, 60, dtype=torch.uint8)
    img[:, 10:20, 30:50] = 200
    aug = BYOL_VIEW1.model_copy(update={"flip_p": 0, "jitter_p": 0, "gray_p": 0, "blur_p": 0})
    patch = roi_patch(img, np.array([30, 10, 50, 20]), 8, aug, np.random.default_rng(0))
    assert patch.shape == (3, 8, 8) and int(patch.min()) == 200
    tiny = roi_patch(img, np.array([59.7, 39.6, 70, 50]), 8, aug, np.random.default_rng(0))
    assert tiny.shape == (3, 8, 8)  # clipped to a 1 px box inside the image
