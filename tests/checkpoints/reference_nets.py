"""The reference code's layouts rebuilt with plain torch modules, with the authors' module names.

Each class mirrors one reference file (named in its docstring): the attribute names, nesting and
forward pass, so its ``state_dict()`` has exactly the released files' keys and its outputs are
what the reference network computes with those weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and buffer random (BN variances positive), so a wrong map shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype.is_floating_point:
                v = torch.randn(t.shape, generator=g) * 0.2
                t.copy_(v.abs() + 0.5 if name.endswith("running_var") else v)
    return module.eval()


# --- xvjiarui/VFS mmaction/models/backbones/resnet.py (mmcv ConvModule: conv -> bn -> act) ---
class ConvModule(nn.Module):
    def __init__(self, cin, cout, k, stride=1, padding=0, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.act else x


class MMBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, downsample):
        super().__init__()
        self.conv1 = ConvModule(cin, planes, 3, stride, 1)
        self.conv2 = ConvModule(planes, planes, 3, 1, 1, act=False)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(self.conv1(x)) + identity)


class MMBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, downsample):
        super().__init__()
        self.conv1 = ConvModule(cin, planes, 1)
        self.conv2 = ConvModule(planes, planes, 3, stride, 1)  # style 'pytorch': stride on 3x3
        self.conv3 = ConvModule(planes, planes * 4, 1, act=False)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + identity)


class MMResNet(nn.Module):
    """VFS's ResNet: ``conv1`` ConvModule stem, ``layer1..4`` from ``make_res_layer``."""

    def __init__(self, blocks=(1, 1, 1, 1), bottleneck=False):
        super().__init__()
        block = MMBottleneck if bottleneck else MMBasicBlock
        self.conv1 = ConvModule(3, 64, 7, 2, 3)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, n in enumerate(blocks):
            planes, stride = 64 * 2**i, 1 if i == 0 else 2
            down = None
            if stride != 1 or cin != planes * block.expansion:
                down = ConvModule(cin, planes * block.expansion, 1, stride, act=False)
            layers = [block(cin, planes, stride, down)]
            cin = planes * block.expansion
            layers += [block(cin, planes, 1, None) for _ in range(1, n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class VFSTracker(nn.Module):
    """``SimSiamBaseTracker``: ``backbone`` + ``img_head`` (a stand-in for the SimSiam head)."""

    def __init__(self, **kw):
        super().__init__()
        self.backbone = MMResNet(**kw)
        self.img_head = nn.Sequential(nn.Linear(512, 8))


# --- ajabri/videowalk code/resnet.py, code/utils/__init__.py (From3D), code/model.py (CRW) ---
class CRWResNet(torchvision.models.ResNet):
    """``resnet.py`` ResNet: ``modify`` sets every conv of layer3/layer4 to stride 1, pads every
    padded conv in ``padding`` mode and removes ``remove_layers``, ``fc`` and ``avgpool``."""

    def __init__(self, blocks=(2, 2, 2, 2)):
        super().__init__(BasicBlock, list(blocks))

    def modify(self, remove_layers=(), padding=""):
        kept = [getattr(self, n) for n in ("layer3", "layer4") if getattr(self, n) is not None]
        for m in (m for layer in kept for m in layer.modules()):
            if isinstance(m, nn.Conv2d):
                m.stride = (1, 1)
        for m in self.modules():
            if padding and isinstance(m, nn.Conv2d) and sum(m.padding) > 0:
                m.padding_mode = padding
        for name in (*remove_layers, "fc", "avgpool"):
            setattr(self, name, None)

    def forward(self, x):
        x = self.layer2(self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x))))))
        x = x if self.layer3 is None else self.layer3(x)
        return x if self.layer4 is None else self.layer4(x)


class From3D(nn.Module):
    """``utils.From3D``: the 2D network kept as ``model``."""

    def __init__(self, net):
        super().__init__()
        self.model = net


class CRW(nn.Module):
    """``model.CRW`` as trained (``make_encoder`` ``scratch``: reflect padding, layer4 kept) with
    its ``selfsim_fc`` head (``--head-depth 0``: one Linear to 128)."""

    def __init__(self, blocks=(2, 2, 2, 2)):
        super().__init__()
        net = CRWResNet(blocks)
        net.modify(padding="reflect")
        self.encoder = From3D(net)
        self.selfsim_fc = nn.Sequential(nn.Linear(512, 128))


# --- Jiahao000/ORL openselfsup/models/{byol,orl}.py; the ResNet has torchvision's names ---
class OpenSelfSupBYOL(nn.Module):
    def __init__(self, make_backbone):
        super().__init__()
        self.online_net = nn.Sequential(make_backbone(), nn.Linear(4, 4))  # (backbone, neck)
        self.target_net = nn.Sequential(make_backbone(), nn.Linear(4, 4))
        self.backbone = self.online_net[0]
        self.head = nn.Linear(4, 4)  # LatentPredictHead's predictor


# --- facebookresearch/mae models_mae.py, CropMAE models/SiamMAE.py, DINO vision_transformer.py ---
class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, dim * 4)
        self.fc2 = nn.Linear(dim * 4, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RefViT(nn.Module):
    """The MAE/DINO encoder; ``cls_slot=False`` stores ``pos_embed`` for the patches only."""

    def __init__(self, patch=16, dim=64, depth=2, heads=2, grid=14, cls_slot=True):
        super().__init__()
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + int(cls_slot), dim))
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.cls_slot = cls_slot

    def forward(self, x):
        """CropMAE ``forward_encoder_no_masking``: (B, 3, H, W) -> (B, 1 + N, D)."""
        x = self.patch_embed(x)
        pe = self.pos_embed
        x = x + (pe[:, 1:] if self.cls_slot else pe)
        cls = self.cls_token + (pe[:, :1] if self.cls_slot else 0)
        x = torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


def add_mae_decoder(vit: RefViT, dim=32) -> RefViT:
    """MAE's decoder parameters beside the encoder (``decoder_*``, ``mask_token``)."""
    vit.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
    vit.decoder_embed = nn.Linear(vit.norm.normalized_shape[0], dim)
    vit.decoder_pos_embed = nn.Parameter(torch.zeros(1, vit.pos_embed.shape[1], dim))
    vit.decoder_blocks = nn.ModuleList([Block(dim, 2)])
    vit.decoder_norm = nn.LayerNorm(dim)
    vit.decoder_pred = nn.Linear(dim, 16 * 16 * 3)
    return vit


def add_cim_target(vit: RefViT) -> RefViT:
    """CIM's EMA context encoder beside the online one (``patch_embed_c``, ``blocks_c``, ``norm_c``)."""
    dim, heads = vit.norm.normalized_shape[0], vit.blocks[0].attn.heads
    vit.patch_embed_c = PatchEmbed(vit.patch_embed.proj.kernel_size[0], dim)
    vit.blocks_c = nn.ModuleList([Block(dim, heads) for _ in vit.blocks])
    vit.norm_c = nn.LayerNorm(dim, eps=1e-6)
    vit.decoder_embed = nn.Linear(dim, 16)
    return vit


class MultiCropWrapper(nn.Module):
    """DINO ``utils.MultiCropWrapper``: ``backbone`` + ``head`` (``DINOHead``)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Linear(4, 4))


class DDP(nn.Module):
    """What DistributedDataParallel adds to the names: ``module.``."""

    def __init__(self, module):
        super().__init__()
        self.module = module
