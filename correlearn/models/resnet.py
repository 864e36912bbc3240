"""ResNet backbones (torchvision) with per-stage stride and dilation control.

The correspondence evaluations need dense maps at a finer stride than classification: VFS label
propagation reads res4 with layer3's stride removed (``strides=(1, 2, 1, 1)``, res4 at stride 8),
and SiamFC tracking reads res5 with the strides of layer3/layer4 replaced by dilations 2 and 4
(``strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)``; VFS paper Sec. 4.1, ref code xvjiarui/VFS).
CRW trains and evaluates its ResNet-18 with reflect padding in every padded conv
(``padding_mode="reflect"``; ajabri/videowalk ``code/resnet.py`` ``modify``).

Stage names follow the detectron convention: ``res2..res5`` are the outputs of torchvision's
``layer1..layer4``. The torchvision model is kept whole as ``self.net`` (its ``fc`` replaced by an
identity), so :meth:`ResNet.export_state_dict` returns torchvision key names unchanged.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from correlearn.models.info import RESNET_LAYERS, BackboneInfo, resnet_info

LAYERS = RESNET_LAYERS
_STEM_STRIDE = 4  # conv1 (stride 2) + maxpool (stride 2)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _set_conv(conv: nn.Conv2d, stride: int | None = None, dilation: int | None = None) -> None:
    """Change a conv's stride and/or dilation in place; 3x3 convs get padding = dilation."""
    if stride is not None:
        conv.stride = (stride, stride)
    if dilation is not None and conv.kernel_size[0] > 1:
        # padding = dilation keeps "same" spatial size for a 3x3 kernel at stride 1.
        conv.dilation = (dilation, dilation)
        conv.padding = (dilation, dilation)


def _set_padding_mode(net: nn.Module, mode: str) -> None:
    """Pad every conv with non-zero padding in ``mode`` (``zeros``, ``reflect``...), in place.

    The pad a conv applies itself is kept from its current ``padding`` (after any dilation).
    """
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {mode!r}")
    for conv in net.modules():
        if isinstance(conv, nn.Conv2d) and any(p > 0 for p in conv.padding):
            conv.padding_mode = mode
            # What the conv hands F.pad: (left, right, top, bottom) for padding (pad_h, pad_w).
            pads = [p for p in reversed(conv.padding) for _ in range(2)]
            conv._reversed_padding_repeated_twice = pads


def _configure_layer(layer: nn.Sequential, stride: int, dilation: int, name: str) -> None:
    """Set the first block's stride and every 3x3 conv's dilation of one residual stage.

    The stride sits where torchvision puts it: ``conv1`` of a BasicBlock, ``conv2`` (the 3x3) of a
    Bottleneck, and the 1x1 conv of the downsample branch. Every block of the stage gets the same
    dilation (mmcv/VFS semantics, unlike torchvision's ``replace_stride_with_dilation`` which keeps
    the previous dilation in the first block).
    """
    first = layer[0]
    if stride != 1 and first.downsample is None:
        raise ValueError(
            f"{name}: stride {stride} needs a downsample branch that torchvision does not build "
            "for this stage (its input and output widths match); keep this stage's stride at 1"
        )
    strided_conv = first.conv1 if isinstance(first, BasicBlock) else first.conv2
    _set_conv(strided_conv, stride=stride)
    if first.downsample is not None:
        _set_conv(first.downsample[0], stride=stride)
    for block in layer:
        convs = [block.conv1, block.conv2]
        if isinstance(block, Bottleneck):
            convs.append(block.conv3)
        for conv in convs:
            _set_conv(conv, dilation=dilation)


