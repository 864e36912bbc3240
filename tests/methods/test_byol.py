import numpy as np
import pytest
import torch

from correlearn.config import ConfigError, validate
from correlearn.methods.byol import BYOL, BYOLConfig, build_byol_batch
from correlearn.pretrain.configs import PretrainBYOLConfig
from correlearn.train.optim import build_optimizer


def _tiny_cfg(**kw):
    return BYOLConfig(
        backbone="resnet_test", proj_hidden_dim=64, proj_dim=32, pred_hidden_dim=64, **kw
    )


def test_config_defaults_are_orl_stage1():
    cfg = BYOLConfig()
    assert (cfg.backbone, cfg.proj_hidden_dim, cfg.proj_dim, cfg.pred_hidden_dim) == (
        "resnet50",
        4096,
        256,
        4096,
    )
    assert (cfg.base_tau, cfg.image_size, cfg.view2.solarize_p) == (0.99, 224, 0.2)
    with pytest.raises(ConfigError, match="unknown key"):
        validate(BYOLConfig, {"projector_dim": 128})


def test_byol_trains_and_target_gets_no_gradient():
    torch.manual_seed(0)
    model = BYOL(_tiny_cfg())
    assert model.base_tau == 0.99 and model.projector[0].in_features == 512
    batch = {"view1": torch.randn(8, 3, 32, 32), "view2": torch.randn(8, 3, 32, 32)}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    target_before = [p.clone() for p in model.target_parameters()]
    losses = []
    for step in range(20):
        out = model.training_step(batch)
        opt.zero_grad()
        out["loss"].backward()
        if step == 0:
            assert all(p.grad is None for p in model.target_parameters())
            assert all(p.grad is not None for p in model.predictor.parameters())
            torch.testing.assert_close(out["loss"], out["loss_12"] + out["loss_21"])
        opt.step()
        model.momentum_update(0.99)
        losses.append(out["loss"].item())
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses
    assert any(
        not torch.equal(a, b) for a, b in zip(target_before, model.target_parameters(), strict=True)
    )


def test_embed_pictures_and_batch_builder():
    torch.manual_seed(0)
    cfg = _tiny_cfg(image_size=32)
    rng_imgs = np.random.default_rng(0)
    samples = [rng_imgs.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8) for i in range(3)]
    batch = build_byol_batch(samples, np.random.default_rng(5), cfg)
    again = build_byol_batch(samples, np.random.default_rng(5), cfg)
    assert batch["view1"].shape == batch["view2"].shape == (3, 3, 32, 32)
    assert batch["view1"].dtype == torch.float32
    assert torch.equal(batch["view1"], again["view1"])
    assert torch.equal(batch["view2"], again["view2"])
    model = BYOL(cfg).eval()
    emb = model.embed(batch["view1"])
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    pic = model.pictures(batch)["views"]
    assert pic.dtype == np.uint8 and pic.shape == (2 * 32 + 3 * 2, 3 * 32 + 4 * 2, 3)


def test_stage_optimiser_decays_every_parameter_as_the_reference():
    # OpenSelfSup SGD without paramwise_options: biases and BN scales/shifts are decayed too.
    model = BYOL(_tiny_cfg())
    opt, _ = build_optimizer(model, PretrainBYOLConfig().optim, batch_size=8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.endswith("bn1.bias") for n in trainable)
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-4]
    assert set(opt.param_groups[0]["names"]) == trainable
    switched = PretrainBYOLConfig().optim.model_copy(update={"exclude_bias_norm": True})
    opt, _ = build_optimizer(model, switched, batch_size=8)
    no_decay = next(g["names"] for g in opt.param_groups if g["weight_decay"] == 0.0)
    assert any(n.endswith("bn1.bias") for n in no_decay)
