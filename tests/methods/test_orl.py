"""ORL stage 3: the loss, the branch switch, the batch builder's intra/inter sampling."""

import numpy as np
import pytest
import torch

from correlearn.config import ConfigError, validate
from correlearn.methods.orl import ORL, ORLConfig, build_orl_batch
from correlearn.pretrain.configs import PretrainORLConfig
from correlearn.train.optim import build_optimizer

from .test_orl_rois import _pairs


def _cfg(**kw):
    kw = {"image_size": 32, "roi_size": 16, **kw}
    return ORLConfig(
        backbone="resnet_test", proj_hidden_dim=64, proj_dim=32, pred_hidden_dim=64, **kw
    )


def _batch(b=8, s=32, r=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {k: torch.randn(b, 3, s, s, generator=g) for k in ("view1", "view2")}
    out.update(
        {k: torch.randn(b, 3, r, r, generator=g) for k in ("intra1", "intra2", "inter1", "inter2")}
    )
    return out


def test_defaults_are_the_paper_and_ref_code():
    c = ORLConfig()
    assert (c.backbone, c.proj_hidden_dim, c.proj_dim, c.pred_hidden_dim) == (
        "resnet50",
        4096,
        256,
        4096,
    )
    assert (c.base_tau, c.image_size, c.roi_size, c.branches) == (0.99, 224, 96, "both")
    assert (c.weight_image, c.weight_intra, c.weight_inter) == (1.0, 1.0, 1.0)
    assert (c.jitter_shift, c.jitter_area, c.jitter_aspect) == (0.5, (0.5, 2.0), (0.5, 2.0))
    assert (c.view1.blur_p, c.view2.blur_p, c.view2.solarize_p) == (1.0, 0.1, 0.2)
    with pytest.raises(ConfigError):
        validate(ORLConfig, {"branches": "none"})


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = ORL(_cfg())
    assert set(model.predictors) == {"image", "intra", "inter"}
    batch = _batch(s=16)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    losses = []
    for step in range(10):
        out = model.training_step(batch)
        opt.zero_grad()
        out["loss"].backward()
        if step == 0:
            total = out["loss_image"] + out["loss_intra"] + out["loss_inter"]
            torch.testing.assert_close(out["loss"].detach(), total)
            assert all(p.grad is None for p in model.target_backbone.parameters())
            assert all(p.grad is not None for p in model.predictors.parameters())
        opt.step()
        model.momentum_update(0.99)
        losses.append(out["loss"].item())
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses


def test_branch_switch_and_weights():
    torch.manual_seed(0)
    model = ORL(_cfg(branches="intra", weight_image=0.5))
    assert set(model.predictors) == {"image", "intra"}
    out = model.training_step(_batch())
    assert "loss_inter" not in out
    assert model.ema_pairs() == [
        (model.backbone, model.target_backbone),
        (model.projector, model.target_projector),
    ]
    torch.testing.assert_close(out["loss"].detach(), 0.5 * out["loss_image"] + out["loss_intra"])
    out = ORL(_cfg(branches="inter")).training_step(
        {k: v for k, v in _batch().items() if "intra" not in k}
    )
    assert set(out) == {"loss", "loss_image", "loss_inter"}
    pics = model.pictures(_batch())
    assert set(pics) == {"views", "intra", "inter"} and pics["views"].dtype == np.uint8


class _Images:
    """``images[i]["image"]``: distinct flat-ish uint8 images of different sizes."""

    def __init__(self, n=4):
        rng = np.random.default_rng(0)
        self.imgs = [rng.integers(0, 255, (60 + 10 * i, 80, 3), dtype=np.uint8) for i in range(n)]

    def __len__(self):
        return len(self.imgs)

    def __getitem__(self, i):
        return {"image": self.imgs[i]}


def test_batch_builder_intra_and_inter_pairs():
    images = _Images()
    pairs = _pairs()
    boxes = [np.array([[5, 5, 45, 35], [10, 0, 70, 50]], np.float32), np.zeros((0, 4))] + [
        np.array([[0, 0, 30, 30]], np.float32)
    ] * 2
    cfg = _cfg(jitter_mode="reject")
    stored = {
        0: {
            (2, (1, 2, 30, 40), (5, 6, 50, 55)),
            (2, (3, 4, 33, 44), (7, 8, 60, 58)),
            (1, (10, 10, 70, 50), (0, 0, 20, 20)),
        }
    }
    idx = [0, 0, 0, 1, 3, 0, 2, 0]
    batch = build_orl_batch(
        images, pairs, boxes, idx, np.random.default_rng(1), cfg, with_boxes=True
    )
    assert batch["view1"].shape == (8, 3, 32, 32) and batch["inter2"].shape == (8, 3, 16, 16)
    for row, i in enumerate(idx):
        b1, b2 = batch["intra_boxes"][row].double().numpy()
        h, w = images[i]["image"].shape[:2]
        cand = boxes[i] if len(boxes[i]) else np.array([[0, 0, w, h]])
        assert any(np.allclose(b1, c) for c in cand)  # intra 1 is a stored box (or the frame)
        assert 0 <= b2[0] < b2[2] <= w and 0 <= b2[1] < b2[3] <= h
        wh1, wh2 = b1[2:] - b1[:2], b2[2:] - b2[:2]
        assert np.all(np.abs((b2[:2] + b2[2:]) / 2 - (b1[:2] + b1[2:]) / 2) <= 0.5 * wh1 + 1)
        assert 0.5 * 0.9 <= wh2.prod() / wh1.prod() <= 2 * 1.1  # integer rounding
        assert 0.5 * 0.9 <= wh2[0] / wh2[1] <= 2 * 1.1
        j = int(batch["inter_nbr"][row])
        q, n = (tuple(int(v) for v in b) for b in batch["inter_boxes"][row])
        if i == 0:
            assert (j, q, n) in stored[0]
        elif i == 1:
            assert (j, q, n) == (0, (0, 0, 40, 40), (2, 2, 22, 22))
        else:  # no stored pair: the whole frame, twice
            assert j == -1 and q == n == (0, 0, 80, h)
    again = build_orl_batch(
        images, pairs, boxes, idx, np.random.default_rng(1), cfg, with_boxes=True
    )
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    intra_only = build_orl_batch(
        images, pairs, boxes, idx, np.random.default_rng(1), _cfg(branches="intra")
    )
    assert set(intra_only) == {"view1", "view2", "intra1", "intra2"}


def test_stage_optimiser_decays_every_parameter_as_the_reference():
    # OpenSelfSup SGD without paramwise_options: biases and BN scales/shifts are decayed too.
    model = ORL(_cfg())
    opt, _ = build_optimizer(model, PretrainORLConfig().optim, batch_size=8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.endswith("bn1.bias") for n in trainable)
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-4]
    assert set(opt.param_groups[0]["names"]) == trainable
    switched = PretrainORLConfig().optim.model_copy(update={"exclude_bias_norm": True})
    opt, _ = build_optimizer(model, switched, batch_size=8)
    no_decay = next(g["names"] for g in opt.param_groups if g["weight_decay"] == 0.0)
    assert any(n.endswith("bn1.bias") for n in no_decay)
