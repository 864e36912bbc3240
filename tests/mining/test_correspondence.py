import numpy as np
import pyarrow as pa
import torch
from torch import nn

from correlearn.mining.correspondence import (
    PAIRS_SCHEMA,
    crop_boxes,
    embed_boxes,
    mine_collection_pairs,
    mine_pairs,
    select_box_pairs,
)


def test_select_pairs_known_top_entries():
    sim = np.zeros((20, 5), dtype=np.float32)
    sim[3, 1], sim[7, 4], sim[3, 2] = 0.9, 0.8, 0.7
    pairs = select_box_pairs(sim, ratio=0.1)  # int(0.1 * 20) = 2 pairs
    assert [(q, n) for q, n, _ in pairs] == [(3, 1), (7, 4)]
    assert np.allclose([s for *_, s in pairs], [0.9, 0.8])
    # Ranked over the whole matrix: one query RoI may appear twice.
    pairs = select_box_pairs(sim, ratio=0.15)  # int(3.0) = 3
    assert [(q, n) for q, n, _ in pairs] == [(3, 1), (7, 4), (3, 2)]


def test_select_pairs_count_rule():
    sim = np.random.default_rng(0).random((100, 37)).astype(np.float32)
    assert len(select_box_pairs(sim, 0.1)) == 10  # scales with the query count, not Nn
    assert len(select_box_pairs(sim[:9], 0.1)) == 1  # int(0.9) == 0 -> 1, as in the reference
    assert len(select_box_pairs(sim[:1, :1], 5.0)) == 1  # never more than Nq * Nn
    scores = [s for *_, s in select_box_pairs(sim, 0.3)]
    assert scores == sorted(scores, reverse=True)


def test_crop_boxes_shape_and_normalisation():
    img = np.zeros((60, 80, 3), dtype=np.uint8)
    img[10:30, 20:60] = (255, 0, 0)
    crops = crop_boxes(img, np.array([[20, 10, 60, 30], [0, 0, 80, 60], [79, 59, 200, 200]]), 32)
    assert crops.shape == (3, 3, 32, 32) and crops.dtype == torch.float32
    red = (1 - 0.485) / 0.229
    assert torch.allclose(crops[0, 0], torch.full((32, 32), red), atol=1e-4)
    assert crops[1, 0].max() > 0 and crops[1, 0].min() < 0  # whole image: red box and background


class _FakeBackbone(nn.Module):
    out_dim = 4

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)

    def forward(self, x):
        assert not self.training
        return self.proj(x.mean(dim=(2, 3)))


def test_embed_boxes_unit_norm_and_restores_mode():
    torch.manual_seed(0)
    net = _FakeBackbone().train()
    feats = embed_boxes(net, torch.randn(10, 3, 16, 16), batch_size=3)
    assert feats.shape == (10, 4) and feats.dtype == np.float32
    assert np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)
    assert net.training
    assert embed_boxes(net, torch.zeros(0, 3, 16, 16)).shape == (0, 4)


def _toy_collection():
    rng = np.random.default_rng(0)
    keys = ["a", "b", "c"]
    boxes = [
        np.array([[x, 0, x + 100, 120] for x in range(0, 100 * n, 100)], np.float32)
        for n in (20, 10, 30)
    ]
    emb = []
    for b in boxes:
        e = rng.standard_normal((len(b), 8)).astype(np.float32)
        emb.append(e / np.linalg.norm(e, axis=1, keepdims=True))
    knn = np.array([[1, 2], [2, 0], [0, -1]])
    return keys, knn, boxes, emb


def test_mine_pairs_table():
    keys, knn, boxes, emb = _toy_collection()
    t = mine_pairs(keys, knn, boxes, emb, ratio=0.1)
    assert t.schema == PAIRS_SCHEMA
    # a: 2 pairs x 2 nbrs; b: 1 pair x 2 nbrs; c: 3 pairs x 1 nbr (the -1 is skipped).
    assert t.num_rows == 4 + 2 + 3
    ab = t.filter(
        pa.compute.and_(pa.compute.equal(t["key"], "a"), pa.compute.equal(t["nbr_rank"], 0))
    )
    sim = emb[0] @ emb[1].T
    top = select_box_pairs(sim, 0.1)
    assert ab["nbr_key"].to_pylist() == ["b", "b"]
    assert np.allclose(ab["score"].to_numpy(), [s for *_, s in top])
    q_box = np.array(ab["q_box"].to_pylist())
    assert np.array_equal(q_box, boxes[0][[q for q, _, _ in top]])


def test_collection_pairs_embed_each_image_once_and_equal_mine_pairs(tmp_path):
    rng = np.random.default_rng(1)
    images = [{"image": rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)} for _ in range(3)]
    boxes = [np.array([[0, 0, 30, 20], [10, 5, 60, 40]], np.float32)] * 2 + [np.zeros((0, 4))]
    knn = np.array([[1, 2], [0, 2], [0, 1]])
    torch.manual_seed(0)
    net = _FakeBackbone()
    calls = []
    net.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    cache = tmp_path / "emb.tmp"
    table, n = mine_collection_pairs(images, ["a", "b", "c"], boxes, knn, net, cache, 0.5, 16, 8)
    assert n == 4 and sum(calls) == 4 and not cache.exists()  # 4 RoIs, each embedded once
    emb = [
        embed_boxes(net, crop_boxes(im["image"], b, 16))
        for im, b in zip(images, boxes, strict=True)
    ]
    assert table.equals(mine_pairs(["a", "b", "c"], knn, boxes, emb, 0.5))
