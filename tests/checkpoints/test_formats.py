"""Every import format on a synthetic file with the reference code's exact names: the imported
backbone computes what the reference network computes with those weights."""

import argparse
import copy

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from correlearn.checkpoints import FORMATS, export_state, import_file
from tests.checkpoints.reference_nets import (
    DDP,
    ConvModule,
    MMResNet,
    MultiCropWrapper,
    OpenSelfSupBYOL,
    RefViT,
    VFSTracker,
    add_cim_target,
    add_mae_decoder,
    randomize_,
)

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def tv_resnet_test() -> torchvision.models.ResNet:
    return torchvision.models.ResNet(BasicBlock, [1, 1, 1, 1])


def tv_backbone() -> torchvision.models.ResNet:
    """The torchvision layout without ``fc``: OpenSelfSup's mmdet ResNet has no classifier."""
    net = tv_resnet_test()
    net.fc = torch.nn.Identity()
    return net


def tv_features(net: torchvision.models.ResNet, x: torch.Tensor) -> torch.Tensor:
    """res5 of a torchvision ResNet (what DINO's and OpenSelfSup's backbones return)."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def _save(tmp_path, obj, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _same_resnet(imp, ref_fn):
    with torch.no_grad():
        torch.testing.assert_close(imp.backbone.dense(X, "res5"), ref_fn(X), rtol=1e-5, atol=1e-5)


def _same_vit(imp, ref: RefViT, size: int):
    x = X[:, :, :size, :size]
    with torch.no_grad():
        torch.testing.assert_close(imp.backbone.forward_tokens(x), ref(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bottleneck", [False, True])
def test_vfs_mmaction_resnet(tmp_path, bottleneck):
    blocks = (3, 4, 6, 3) if bottleneck else (1, 1, 1, 1)
    ref = randomize_(VFSTracker(blocks=blocks, bottleneck=bottleneck))
    sd = ref.state_dict()
    assert "backbone.conv1.conv.weight" in sd and "backbone.layer1.0.conv2.bn.running_var" in sd
    mmcv = {"meta": {"mmcv_version": "1.3"}, "state_dict": sd, "optimizer": {}}
    imp = import_file(_save(tmp_path, mmcv))
    assert (imp.format, imp.detected, imp.name) == (
        "vfs",
        True,
        "resnet50" if bottleneck else "resnet_test",
    )
    assert imp.ignored == ["img_head.0.weight", "img_head.0.bias"]
    _same_resnet(imp, ref.backbone)


@pytest.mark.parametrize("branch", [None, "target"])
def test_openselfsup_byol_and_orl(tmp_path, branch):
    ref = randomize_(OpenSelfSupBYOL(tv_backbone))
    sd = ref.state_dict()
    assert "online_net.0.layer1.0.bn1.weight" in sd and "backbone.conv1.weight" in sd
    imp = import_file(_save(tmp_path, {"state_dict": sd, "meta": {}}), branch=branch)
    assert imp.format == "openselfsup" and imp.branch == (branch or "online")
    net = ref.target_net[0] if branch == "target" else ref.online_net[0]
    _same_resnet(imp, lambda x: tv_features(net, x))
    assert "head.weight" in imp.ignored and not imp.coverage.unexpected


def test_openselfsup_extracted_backbone_weights(tmp_path):
    net = randomize_(tv_resnet_test())
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    imp = import_file(_save(tmp_path, {"state_dict": sd}))  # tools/extract_backbone_weights.py
    assert imp.format == "openselfsup"
    _same_resnet(imp, lambda x: tv_features(net, x))


def test_torchvision_plain(tmp_path):
    net = randomize_(tv_resnet_test())
    imp = import_file(_save(tmp_path, net.state_dict()))
    assert imp.format == "torchvision" and imp.ignored == ["fc.weight", "fc.bias"]
    _same_resnet(imp, lambda x: tv_features(net, x))


def test_timm_plain_vit(tmp_path):
    ref = randomize_(RefViT(grid=4))  # vit_test_patch16 at 64 px
    imp = import_file(_save(tmp_path, ref.state_dict()))
    assert (imp.format, imp.name, imp.kwargs) == ("timm", "vit_test_patch16", {"img_size": 64})
    _same_vit(imp, ref, 64)


def test_mae_and_cropmae_release(tmp_path):
    ref = randomize_(add_mae_decoder(RefViT(grid=4)))
    ckpt = {"model": ref.state_dict(), "epoch": 3, "args": argparse.Namespace(lr=1.5e-4)}
    imp = import_file(_save(tmp_path, ckpt))  # the args Namespace loads under weights_only
    assert (
        imp.format == "mae" and "decoder_pred.weight" in imp.ignored and "mask_token" in imp.ignored
    )
    _same_vit(imp, ref, 64)


@pytest.mark.parametrize("patch", [8, 16])
def test_siammae_encoder_prefix_and_pos_embed_without_cls_slot(tmp_path, patch):
    dim, depth, heads = (384, 12, 6) if patch == 8 else (64, 2, 2)
    grid = 4
    ref = randomize_(RefViT(patch, dim, depth, heads, grid=grid, cls_slot=False))
    holder = torch.nn.Module()
    holder.encoder = ref
    holder.decoder = torch.nn.Linear(4, 4)
    imp = import_file(_save(tmp_path, holder.state_dict()))
    assert imp.format == "mae" and imp.name == (
        "vit_small_patch8" if patch == 8 else "vit_test_patch16"
    )
    assert imp.kwargs == {"img_size": grid * patch} and any("CLS slot" in n for n in imp.notes)
    _same_vit(imp, ref, grid * patch)


@pytest.mark.parametrize("branch", [None, "target"])
def test_cim_vit_online_and_ema(tmp_path, branch):
    ref = randomize_(add_cim_target(RefViT(grid=4)))
    imp = import_file(_save(tmp_path, {"model": ref.state_dict(), "epoch": 1}), branch=branch)
    assert imp.format == "cim" and imp.branch == (branch or "online")
    if branch == "target":  # main_finetune.py --use_ema: blocks_c and norm_c, online patch_embed
        ref.blocks, ref.norm = ref.blocks_c, ref.norm_c
        assert "patch_embed_c.proj.weight" in imp.ignored
    _same_vit(imp, ref, 64)


def test_cim_resnet(tmp_path):
    net = randomize_(tv_resnet_test())
    holder = DDP(net)
    imp = import_file(_save(tmp_path, {"model": holder.state_dict()}), fmt="cim")
    assert imp.format == "cim" and not imp.detected
    _same_resnet(imp, lambda x: tv_features(net, x))


@pytest.mark.parametrize("branch", [None, "student"])
def test_dino_vit_teacher_and_student(tmp_path, branch):
    teacher = randomize_(MultiCropWrapper(RefViT(grid=4)), seed=1)
    student = randomize_(DDP(MultiCropWrapper(RefViT(grid=4))), seed=2)
    ckpt = {"student": student.state_dict(), "teacher": teacher.state_dict(), "epoch": 1}
    imp = import_file(_save(tmp_path, ckpt), branch=branch)
    assert imp.format == "dino" and imp.branch == (branch or "teacher")
    ref = student.module.backbone if branch == "student" else teacher.backbone
    _same_vit(imp, ref, 64)
    assert ("module.head.0.weight" if branch else "head.0.weight") in imp.ignored


def test_dino_resnet_teacher_under_ddp(tmp_path):
    net = tv_resnet_test()
    net.fc = torch.nn.Identity()  # main_dino.py replaces fc and head
    teacher = randomize_(DDP(MultiCropWrapper(net)))
    imp = import_file(_save(tmp_path, {"teacher": teacher.state_dict(), "student": {}}))
    assert imp.format == "dino" and imp.source.endswith("['module.backbone.*']")
    _same_resnet(imp, lambda x: tv_features(net, x))


class MoCoV2(nn.Module):
    """moco/builder.py (v2, ``mlp=True``): query and key encoders, ``fc`` replaced by an MLP."""

    def __init__(self):
        super().__init__()
        self.encoder_q = tv_resnet_test()
        self.encoder_q.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))
        self.encoder_k = copy.deepcopy(self.encoder_q)
        self.register_buffer("queue", torch.randn(128, 16))


class MoCoV3ViT(nn.Module):
    """moco-v3 moco/builder.py (``MoCo_ViT``): base and momentum encoders, projector in ``head``."""

    def __init__(self):
        super().__init__()
        self.base_encoder = RefViT(grid=4)
        self.base_encoder.head = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16))
        self.momentum_encoder = copy.deepcopy(self.base_encoder)
        self.predictor = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16))


@pytest.mark.parametrize("branch", [None, "target"])
def test_moco_v2_resnet(tmp_path, branch):
    ref = randomize_(DDP(MoCoV2()))
    ref.module.encoder_k.load_state_dict(randomize_(MoCoV2(), seed=5).encoder_k.state_dict())
    ckpt = {"epoch": 200, "arch": "resnet50", "state_dict": ref.state_dict(), "optimizer": {}}
    imp = import_file(_save(tmp_path, ckpt), branch=branch)
    assert (imp.format, imp.detected, imp.branch) == ("moco", True, branch or "online")
    net = ref.module.encoder_k if branch == "target" else ref.module.encoder_q
    _same_resnet(imp, lambda x: tv_features(net, x))
    head = "module.encoder_k.fc.0.weight" if branch == "target" else "module.encoder_q.fc.0.weight"
    assert head in imp.ignored and "module.queue" in imp.ignored


def test_moco_v3_vit(tmp_path):
    ref = randomize_(DDP(MoCoV3ViT()))
    imp = import_file(_save(tmp_path, {"epoch": 300, "state_dict": ref.state_dict()}))
    assert imp.format == "moco" and imp.source.endswith("['module.base_encoder.*']")
    _same_vit(imp, ref.module.base_encoder, 64)
    assert "module.predictor.0.weight" in imp.ignored
    assert "module.base_encoder.head.0.weight" in imp.ignored


def test_every_format_is_tested_here():
    tested = {"vfs", "moco", "openselfsup", "torchvision", "timm", "mae", "cim", "dino"}
    tested.add("crw")  # tests/checkpoints/test_crw_format.py
    assert set(FORMATS) == tested


def _load_torchvision_checkpoint(net: nn.Module, path) -> None:
    """A re-built mmaction ``ResNet._load_torchvision_checkpoint`` (what VFS's ``tools/test.py``
    and ``train_siamfc.py --pretrained`` run): every ConvModule reads torchvision names."""
    tv = torch.load(path)
    tv = tv.get("state_dict", tv)
    for name, module in net.named_modules():
        if not isinstance(module, ConvModule):
            continue
        if "downsample" in name:
            conv_name, bn_name = f"{name}.0", f"{name}.1"
        else:
            conv_name, bn_name = name, name.replace("conv", "bn")
        module.conv.weight.data.copy_(tv[f"{conv_name}.weight"])
        for attr in ("weight", "bias", "running_mean", "running_var"):
            getattr(module.bn, attr).data.copy_(tv[f"{bn_name}.{attr}"])


@pytest.mark.parametrize("bottleneck", [False, True])
def test_vfs_export_loads_in_the_reference_pretrained_loader(tmp_path, bottleneck):
    blocks = (3, 4, 6, 3) if bottleneck else (1, 1, 1, 1)
    ref = randomize_(VFSTracker(blocks=blocks, bottleneck=bottleneck))
    imp = import_file(_save(tmp_path, {"meta": {}, "state_dict": ref.state_dict()}))
    path = tmp_path / "pretrained.pth"
    torch.save(export_state(imp.backbone.export_state_dict(), "vfs"), path)
    fresh = MMResNet(blocks=blocks, bottleneck=bottleneck)
    _load_torchvision_checkpoint(fresh, path)
    for (k, a), b in zip(
        fresh.state_dict().items(), ref.backbone.state_dict().values(), strict=True
    ):
        if "num_batches_tracked" not in k:
            assert torch.equal(a, b), k
