"""VOC07 SVMs: AP against scikit-learn, the VOC07 reader, low-shot sampling, the cost sweep."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from correlearn.eval import svm
from correlearn.eval.svm import (
    COSTS,
    average_precision,
    full_svm,
    low_shot_sample,
    low_shot_svm,
    normalize_features,
    read_voc07,
)
from tests.eval.fixtures import make_voc07


def test_ap_by_hand_and_against_sklearn():
    # Ranking + - + +: precision at the positives 1, 2/3, 3/4. scikit-learn averages them
    # (29/36); the reference first makes precision monotone from the right (1, 3/4, 3/4): 5/6.
    targets = np.array([1, 0, 1, 1])
    scores = np.array([4.0, 3.0, 2.0, 1.0])
    assert average_precision_score(targets, scores) == pytest.approx(29 / 36)
    assert average_precision(targets, scores) == pytest.approx(5 / 6)
    assert average_precision(np.array([1, 1, 0]), np.array([3.0, 2.0, 1.0])) == 1.0
    with pytest.raises(ValueError, match="positive"):
        average_precision(np.zeros(3), np.arange(3.0))


def test_ap_matches_sklearn_when_precision_never_rises():
    # Without ties the two differ only through the envelope: equal whenever precision at the
    # successive positives never increases, and never below scikit-learn's otherwise.
    rng = np.random.default_rng(0)
    equal = 0
    for _ in range(300):
        n = int(rng.integers(2, 12))
        targets = rng.integers(0, 2, n)
        if targets.sum() == 0:
            continue
        scores = rng.permutation(n).astype(float)
        ranked = targets[np.argsort(-scores)]
        prec = np.cumsum(ranked)[ranked == 1] / (np.flatnonzero(ranked) + 1)
        ours, theirs = average_precision(targets, scores), average_precision_score(targets, scores)
        if np.all(np.diff(prec) <= 0):
            assert ours == pytest.approx(theirs)
            equal += 1
        else:
            assert ours > theirs
    assert equal > 30  # the equal case was exercised


def test_reader_on_voc07_layout(tmp_path):
    truth = make_voc07(tmp_path, per_seq=2)
    paths, labels, names = read_voc07(tmp_path, "trainval")
    assert names == ["dog", "motorbike", "person"]
    np.testing.assert_array_equal(labels, truth["trainval"])
    assert labels[:, 2].tolist().count(-1) == 1  # the difficult person image
    assert all(p.is_file() for p in paths) and paths == sorted(paths)
    # root may be the VOC2007 folder itself
    assert read_voc07(tmp_path / "VOCdevkit" / "VOC2007", "test")[1].shape == truth["test"].shape
    bad = tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "dog_test.txt"
    bad.write_text("000001 2\n")
    with pytest.raises(ValueError, match="dog_test.txt: line 1"):
        read_voc07(tmp_path, "test")


def test_low_shot_sample_counts():
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, -1], [1, 0], [0, 1]])
    s = low_shot_sample(labels, 1, np.random.default_rng(0))
    for c in range(2):
        assert (s[:, c] == 1).sum() == 1 and (s[:, c] == 0).sum() == 1  # k and (C - 1) k
        assert np.all(labels[s[:, c] != -1, c] == s[s[:, c] != -1, c])  # drawn from its labels
    np.testing.assert_array_equal(s, low_shot_sample(labels, 1, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="need 4"):
        low_shot_sample(labels, 4, np.random.default_rng(0))


def blobs(n, rng):
    """Two classes on separate directions: class 0 along e0, class 1 along e1 (multi-label)."""
    y = rng.integers(0, 2, (n, 2)).astype(np.int32)
    x = y[:, :1] * np.eye(4)[0] + y[:, 1:] * np.eye(4)[1] + 0.05 * rng.normal(size=(n, 4))
    return normalize_features(x + np.eye(4)[3]), y


def test_full_and_low_shot_on_separable_features():
    rng = np.random.default_rng(1)
    (tx, ty), (vx, vy) = blobs(40, rng), blobs(30, rng)
    res = full_svm(tx, ty, vx, vy, costs=(1.0, 0.01))
    assert res["mAP"] == pytest.approx(100.0) and set(res["costs"]) <= {1.0, 0.01}
    low = low_shot_svm(tx, ty, vx, vy, k_values=(2,), samples=2, costs=(1.0,))
    assert set(low) == {"k2"} and low["k2"]["min"] <= low["k2"]["mean"] <= low["k2"]["max"]
    assert len(COSTS) == 19 and COSTS[:3] == (1.0, 10.0, 100.0) and COSTS[-1] == 0.5**19


def test_features_are_fp32_unless_bf16_is_asked(monkeypatch):
    """The reference extracts VOC07 features in full precision; bf16 autocast is a switch."""
    import torch

    entered = []

    def fake_autocast(device):
        entered.append(device.type)
        return torch.autocast("cpu", enabled=False)

    monkeypatch.setattr(svm, "autocast_for", fake_autocast)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def dense(self, x, layer):
            return x[:, :2] * self.w

    image = np.zeros((8, 8, 3), np.uint8)
    svm.pooled_features(Net(), image)
    assert entered == []
    svm.pooled_features(Net(), image, precision="bf16")
    assert entered == ["cpu"]
