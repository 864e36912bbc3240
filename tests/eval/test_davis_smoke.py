"""End to end on real frames: propagate 6 frames of DAVIS-2016 ``bear``, write PNGs, score J&F."""

import shutil
from pathlib import Path

import torch
from torch import nn

from correlearn.eval.davis_metrics import evaluate_dataset
from correlearn.eval.features import dense_feature_fn
from correlearn.eval.label_propagation import (
    LabelPropConfig,
    load_davis_sequence,
    propagate_sequence,
    write_davis_masks,
)

# The embedded copy of DAVIS-2016 bear (byte-identical to the shared split's), so nothing skips.
DAVIS = Path(__file__).resolve().parents[2] / "data" / "davis-mini"


class TinyConv(nn.Module):
    """Fixed random 2-layer conv net at stride 4, with the backbone ``dense`` interface."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
        )

    def dense(self, x, layer=None):
        return self.net(x)

    def dense_stride(self, layer=None):
        return 4


def test_bear_end_to_end(tmp_path):
    frames, masks, names = load_davis_sequence(DAVIS, "bear", max_frames=6)
    assert frames[0].shape == (480, 854, 3) and masks[0].max() == 1
    cfg = LabelPropConfig(short_side=120, size_multiple=4, context_frames=3, topk=5, radius=6)
    preds = propagate_sequence(dense_feature_fn(TinyConv()), frames, masks[0], cfg)
    assert all(p.shape == (480, 854) for p in preds)
    write_davis_masks(tmp_path / "pred", "bear", preds, names)
    gt_dir = tmp_path / "gt" / "bear"
    gt_dir.mkdir(parents=True)
    for n in names:
        shutil.copy(DAVIS / "Annotations" / "480p" / "bear" / n, gt_dir / n)
    res = evaluate_dataset(tmp_path / "pred", tmp_path / "gt", ["bear"])
    assert set(res) >= {"JF_mean", "J_mean", "F_mean", "J_recall", "F_recall", "per_sequence"}
    # A slow-moving bear over 4 scored frames: even crude features keep most of the mask.
    assert res["J_mean"] > 0.6, res
    assert 0.0 < res["F_mean"] <= 1.0
