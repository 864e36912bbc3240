import numpy as np
import pytest
import torch

from correlearn.config import ConfigError, validate
from correlearn.data.cim_pairs import CIMPairConfig, build_cim_batch
from correlearn.methods.cim import CIM, CIMConfig
from correlearn.methods.cim_decoder import CrossAttentionBlock

PAIR = CIMPairConfig(context_size=64, exemplar_size=32, num_exemplars=3)


def _cfg(backbone="vit_test_patch16", **kw):
    return CIMConfig(backbone=backbone, decoder_dim=32, decoder_heads=4, pair=PAIR, **kw)


def _batch(b=2, seed=0):
    rng = np.random.default_rng(99)
    imgs = [rng.integers(0, 256, (72, 80, 3), dtype=np.uint8) for _ in range(b)]
    return build_cim_batch(imgs, np.random.default_rng(seed), PAIR)


def test_config_defaults_are_the_papers():
    cfg = CIMConfig()
    assert (cfg.backbone, cfg.base_tau, cfg.bootstrap) == (
        "vit_base_patch16",
        0.99,
        "online_exemplar_target_context",
    )
    assert (cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads, cfg.mlp_ratio) == (
        512,
        1,
        16,
        4.0,
    )
    assert (cfg.correlation, cfg.loss, cfg.exemplar_reduction) == ("cross_attention", "ce", "sum")
    with pytest.raises(ConfigError, match="unknown key"):
        validate(CIMConfig, {"decoder_width": 256})


@pytest.mark.parametrize(
    "backbone,grids", [("vit_test_patch16", ((4, 4), (2, 2))), ("resnet_test", ((2, 2), (1, 1)))]
)
def test_shapes_for_vit_and_resnet(backbone, grids):
    torch.manual_seed(0)
    model = CIM(_cfg(backbone))
    batch = _batch()
    hc, hz = model.encode(batch["context"], batch["exemplars"])
    dim = model.backbone.out_dim
    assert hc.shape == (2, dim, *grids[0]) and hz.shape == (6, dim, *grids[1])
    probs = model.predict_maps(batch)
    assert probs.shape == (2, 3, 64, 64) and 0 <= probs.min() and probs.max() <= 1
    pic = model.pictures(batch)["cim_maps"]
    assert pic.dtype == np.uint8 and pic.shape == (4 * 66 + 2, 4 * 66 + 2, 3)


def test_attention_runs_from_context_to_exemplar():
    torch.manual_seed(0)
    block = CrossAttentionBlock(32, 4, 4.0)
    hc = torch.randn(2, 16, 32)
    for nz in (1, 4, 9):
        assert block(hc, torch.randn(2, nz, 32), (4, 4), (1, nz)).shape == hc.shape
    # A single exemplar token is every query's only key: all queries read the same value.
    a = block.correlate(hc, torch.randn(2, 1, 32), (4, 4), (1, 1))
    torch.testing.assert_close(a, a[:, :1].expand_as(a))
    model = CIM(_cfg()).eval()
    batch = _batch()
    logits = model.forward_logits(batch)
    # Maps follow the context whatever the exemplar size; each exemplar owns its map.
    bigger = dict(
        batch,
        exemplars=torch.nn.functional.interpolate(batch["exemplars"].flatten(0, 1), size=48).view(
            2, 3, 3, 48, 48
        ),
    )
    assert model.forward_logits(bigger).shape == logits.shape == (2, 3, 64, 64)
    perm = torch.tensor([2, 0, 1])
    swapped = model.forward_logits(dict(batch, exemplars=batch["exemplars"][:, perm]))
    torch.testing.assert_close(swapped, logits[:, perm], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits[:, 0], logits[:, 1])


