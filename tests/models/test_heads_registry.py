import pytest
import torch
from torch import nn

from correlearn.models import BACKBONES, build_backbone
from correlearn.models.heads import (
    byol_predictor,
    byol_projector,
    mlp,
    simsiam_predictor,
    simsiam_projector,
)


def _kinds(seq):
    return [type(m).__name__ for m in seq]


def test_byol_heads_shapes():
    proj, pred = byol_projector(2048), byol_predictor()
    assert _kinds(proj) == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert (proj[0].in_features, proj[0].out_features, proj[3].out_features) == (2048, 4096, 256)
    assert (pred[0].in_features, pred[0].out_features, pred[3].out_features) == (256, 4096, 256)
    assert proj(torch.randn(4, 2048)).shape == (4, 256)


def test_simsiam_heads():
    proj = simsiam_projector(512, 64)
    assert _kinds(proj) == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear", "BatchNorm1d"]
    assert not proj[-1].affine and proj[-2].bias is None
    assert simsiam_projector(512, 64, last_bn_affine=True)[-1].affine  # the VFS ref code's
    pred = simsiam_predictor(64, 16)
    assert _kinds(pred) == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert pred(proj(torch.randn(4, 512))).shape == (4, 64)


def test_mlp_options():
    assert _kinds(mlp(8, 16, 4, num_layers=1)) == ["Linear"]
    assert _kinds(mlp(8, 16, 4, hidden_bn=False)) == ["Linear", "ReLU", "Linear"]
    with pytest.raises(ValueError):
        mlp(8, 16, 4, num_layers=0)


def test_registry_names_and_errors():
    contract = {"resnet18", "resnet50", "vit_small_patch16", "vit_base_patch16", "vit_small_patch8"}
    assert contract | {"resnet_test", "vit_test_patch16", "vit_tiny_patch8"} == set(BACKBONES)
    with pytest.raises(ValueError, match="resnet18.*vit_test_patch16"):
        build_backbone("resnet101")
    net = build_backbone("resnet_test", strides=(1, 2, 1, 1))
    assert isinstance(net, nn.Module) and net.dense_stride("res4") == 8
    assert build_backbone("vit_test_patch16", img_size=64).out_dim == 64