class ResNet(nn.Module):
    """A torchvision ResNet exposing pooled and dense features.

    Args:
        net: a torchvision ``ResNet`` (its ``fc`` is dropped).
        strides: strides of layer1..layer4 (res2..res5); torchvision's are (1, 2, 2, 2).
        dilations: dilation of every 3x3 conv in layer1..layer4; default all 1.
        padding_mode: how every padded conv pads (``zeros``, torchvision's; ``reflect``, CRW's).

    Attributes:
        out_dim: channels of res5 (= size of the pooled feature).
    """

    def __init__(
        self,
        net: torchvision.models.ResNet,
        strides: tuple[int, int, int, int] = (1, 2, 2, 2),
        dilations: tuple[int, int, int, int] = (1, 1, 1, 1),
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        strides, dilations = tuple(strides), tuple(dilations)
        if len(strides) != 4 or len(dilations) != 4:
            raise ValueError(f"need 4 strides and 4 dilations, got {strides} and {dilations}")
        if any(s < 1 for s in strides) or any(d < 1 for d in dilations):
            raise ValueError(f"strides and dilations must be >= 1, got {strides} and {dilations}")
        self.strides = strides
        self.dilations = dilations
        net.fc = nn.Identity()
        self.net = net
        stages = [net.layer1, net.layer2, net.layer3, net.layer4]
        for i, (layer, s, d) in enumerate(zip(stages, strides, dilations, strict=True)):
            _configure_layer(layer, s, d, f"layer{i + 1}")
        _set_padding_mode(net, padding_mode)
        self.padding_mode = padding_mode
        self._channels = {
            name: _stage_channels(layer) for name, layer in zip(LAYERS, stages, strict=True)
        }
        self.out_dim = self._channels["res5"]

    @property
    def info(self) -> BackboneInfo:
        """This network's record (:mod:`correlearn.models.info`), with its own dense strides."""
        return resnet_info(tuple(self.dense_stride(name) for name in LAYERS))

    def dense_dim(self, layer: str | None = None) -> int:
        """Channels of the dense map ``layer`` (``"res2".."res5"``, default ``"res5"``)."""
        return self._channels[_check_layer(layer)]

    def dense_stride(self, layer: str | None = None) -> int:
        """Input pixels per feature cell of ``layer`` (e.g. 32 for res5 with default strides)."""
        idx = LAYERS.index(_check_layer(layer))
        stride = _STEM_STRIDE
        for s in self.strides[: idx + 1]:
            stride *= s
        return stride

    def dense(self, x: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        """Dense feature map of one stage.

        Args:
            x: (B, 3, H, W) normalised images.
            layer: ``"res2" | "res3" | "res4" | "res5"``; default ``"res5"``.

        Returns:
            (B, C, ceil(H / s), ceil(W / s)) with s = ``dense_stride(layer)`` (up to the usual
            off-by-one of strided convs on odd sizes).
        """
        idx = LAYERS.index(_check_layer(layer))
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        for stage in (n.layer1, n.layer2, n.layer3, n.layer4)[: idx + 1]:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled res5 feature: (B, 3, H, W) -> (B, out_dim)."""
        return self.dense(x, "res5").mean(dim=(2, 3))

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights with torchvision key names (``conv1.*``, ``bn1.*``, ``layer1.*``, ...; no fc).

        ``torchvision.models.resnet50().load_state_dict(sd, strict=False)`` reports only ``fc.*`` as
        missing. Strides, dilations and the padding mode are not weights: load into a model built
        with the same ones to reproduce the dense maps.
        """
        return {k: v.detach().clone() for k, v in self.net.state_dict().items()}


def _check_layer(layer: str | None) -> str:
    layer = layer or "res5"
    if layer not in LAYERS:
        raise ValueError(f"unknown ResNet layer {layer!r}; expected one of {LAYERS}")
    return layer


def _stage_channels(layer: nn.Sequential) -> int:
    last = layer[-1]
    return (last.bn3 if isinstance(last, Bottleneck) else last.bn2).num_features


def resnet18(**kwargs) -> ResNet:
    """ResNet-18, random init. kwargs: ``strides``, ``dilations``, ``padding_mode``."""
    return ResNet(torchvision.models.resnet18(weights=None), **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50, random init. kwargs: ``strides``, ``dilations``, ``padding_mode``."""
    return ResNet(torchvision.models.resnet50(weights=None), **kwargs)


def resnet_test(**kwargs) -> ResNet:
    """Tiny test ResNet: torchvision ``ResNet(BasicBlock, [1, 1, 1, 1])``, one block per stage."""
    return ResNet(torchvision.models.ResNet(BasicBlock, [1, 1, 1, 1]), **kwargs)
