import copy

import pytest
import torch
import torchvision
from torch import nn

from correlearn.models.resnet import resnet18, resnet50, resnet_test


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_default_strides_and_shapes():
    net = resnet_test().eval()
    x = torch.randn(2, 3, 64, 64)
    assert [net.dense_stride(n) for n in ("res2", "res3", "res4", "res5")] == [4, 8, 16, 32]
    assert net.dense_stride() == 32
    with torch.no_grad():
        assert net.dense(x, "res3").shape == (2, 128, 8, 8)
        assert net.dense(x, "res4").shape == (2, 256, 4, 4)
        assert net.dense(x).shape == (2, 512, 2, 2)
        assert net(x).shape == (2, net.out_dim) == (2, 512)
    assert net.dense_dim("res4") == 256


def test_vfs_label_propagation_strides_put_res4_at_8():
    net = resnet_test(strides=(1, 2, 1, 1)).eval()
    assert net.dense_stride("res4") == 8
    with torch.no_grad():
        assert net.dense(torch.randn(1, 3, 64, 64), "res4").shape == (1, 256, 8, 8)


def test_siamfc_dilations_keep_res5_at_8():
    net = resnet_test(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)).eval()
    assert net.dense_stride("res5") == 8
    block = net.net.layer4[0]
    assert block.conv1.dilation == (4, 4) and block.conv1.padding == (4, 4)
    assert block.conv1.stride == (1, 1) and block.downsample[0].stride == (1, 1)
    with torch.no_grad():
        assert net.dense(torch.randn(1, 3, 64, 64)).shape == (1, 512, 8, 8)


def _reflect_convs_rebuilt(net):
    """``net`` with each padded conv rebuilt as torch's own reflect-padded conv, same weight."""
    for name, conv in list(net.net.named_modules()):
        if isinstance(conv, nn.Conv2d) and sum(conv.padding) > 0:
            new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                            conv.padding, conv.dilation, bias=False, padding_mode="reflect")  # fmt: skip
            new.weight = conv.weight
            parent, _, attr = name.rpartition(".")
            setattr(net.net.get_submodule(parent) if parent else net.net, attr, new)
    return net


@pytest.mark.parametrize("dilations", [(1, 1, 1, 1), (1, 1, 2, 4)])
def test_reflect_padding_is_torchs_reflect_conv_in_every_padded_conv(dilations):
    """CRW's padding: the same outputs as torch's reflect convs (with the dilated padding where
    the dilations changed it); 1x1 convs have no padding to change."""
    net = resnet_test(strides=(1, 2, 1, 1), dilations=dilations, padding_mode="reflect").eval()
    zeros = resnet_test(strides=(1, 2, 1, 1), dilations=dilations).eval()
    zeros.net.load_state_dict(net.net.state_dict())
    assert net.net.layer3[0].downsample[0].padding_mode == "zeros"
    assert net.net.conv1.padding_mode == net.net.layer4[0].conv2.padding_mode == "reflect"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = _reflect_convs_rebuilt(copy.deepcopy(zeros)).dense(x)
        torch.testing.assert_close(net.dense(x), want)
        assert not torch.allclose(zeros.dense(x), want, atol=1e-3)
    with pytest.raises(ValueError, match="padding_mode"):
        resnet_test(padding_mode="mirror")


def test_bottleneck_stride_on_conv2_and_downsample():
    net = resnet50(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)).eval()
    first = net.net.layer3[0]
    assert first.conv2.stride == (1, 1) and first.downsample[0].stride == (1, 1)
    assert first.conv2.dilation == (2, 2) and net.net.layer4[2].conv2.padding == (4, 4)
    assert net.net.layer2[0].conv2.stride == (2, 2)
    assert net.out_dim == 2048
    with torch.no_grad():
        assert net.dense(torch.randn(1, 3, 32, 32), "res4").shape == (1, 1024, 4, 4)


def test_stride_without_downsample_and_bad_layer_are_errors():
    with pytest.raises(ValueError, match="downsample"):
        resnet18(strides=(2, 2, 2, 2))
    with pytest.raises(ValueError, match="res5"):
        resnet_test().dense_stride("res6")


def test_export_loads_into_torchvision_with_identical_outputs():
    net = resnet18().eval()
    sd = net.export_state_dict()
    assert "conv1.weight" in sd and "layer4.1.bn2.running_var" in sd
    assert not any(k.startswith(("fc.", "net.")) for k in sd)
    tv = torchvision.models.resnet18()
    res = tv.load_state_dict(sd, strict=False)
    assert sorted(res.missing_keys) == ["fc.bias", "fc.weight"] and not res.unexpected_keys
    tv.fc = torch.nn.Identity()
    tv.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(x), tv(x))


def test_resnet50_export_only_fc_missing():
    res = torchvision.models.resnet50().load_state_dict(
        resnet50().export_state_dict(), strict=False
    )
    assert sorted(res.missing_keys) == ["fc.bias", "fc.weight"] and not res.unexpected_keys