@pytest.mark.parametrize("correlation", ["cross_attention", "conv"])
def test_bootstraps_route_gradients(correlation):
    # Table 2: which input reaches the loss through a differentiable (online) encoder.
    for bootstrap, grad_to in [
        ("online_exemplar_target_context", {"exemplars"}),
        ("reverse", {"context"}),
        ("shared", {"context", "exemplars"}),
    ]:
        torch.manual_seed(0)
        model = CIM(_cfg(bootstrap=bootstrap, correlation=correlation))
        assert (model.target_backbone is None) == (bootstrap == "shared")
        batch = {k: v.clone().requires_grad_(k != "maps") for k, v in _batch().items()}
        model.training_step(batch)["loss"].backward()
        assert {k for k in ("context", "exemplars") if batch[k].grad is not None} == grad_to
        assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
        assert all(p.grad is not None for p in model.decoder.parameters())
        if model.target_backbone is not None:
            assert all(p.grad is None for p in model.target_backbone.parameters())


def test_momentum_update_moves_target_only():
    torch.manual_seed(0)
    model = CIM(_cfg())
    with torch.no_grad():
        for p in model.target_backbone.parameters():
            p.add_(torch.randn_like(p))
    theta = [p.clone() for p in model.backbone.parameters()]
    xi = [p.clone() for p in model.target_backbone.parameters()]
    model.momentum_update(0.9)
    for t, t0 in zip(model.backbone.parameters(), theta, strict=True):
        assert torch.equal(t, t0)
    for x, x0, t0 in zip(model.target_backbone.parameters(), xi, theta, strict=True):
        torch.testing.assert_close(x, x0 + 0.1 * (t0 - x0))
    assert model.ema_pairs() == [(model.backbone, model.target_backbone)]
    shared = CIM(_cfg(bootstrap="shared"))
    assert shared.ema_pairs() == []
    before = [p.clone() for p in shared.parameters()]
    shared.momentum_update(0.5)
    assert all(torch.equal(a, b) for a, b in zip(before, shared.parameters(), strict=True))


@pytest.mark.parametrize("backbone", ["vit_test_patch16", "resnet_test"])
def test_loss_falls_on_a_fixed_batch(backbone):
    torch.manual_seed(0)
    model = CIM(_cfg(backbone))
    batch = _batch()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    losses = []
    for _ in range(30):
        out = model.training_step(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        model.momentum_update(0.99)
        losses.append(out["loss"].item())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses


def test_exemplar_reduction_and_loss_switch():
    torch.manual_seed(0)
    batch = _batch()
    for loss in ("ce", "balanced_ce", "mse", "focal"):
        model = CIM(_cfg(loss=loss))
        out = model.training_step(batch)
        assert set(out) == {"loss", f"loss_{loss}", "map_iou"} and torch.isfinite(out["loss"])
        model.cfg.exemplar_reduction = "mean"
        torch.testing.assert_close(model.training_step(batch)["loss"] * 3, out["loss"])


def test_vit_position_table_is_fixed_sincos_by_default():
    model = CIM(_cfg())
    assert model.cfg.pos_embed == "sincos"
    for vit in (model.backbone, model.target_backbone):
        assert vit.pos_embed_kind == "sincos" and not vit.model.pos_embed.requires_grad
    model.training_step(_batch())["loss"].backward()
    assert model.backbone.model.pos_embed.grad is None
    assert model.backbone.model.blocks[0].attn.qkv.weight.grad is not None
    learned = CIM(_cfg(pos_embed="learned"))
    assert learned.backbone.model.pos_embed.requires_grad
    assert CIM(_cfg("resnet_test", pos_embed="learned")).backbone.out_dim > 0  # ignored for ResNets


def test_the_target_keeps_the_batchnorm_statistics_of_the_contexts():
    # The target encodes contexts, the online encoder exemplars: after a step and its EMA update
    # each BN holds the statistics of its own inputs (an eval-mode metric normalises with them).
    torch.manual_seed(0)
    model = CIM(_cfg(backbone="resnet_test"))
    model.train()
    model.training_step(_batch())
    model.momentum_update(0.99)
    bn = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    tbn = [m for m in model.target_backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    assert not torch.equal(bn.running_mean, tbn.running_mean)
    assert tbn.num_batches_tracked.item() == bn.num_batches_tracked.item() == 1
