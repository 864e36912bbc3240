import math

import pytest
import torch
from torch import nn

from correlearn.eval.probes import extract_features, knn_classify, linear_probe, topk_accuracy


def test_knn_two_classes():
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    test = torch.tensor([[5.0, 0.5], [0.2, 3.0]])  # scale does not matter (cosine)
    res = knn_classify(train, labels, test, torch.tensor([0, 1]), k=2)
    assert res.predictions.tolist() == [0, 1]
    assert res.metrics == {"top1": 100.0}  # no top5 with 2 classes


def test_knn_temperature_weighting_by_hand():
    # Test point (1, 0). Neighbours: one class-1 sample at cos 1, two class-0 samples at
    # cos 0.8. Votes: class 1 = exp(1/T), class 0 = 2 exp(0.8/T).
    train = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.8, -0.6]])
    labels = torch.tensor([1, 0, 0])
    test = torch.tensor([[1.0, 0.0]])
    sharp = knn_classify(train, labels, test, k=3, temperature=0.07)
    assert sharp.predictions.item() == 1  # e^(0.2/0.07) = 17 > 2
    assert sharp.scores[0].tolist() == pytest.approx(
        [2 * math.exp(0.8 / 0.07), math.exp(1 / 0.07)], rel=1e-4
    )
    flat = knn_classify(train, labels, test, k=3, temperature=1.0)
    assert flat.predictions.item() == 0  # e^0.2 = 1.22 < 2: the majority wins
    # k=1 keeps only the nearest neighbour.
    assert knn_classify(train, labels, test, k=1, temperature=1.0).predictions.item() == 1


def test_topk_accuracy():
    scores = torch.eye(7)[[0, 1, 2, 3]]
    scores[3] = torch.tensor([0.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])  # true class 6 ranks 7th
    scores[2] = torch.tensor([0.9, 0.0, 0.8, 0.7, 0.6, 0.5, 0.0])  # true class 2 ranks 2nd
    m = topk_accuracy(scores, torch.tensor([0, 1, 2, 6]))
    assert m == {"top1": 50.0, "top5": 75.0}


def blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]]) + 10.0
    y = torch.arange(n) % 3
    return centres[y] + 0.5 * torch.randn(n, 3, generator=g), y


def test_linear_probe_separable_and_deterministic():
    x, y = blobs(300, 0)
    xt, yt = blobs(90, 1)
    res, model = linear_probe(x, y, xt, yt, epochs=10, lr=0.1, batch_size=100, seed=3)
    assert res.metrics["top1"] == 100.0
    assert "top5" not in res.metrics
    res2, model2 = linear_probe(x, y, xt, yt, epochs=10, lr=0.1, batch_size=100, seed=3)
    assert torch.equal(model.linear.weight, model2.linear.weight)
    assert torch.equal(res.scores, res2.scores)


class FakeBackbone(nn.Module):
    out_dim = 4

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)

    def forward(self, x):
        return self.proj(x.mean(dim=(2, 3)))


def test_extract_features():
    net = FakeBackbone().train()
    images = [torch.rand(3, 8, 8) for _ in range(5)]
    feats = extract_features(net, iter(images), batch_size=2)
    assert feats.shape == (5, 4)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(5))
    assert net.training  # mode restored
    raw = extract_features(net, images, batch_size=3, normalize=False)
    torch.testing.assert_close(raw[4], net(images[4][None])[0].detach())
